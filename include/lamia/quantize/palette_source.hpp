#pragma once
// PaletteSource: palettes (n x L x D float32) read a range of items at a time, so that the
// quantizer can fit and encode catalogs whose palettes do not fit in memory. The quantizer
// reads every range in order, a few times (PaletteQuantizer::fit makes three passes over all items,
// two with a PCA sample, pca.max_items; a sample of at most 1 item in 32 is read alone first, in
// order, and then all items once).
//
//   lamia::PaletteSource a = lamia::PaletteSource::from_tensor(palettes);       // in memory, no copy
//   lamia::PaletteFileReader file("palettes.bin");                               // lamia/palette
//   lamia::PaletteSource b = lamia::PaletteSource::from_reader(file);           // streamed from disk
//   quantizer.fit(b);
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>

namespace lamia {

struct PaletteSource {
  std::int64_t num_items = 0;
  std::int64_t num_positions = 0;  ///< L
  std::int64_t dim = 0;            ///< D
  /// Palettes of items [begin, end) as a [end - begin, L, D] float32 CPU tensor (any strides).
  /// The tensor need only stay valid until the next call: a source may reuse one buffer.
  std::function<torch::Tensor(std::int64_t begin, std::int64_t end)> read;
  /// Items per read() call (the memory of one chunk is chunk_items * L * D * 4 bytes).
  std::int64_t chunk_items = 4096;

  /// Slices of an n x L x D float32 CPU tensor (kept alive by the source; not copied).
  static PaletteSource from_tensor(const torch::Tensor& palettes);
  /// Slices of n*L*D floats, row-major (item, position, dimension); the caller keeps them alive.
  static PaletteSource from_pointer(const float* palettes, std::int64_t num_items, std::int64_t num_positions,
                                    std::int64_t dim);
  /// Anything with num_items(), palette_size(), dim() and read_into(begin, end, float* out), such
  /// as PaletteFileReader; the reader must outlive the source. Chunks are read into one buffer.
  template <class Reader>
  static PaletteSource from_reader(const Reader& reader, std::int64_t chunk_items = 4096) {
    PaletteSource s;
    s.num_items = reader.num_items();
    s.num_positions = reader.palette_size();
    s.dim = reader.dim();
    s.chunk_items = chunk_items;
    auto buffer = std::make_shared<torch::Tensor>();
    s.read = [&reader, buffer, L = s.num_positions, D = s.dim](std::int64_t begin, std::int64_t end) {
      if (!buffer->defined() || buffer->size(0) < end - begin) *buffer = torch::empty({end - begin, L, D});
      auto out = buffer->narrow(0, 0, end - begin);
      reader.read_into(begin, end, out.data_ptr<float>());
      return out;
    };
    return s;
  }
};

}  // namespace lamia
