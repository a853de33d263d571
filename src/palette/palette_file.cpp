#include <lamia/core/atomic_file.hpp>
#include <lamia/core/binary_io.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/palette/palette_file.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <ostream>

namespace lamia {
namespace {

constexpr std::array<char, 8> kMagic = {'L', 'A', 'M', 'I', 'A', 'P', 'A', 'L'};
constexpr std::uint32_t kFloat32 = 0;

// Writes bytes and keeps the running crc32.
struct CrcWriter {
  std::ostream& out;
  detail::Crc32 crc;
  void bytes(const void* data, std::size_t n) {
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
    crc.update(data, n);
  }
  template <class T>
  void pod(T v) { bytes(&v, sizeof v); }
};

void check_ids(const std::vector<std::string>& ids) {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i].size() > 0xFFFFFFFFu) throw ValueError(fmt::format("palette file: item id {} is too long", i));
  }
}

}  // namespace

void write_palette_file(const std::filesystem::path& path, const std::vector<std::string>& item_ids,
                        std::int64_t palette_size, std::int64_t dim, const PaletteProducer& produce,
                        std::int64_t batch_size, const std::string& metadata) {
  if (palette_size < 1) throw ValueError(fmt::format("write_palette_file: palette size L must be >= 1, got {}", palette_size));
  if (dim < 1) throw ValueError(fmt::format("write_palette_file: dimension D must be >= 1, got {}", dim));
  if (batch_size < 1) throw ValueError(fmt::format("write_palette_file: batch_size must be >= 1, got {}", batch_size));
  check_ids(item_ids);
  const auto n = static_cast<std::int64_t>(item_ids.size());
  write_file_atomically(path, [&](std::ostream& os) {
    os.write(kMagic.data(), kMagic.size());
    CrcWriter w{os};
    w.pod<std::uint32_t>(metadata.empty() ? kPaletteFileVersion : kPaletteFileVersionWithMetadata);
    w.pod<std::uint32_t>(kFloat32);
    w.pod<std::uint64_t>(static_cast<std::uint64_t>(n));
    w.pod<std::uint64_t>(static_cast<std::uint64_t>(palette_size));
    w.pod<std::uint64_t>(static_cast<std::uint64_t>(dim));
    if (!metadata.empty()) {
      w.pod<std::uint64_t>(static_cast<std::uint64_t>(metadata.size()));
      w.bytes(metadata.data(), metadata.size());
    }
    for (const auto& id : item_ids) {
      w.pod<std::uint32_t>(static_cast<std::uint32_t>(id.size()));
      w.bytes(id.data(), id.size());
    }
    for (std::int64_t begin = 0; begin < n; begin += batch_size) {
      const auto end = std::min(n, begin + batch_size);
      auto t = produce(begin, end);
      if (!t.defined() || t.dim() != 3 || t.size(0) != end - begin || t.size(1) != palette_size ||
          t.size(2) != dim) {
        throw ValueError(fmt::format("write_palette_file: palettes of items [{}, {}) must be [{}, {}, {}], got {}",
                                     begin, end, end - begin, palette_size, dim,
                                     t.defined() ? fmt::format("{}", fmt::join(t.sizes(), ", ")) : "undefined"));
      }
      t = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
      if (!torch::isfinite(t).all().item<bool>()) {
        throw ValueError(fmt::format("write_palette_file: palettes of items [{}, {}) have non-finite values", begin, end));
      }
      w.bytes(t.data_ptr<float>(), static_cast<std::size_t>(t.numel()) * sizeof(float));
    }
    const auto crc = w.crc.value();
    os.write(reinterpret_cast<const char*>(&crc), sizeof crc);
  });
}

void save_palettes(const std::filesystem::path& path, const std::vector<std::string>& item_ids,
                   const torch::Tensor& palettes) {
  TORCH_CHECK_VALUE(palettes.defined() && palettes.dim() == 3, "save_palettes: palettes must be [n, L, D], got ",
                    palettes.defined() ? palettes.sizes() : torch::IntArrayRef{});
  TORCH_CHECK_VALUE(palettes.size(0) == static_cast<std::int64_t>(item_ids.size()), "save_palettes: ",
                    item_ids.size(), " item ids for ", palettes.size(0), " palettes");
  TORCH_CHECK_VALUE(torch::isFloatingType(palettes.scalar_type()), "save_palettes: palettes must be floating point, got ",
                    palettes.scalar_type());
  write_palette_file(path, item_ids, palettes.size(1), palettes.size(2),
                     [&](std::int64_t b, std::int64_t e) { return palettes.slice(0, b, e); },
                     std::max<std::int64_t>(1, palettes.size(0)));
}

