#pragma once
// The palette file: the palettes of all items (n x L x D float32) with their item ids.
// Layout (little-endian):
//   magic "LAMIAPAL" (8 bytes) | version u32 (= 1) | dtype u32 (0 = float32)
//   n u64 | L u64 | D u64 | n x (u32 length, id bytes) | n*L*D float32 (row-major)
//   crc32 u32 of everything after the magic and before the crc
// Written atomically (temporary file, then rename); every read is checked (magic, version,
// dtype, sizes, exact length, crc) and a bad file throws ParseError naming the file and field.
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace lamia {

inline constexpr std::uint32_t kPaletteFileVersion = 1;

/// The content of a palette file.
struct PaletteFile {
  std::vector<std::string> item_ids;
  torch::Tensor palettes;  ///< [n, L, D] float32, CPU, contiguous
};

/// Produces the palettes of items [begin, end) as a [end - begin, L, D] tensor.
using PaletteProducer = std::function<torch::Tensor(std::int64_t begin, std::int64_t end)>;

/// Streams palettes to path in batches of batch_size items: produce is called for consecutive
/// ranges and its output written at once, so the n x L x D tensor is never held in memory.
/// Throws ValueError when a batch has the wrong shape or non-finite values; IOError on write errors.
void write_palette_file(const std::filesystem::path& path, const std::vector<std::string>& item_ids,
                        std::int64_t palette_size, std::int64_t dim, const PaletteProducer& produce,
                        std::int64_t batch_size = 1024);

/// Writes palettes [n, L, D] (any float dtype, converted to float32) with their item ids.
void save_palettes(const std::filesystem::path& path, const std::vector<std::string>& item_ids,
                   const torch::Tensor& palettes);

/// Reads and checks a palette file. Throws IOError when it cannot be read, ParseError when it is
/// not a valid palette file of this version.
PaletteFile load_palettes(const std::filesystem::path& path);

}  // namespace lamia
