#pragma once
// Shared helpers of the targets for the torch components' readers (palette files, semantic-ID
// tables, safetensors, HF folders): seeds written by lamia's own writers, and checksums made right.
//
// Seeds: run with LAMIA_FUZZ_WRITE_SEEDS=<folder>, such a target writes its seeds there with the
// writers of the format (save_palettes, SemanticIdTable::save, save_safetensors, save_pretrained)
// and exits without fuzzing (scripts/fuzz.sh does it before each run), so the seeds always have the
// format this build writes.
#include "fuzz_util.hpp"

#include <lamia/core/binary_io.hpp>

#include <torch/torch.h>

#include <functional>
#include <string>

namespace lamia::fuzz {

/// The contents of a file (the seed writers read back what lamia wrote).
inline std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read " + path.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Writes one seed (files joined by kFileSeparator) into folder, named by its number.
class SeedWriter {
 public:
  explicit SeedWriter(fs::path folder) : folder_(std::move(folder)) { fs::create_directories(folder_); }
  void add(const std::vector<std::string>& parts) {
    std::string data;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) data += kFileSeparator;
      data += parts[i];
    }
    write_file(folder_ / ("seed-" + std::to_string(count_++)), data);
  }
  std::size_t count() const noexcept { return count_; }

 private:
  fs::path folder_;
  std::size_t count_ = 0;
};

/// Called from LLVMFuzzerInitialize: one intra-op thread (the inputs are tiny, and a pool of
/// threads per process only slows the sanitizers down); with LAMIA_FUZZ_WRITE_SEEDS set, writes the
/// seeds there with write_seeds and exits.
inline void init_torch_target(const std::function<void(SeedWriter&, const fs::path& scratch)>& write_seeds) {
  torch::set_num_threads(1);
  const char* out = std::getenv("LAMIA_FUZZ_WRITE_SEEDS");
  if (!out || !*out) return;
  SeedWriter seeds(out);
  write_seeds(seeds, scratch().fresh_dir("seeds"));
  std::printf("%zu seeds in %s\n", seeds.count(), out);
  std::exit(0);
}

/// Replaces the last 4 bytes of bytes by the CRC-32 of bytes[from, size - 4) (the trailer of lamia's
/// binary files), so that mutations of a seed get past the checksum to the fields after it. Returns
/// false when the input is too short or its checksum was right already.
inline bool fix_crc32(std::string& bytes, std::size_t from) {
  if (bytes.size() < from + 4) return false;
  const std::uint32_t crc = detail::crc32_of(bytes.data() + from, bytes.size() - 4 - from);
  char* at = bytes.data() + bytes.size() - 4;
  if (std::memcmp(at, &crc, 4) == 0) return false;
  std::memcpy(at, &crc, 4);
  return true;
}

/// Writes the input to path and reads it with read_all; again with the crc32 made right (fix_crc32)
/// when it was not.
inline void read_with_and_without_crc(const std::uint8_t* data, std::size_t size, const fs::path& path,
                                      std::size_t crc_from, const std::function<void(const fs::path&)>& read_all) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  write_file(path, bytes);
  read_all(path);
  if (fix_crc32(bytes, crc_from)) {
    write_file(path, bytes);
    read_all(path);
  }
}

/// The bytes of a CPU tensor (contiguous copy), to compare tensors bit for bit (NaNs included).
inline std::string tensor_bytes(const torch::Tensor& t) {
  const auto c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), std::size_t(c.numel()) * c.element_size());
}

}  // namespace lamia::fuzz