namespace {

// What a non-regular file is, for the message that refuses it.
const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

}  // namespace

PaletteFileReader::PaletteFileReader(const std::filesystem::path& path, bool verify, PaletteFileAccess access)
    : path_(path) {
  // O_NONBLOCK: opening a FIFO does not wait for a writer (it is refused below); it is cleared
  // again for the regular file.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0) throw IOError(fmt::format("cannot open palette file '{}': {}", path.string(), std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    close_file();
    throw IOError(fmt::format("cannot stat palette file '{}': {}", path.string(), std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    close_file();
    throw IOError(fmt::format("palette file '{}' is {}, expected a regular file", path.string(), file_kind(st.st_mode)));
  }
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
  try {
    const auto file_size = static_cast<std::uint64_t>(st.st_size);
    detail::Crc32 crc;
    std::uint64_t consumed = 0;
    auto read = [&](void* dst, std::uint64_t size, const char* field, bool with_crc = true) {
      if (consumed + size > file_size) {
        throw ParseError({path_.string(), 0, field}, fmt::format("file is truncated: {} bytes, needs more than {}",
                                                                 file_size, consumed + size - 1));
      }
      read_bytes(dst, size, consumed, field);
      consumed += size;
      if (with_crc) crc.update(dst, size);
    };
    auto fail = [&](const char* field, const std::string& why) { throw ParseError({path_.string(), 0, field}, why); };
    std::array<char, 8> magic{};
    read(magic.data(), magic.size(), "magic", false);
    if (magic != kMagic) fail("magic", "not a lamia palette file (expected magic 'LAMIAPAL')");
    std::uint32_t version = 0, dtype = 0;
    read(&version, sizeof version, "version");
    if (version != kPaletteFileVersion && version != kPaletteFileVersionWithMetadata) {
      fail("version", fmt::format("unsupported palette file version {} (this build reads versions {} and {})", version,
                                  kPaletteFileVersion, kPaletteFileVersionWithMetadata));
    }
    read(&dtype, sizeof dtype, "dtype");
    if (dtype != kFloat32) fail("dtype", fmt::format("unknown dtype code {} (expected 0 = float32)", dtype));
    std::uint64_t n = 0, L = 0, D = 0;
    read(&n, sizeof n, "n");
    read(&L, sizeof L, "L");
    read(&D, sizeof D, "D");
    if (L < 1 || D < 1) fail("shape", fmt::format("palette size and dimension must be >= 1, got L = {}, D = {}", L, D));
    if (version == kPaletteFileVersionWithMetadata) {
      std::uint64_t len = 0;
      read(&len, sizeof len, "metadata");
      if (len > file_size - consumed) fail("metadata", fmt::format("metadata of {} bytes past the end of the file", len));
      metadata_.resize(len);
      read(metadata_.data(), len, "metadata");
    }
    // Every item needs at least 4 bytes of id length plus L*D floats: bound n before allocating,
    // with every product checked (L = 2^32, D = 2^32 + 1 wrapped L * D to 2^32, and a 16 GiB file
    // then passed with a shape it does not hold). An empty file may have any L and D whose rows
    // fit in int64 (save_palettes writes such a file for 0 items; L, D > 44 were refused before).
    const auto header = consumed;
    std::uint64_t row = 0, per_item = 0, items = 0;
    if (__builtin_mul_overflow(L, D, &row) || __builtin_mul_overflow(row, std::uint64_t(sizeof(float)), &row) ||
        row > std::uint64_t(std::numeric_limits<std::int64_t>::max()) || __builtin_add_overflow(row, 4u, &per_item) ||
        __builtin_mul_overflow(n, per_item, &items) || items > file_size - header) {
      fail("shape", fmt::format("shape [{}, {}, {}] does not fit in a file of {} bytes", n, L, D, file_size));
    }
    item_ids_.resize(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      std::uint32_t len = 0;
      read(&len, sizeof len, "item_ids");
      if (len > file_size - consumed) {
        fail("item_ids", fmt::format("item id {} has length {} past the end of the file", i, len));
      }
      item_ids_[i].resize(len);
      read(item_ids_[i].data(), len, "item_ids");
    }
    const auto data_bytes = n * L * D * sizeof(float);
    const auto expected = consumed + data_bytes + sizeof(std::uint32_t);
    if (expected != file_size) {
      fail("palettes",
           fmt::format("file has {} bytes, the header says {} (shape [{}, {}, {}])", file_size, expected, n, L, D));
    }
    n_ = static_cast<std::int64_t>(n);
    L_ = static_cast<std::int64_t>(L);
    D_ = static_cast<std::int64_t>(D);
    data_offset_ = consumed;
    header_crc_ = crc.value();
    read_bytes(&stored_crc_, sizeof stored_crc_, consumed + data_bytes, "crc32");
    // The map is made only now, with the file's length checked against the header: every
    // mapped byte read later lies inside the file as it was at open (check_not_shrunk).
    file_size_ = file_size;
    if (access == PaletteFileAccess::kMapped && data_bytes > 0) {
      void* m = ::mmap(nullptr, file_size, PROT_READ, MAP_SHARED, fd_, 0);
      if (m != MAP_FAILED) {
        map_ = static_cast<const char*>(m);
        ::madvise(m, file_size, MADV_SEQUENTIAL);  // passes in order: read ahead, drop behind
      }  // else: pread (mapped() is false)
    }
    if (verify) verify_checksum();
  } catch (...) {
    close_file();
    throw;
  }
}

void PaletteFileReader::close_file() noexcept {
  if (map_) ::munmap(const_cast<char*>(map_), file_size_);
  map_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

PaletteFileReader::~PaletteFileReader() { close_file(); }

void PaletteFileReader::check_not_shrunk() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    throw IOError(fmt::format("{}: cannot stat the palette file: {}", path_.string(), std::strerror(errno)));
  }
  if (static_cast<std::uint64_t>(st.st_size) < file_size_) {
    throw IOError(fmt::format("{}: the palette file has shrunk to {} bytes since it was opened ({} bytes): it was "
                              "truncated or rewritten in place",
                              path_.string(), st.st_size, file_size_));
  }
}

