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
#include <type_traits>
#include <utility>

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
  /// A reader that also has view(begin, end) (a pointer to its own floats, or nullptr) and
  /// release(begin, end), as a mapped PaletteFileReader, is read without a copy: each chunk is a
  /// tensor over the view (not writable), and the previous chunk's pages are released when the
  /// next one is read, so that the resident set holds about one chunk of the file. Where view()
  /// gives nullptr (a file read with pread, or whose floats are misaligned) chunks are copied.
  template <class Reader>
  static PaletteSource from_reader(const Reader& reader, std::int64_t chunk_items = 4096) {
    PaletteSource s;
    s.num_items = reader.num_items();
    s.num_positions = reader.palette_size();
    s.dim = reader.dim();
    s.chunk_items = chunk_items;
    auto buffer = std::make_shared<torch::Tensor>();
    auto previous = std::make_shared<std::pair<std::int64_t, std::int64_t>>(0, 0);  // the last view's items
    s.read = [&reader, buffer, previous, L = s.num_positions, D = s.dim](std::int64_t begin, std::int64_t end) {
      if constexpr (has_view<Reader>::value) {
        if (const float* p = reader.view(begin, end)) {
          reader.release(previous->first, previous->second);
          *previous = {begin, end};
          return torch::from_blob(const_cast<float*>(p), {end - begin, L, D}, torch::kFloat32);
        }
      }
      if (!buffer->defined() || buffer->size(0) < end - begin) *buffer = torch::empty({end - begin, L, D});
      auto out = buffer->narrow(0, 0, end - begin);
      reader.read_into(begin, end, out.data_ptr<float>());
      return out;
    };
    return s;
  }

 private:
  template <class R, class = void>
  struct has_view : std::false_type {};
  template <class R>
  struct has_view<R, std::void_t<decltype(std::declval<const R&>().view(std::int64_t{}, std::int64_t{})),
                                 decltype(std::declval<const R&>().release(std::int64_t{}, std::int64_t{}))>>
      : std::true_type {};
};

}  // namespace lamia
