#pragma once
// PaletteSource: palettes (n x L x D float32) read a range of items at a time, so that the
// quantizer can fit and encode catalogs whose palettes do not fit in memory. The quantizer
// reads every range in order, a few times (PaletteQuantizer::fit makes three passes over all items,
// two with a PCA sample, pca.max_items; a sample of at most 1 item in 32 is read alone first, in
// order, and then all items once). A source made from a palette file (from_reader) has the disk
// read the next chunks while the quantizer computes on this one (a prefetch on a thread of its own,
// PaletteFileReader::prefetch; docs/quantize.md, "reading ahead"), so that a fit from a file that
// is not in the page cache does not wait for each chunk in turn.
//
//   lamia::PaletteSource a = lamia::PaletteSource::from_tensor(palettes);       // in memory, no copy
//   lamia::PaletteFileReader file("palettes.bin");                               // lamia/palette
//   lamia::PaletteSource b = lamia::PaletteSource::from_reader(file);           // streamed from disk
//   quantizer.fit(b);
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <system_error>
#include <thread>
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
  ///
  /// Reading ahead: a reader that also has prefetch(begin, end) (advisory, no result; as
  /// PaletteFileReader, which asks the kernel to read the range into the page cache) is asked,
  /// on a background thread, for the read_ahead_chunks chunks after each read that continues the
  /// previous one (or starts at item 0), so that the disk reads the next chunks while the caller
  /// computes on this one. At most one prefetch runs at a time: the thread is joined before the
  /// next one starts and when the last copy of the source is destroyed; a prefetch never goes
  /// past num_items, never covers items already asked for, and is not made for reads that jump
  /// (a sparse sample). It changes no value read. read_ahead_chunks = 0 turns it off.
  template <class Reader>
  static PaletteSource from_reader(const Reader& reader, std::int64_t chunk_items = 4096,
                                   std::int64_t read_ahead_chunks = 2) {
    PaletteSource s;
    s.num_items = reader.num_items();
    s.num_positions = reader.palette_size();
    s.dim = reader.dim();
    s.chunk_items = chunk_items;
    auto buffer = std::make_shared<torch::Tensor>();
    auto previous = std::make_shared<std::pair<std::int64_t, std::int64_t>>(0, 0);  // the last view's items
    std::shared_ptr<ReadAhead> ahead;
    if constexpr (has_prefetch<Reader>::value) {
      if (read_ahead_chunks > 0) ahead = std::make_shared<ReadAhead>();
    }
    s.read = [&reader, buffer, previous, ahead, read_ahead_chunks, n = s.num_items, L = s.num_positions,
              D = s.dim](std::int64_t begin, std::int64_t end) {
      if constexpr (has_prefetch<Reader>::value) {
        if (ahead) {
          ahead->next(begin, end, read_ahead_chunks, n,
                      [&reader](std::int64_t b, std::int64_t e) { reader.prefetch(b, e); });
        }
      }
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
  // The read-ahead of one source (shared by its copies): the thread of the prefetch in flight, and
  // how far the reads and the prefetches have gone.
  struct ReadAhead {
    std::thread thread;
    std::int64_t last_end = -1;   // the end of the last read; -1: none yet
    std::int64_t asked_to = 0;    // items before this one were read or prefetched in this run of reads
    ReadAhead() = default;
    ReadAhead(const ReadAhead&) = delete;
    ReadAhead& operator=(const ReadAhead&) = delete;
    ~ReadAhead() { join(); }
    void join() noexcept {
      if (thread.joinable()) thread.join();
    }
    // Called before items [begin, end) are read: starts the prefetch of the items up to
    // end + chunks * (end - begin) (at most n) not yet asked for, when this read continues the last.
    template <class Prefetch>
    void next(std::int64_t begin, std::int64_t end, std::int64_t chunks, std::int64_t n, Prefetch prefetch) {
      const bool continues = begin == last_end || begin == 0;
      last_end = end;
      if (!continues || end <= begin) {
        asked_to = end;
        return;
      }
      if (begin == 0 || asked_to < end) asked_to = end;
      const std::int64_t span = end - begin;
      const std::int64_t target = span > (n - end) / chunks ? n : end + chunks * span;
      if (target <= asked_to) return;
      join();  // one prefetch at a time
      const std::int64_t from = asked_to;
      asked_to = target;
      try {
        thread = std::thread([prefetch, from, target]() noexcept {
          try {
            prefetch(from, target);
          } catch (...) {  // advisory: the read itself reports errors
          }
        });
      } catch (const std::system_error&) {  // no thread: read without prefetching
      }
    }
  };

  template <class R, class = void>
  struct has_prefetch : std::false_type {};
  template <class R>
  struct has_prefetch<R, std::void_t<decltype(std::declval<const R&>().prefetch(std::int64_t{}, std::int64_t{}))>>
      : std::true_type {};

  template <class R, class = void>
  struct has_view : std::false_type {};
  template <class R>
  struct has_view<R, std::void_t<decltype(std::declval<const R&>().view(std::int64_t{}, std::int64_t{})),
                                 decltype(std::declval<const R&>().release(std::int64_t{}, std::int64_t{}))>>
      : std::true_type {};
};

}  // namespace lamia