void PaletteFileReader::read_bytes(void* dst, std::uint64_t size, std::uint64_t offset, const char* field) const {
  auto* p = static_cast<char*>(dst);
  while (size > 0) {
    const auto got = ::pread(fd_, p, std::min<std::uint64_t>(size, 1u << 30), static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      throw IOError(fmt::format("{}: read error in field '{}' at byte {}: {}", path_.string(), field, offset,
                                got == 0 ? "unexpected end of file" : std::strerror(errno)));
    }
    p += got;
    offset += static_cast<std::uint64_t>(got);
    size -= static_cast<std::uint64_t>(got);
  }
}

void PaletteFileReader::check_range(std::int64_t begin, std::int64_t end) const {
  if (begin < 0 || end < begin || end > n_) {
    throw IndexError(fmt::format("{}: items [{}, {}) out of range (the file has {} items)", path_.string(), begin, end,
                                 n_));
  }
}

void PaletteFileReader::read_into(std::int64_t begin, std::int64_t end, float* out) const {
  check_range(begin, end);
  const std::uint64_t row = static_cast<std::uint64_t>(L_ * D_) * sizeof(float);
  // pread even when the file is mapped: copying out of the map was slower (1.22 s against 1.00 s
  // for 1.6 GB in the page cache, bench_quantize_kernels) and left the pages resident.
  if (end > begin) read_bytes(out, (end - begin) * row, data_offset_ + begin * row, "palettes");
}

const float* PaletteFileReader::view(std::int64_t begin, std::int64_t end) const {
  check_range(begin, end);
  // Floats at an offset that is not a multiple of 4 (the ids' lengths decide it) would be
  // misaligned: no view then, and the caller copies (read_into).
  if (!map_ || data_offset_ % alignof(float) != 0) return nullptr;
  check_not_shrunk();
  const std::uint64_t row = static_cast<std::uint64_t>(L_ * D_) * sizeof(float);
  return reinterpret_cast<const float*>(map_ + data_offset_ + static_cast<std::uint64_t>(begin) * row);
}

void PaletteFileReader::release(std::int64_t begin, std::int64_t end) const noexcept {
  if (!map_ || begin < 0 || end <= begin || end > n_) return;
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t row = static_cast<std::uint64_t>(L_ * D_) * sizeof(float);
  const std::uint64_t first = (data_offset_ + begin * row) / page * page;
  const std::uint64_t last = std::min(file_size_, (data_offset_ + end * row + page - 1) / page * page);
  if (last > first) ::madvise(const_cast<char*>(map_) + first, last - first, MADV_DONTNEED);
}

void PaletteFileReader::prefetch(std::int64_t begin, std::int64_t end) const noexcept {
  begin = std::max<std::int64_t>(begin, 0);
  end = std::min(end, n_);
  if (fd_ < 0 || end <= begin) return;
  // One WILLNEED call over a whole chunk (64 MB) read 8 MB of it here (read_ahead_kb = 8192 on
  // the development VM; Linux caps each call at max(read_ahead_kb, max_sectors_kb)): 128 KiB
  // pieces stay under the cap with the usual settings, and cost ~7 ms per 512 MB already cached.
  constexpr std::uint64_t kPiece = 128u << 10;
  const std::uint64_t row = static_cast<std::uint64_t>(L_ * D_) * sizeof(float);
  const std::uint64_t last = data_offset_ + static_cast<std::uint64_t>(end) * row;
  for (std::uint64_t at = data_offset_ + static_cast<std::uint64_t>(begin) * row; at < last; at += kPiece) {
    if (::posix_fadvise(fd_, static_cast<off_t>(at), static_cast<off_t>(std::min(kPiece, last - at)),
                        POSIX_FADV_WILLNEED) != 0) {
      return;  // advisory
    }
  }
}

torch::Tensor PaletteFileReader::read(std::int64_t begin, std::int64_t end) const {
  check_range(begin, end);
  auto t = torch::empty({end - begin, L_, D_}, torch::kFloat32);
  read_into(begin, end, t.data_ptr<float>());
  return t;
}

void PaletteFileReader::check_crc(std::uint32_t computed) const {
  if (stored_crc_ != computed) {
    throw ParseError({path_.string(), 0, "crc32"},
                     fmt::format("checksum mismatch (stored {:08x}, computed {:08x}): the file is corrupted",
                                 stored_crc_, computed));
  }
}

void PaletteFileReader::verify_checksum() const {
  constexpr std::uint64_t kChunk = 64u << 20;
  detail::Crc32 crc(header_crc_);
  const std::uint64_t total = static_cast<std::uint64_t>(n_ * L_ * D_) * sizeof(float);
  if (map_) {  // the crc of the mapped bytes, no copy; the pages read are dropped behind
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    for (std::uint64_t done = 0; done < total;) {
      const auto size = std::min(kChunk, total - done);
      check_not_shrunk();
      crc.update(map_ + data_offset_ + done, size);
      const std::uint64_t first = (data_offset_ + done) / page * page, last = (data_offset_ + done + size) / page * page;
      if (last > first) ::madvise(const_cast<char*>(map_) + first, last - first, MADV_DONTNEED);
      done += size;
    }
    check_crc(crc.value());
    return;
  }
  std::vector<char> buf(std::min(kChunk, total));
  for (std::uint64_t done = 0; done < total;) {
    const auto size = std::min(kChunk, total - done);
    read_bytes(buf.data(), size, data_offset_ + done, "palettes");
    crc.update(buf.data(), size);
    done += size;
  }
  check_crc(crc.value());
}

PaletteFile load_palettes(const std::filesystem::path& path) {
  PaletteFileReader reader(path, /*verify_checksum=*/false);
  PaletteFile out;
  out.palettes = reader.read(0, reader.num_items());
  reader.check_crc(detail::Crc32(reader.header_crc_)
                       .update(out.palettes.data_ptr<float>(), std::size_t(out.palettes.numel()) * sizeof(float))
                       .value());
  out.item_ids = reader.item_ids_;
  return out;
}

}  // namespace lamia
