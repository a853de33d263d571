#pragma once
// The palette file: the palettes of all items (n x L x D float32) with their item ids.
// Layout (little-endian):
//   magic "LAMIAPAL" (8 bytes) | version u32 (1 or 2) | dtype u32 (0 = float32)
//   n u64 | L u64 | D u64 | [version 2 only: u64 length, metadata bytes] |
//   n x (u32 length, id bytes) | n*L*D float32 (row-major)
//   crc32 u32 of everything after the magic and before the crc
// A file without metadata is written as version 1 (so palettes.bin is the same bytes as before);
// version 2 carries a metadata text (a shard's record: lamia export-palettes --shard, pipeline.hpp).
// Written atomically (temporary file, then rename); every read is checked (magic, version,
// dtype, sizes, exact length, crc) and a bad file throws ParseError naming the file and field.
// PaletteFileReader reads the palettes with pread, or through a read-only mmap of the file when
// asked (pread when the map fails): see PaletteFileAccess for when and what a truncation does.
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace lamia {

inline constexpr std::uint32_t kPaletteFileVersion = 1;
/// The version of a palette file with a metadata text.
inline constexpr std::uint32_t kPaletteFileVersionWithMetadata = 2;

/// The content of a palette file.
struct PaletteFile {
  std::vector<std::string> item_ids;
  torch::Tensor palettes;  ///< [n, L, D] float32, CPU, contiguous
};

/// Produces the palettes of items [begin, end) as a [end - begin, L, D] tensor.
using PaletteProducer = std::function<torch::Tensor(std::int64_t begin, std::int64_t end)>;

/// Streams palettes to path in batches of batch_size items: produce is called for consecutive
/// ranges and its output written at once, so the n x L x D tensor is never held in memory.
/// A non-empty metadata text is stored in the file (version 2; PaletteFileReader::metadata()).
/// Throws ValueError when a batch has the wrong shape or non-finite values; IOError on write errors.
void write_palette_file(const std::filesystem::path& path, const std::vector<std::string>& item_ids,
                        std::int64_t palette_size, std::int64_t dim, const PaletteProducer& produce,
                        std::int64_t batch_size = 1024, const std::string& metadata = {});

/// Writes palettes [n, L, D] (any float dtype, converted to float32) with their item ids.
void save_palettes(const std::filesystem::path& path, const std::vector<std::string>& item_ids,
                   const torch::Tensor& palettes);

/// Reads and checks a palette file. Throws IOError when it cannot be read, ParseError when it is
/// not a valid palette file of this version.
PaletteFile load_palettes(const std::filesystem::path& path);

/// How PaletteFileReader reads the palettes (the header and item ids are always read with pread).
///
/// kMapped maps the whole file read-only (mmap, MADV_SEQUENTIAL: the quantizer reads it in passes,
/// in order), after the header and the exact file length have been checked. view() hands out the
/// mapped floats themselves (no copy; PaletteSource::from_reader uses it) when they are 4-byte
/// aligned in the file, and verify_checksum() reads the map; read_into still copies with pread
/// (copying out of the map was slower, and kept the pages resident). If mmap fails (ENOMEM, a file
/// system without mmap), the reader falls back to pread and mapped() is false.
///
/// A mapped file that another process truncates in place would raise SIGBUS on access. Every
/// view() and every chunk of verify_checksum() first checks the file's current size (fstat) and
/// throws IOError "... has shrunk to N bytes since it was opened" instead (pread reports the
/// short read as an IOError itself). What remains: a
/// truncation between that check and the access (or while a caller still uses a view) is not
/// caught. lamia's own writers never truncate in place (they write a temporary file and rename
/// it over the old one, and a reader keeps the old file), so this needs a foreign writer.
///
/// The default is kPread: on the 2-core development VM (a guest where every page-table update is
/// expensive: a fresh page costs ~14 us to fault in) a pass over 1.6 GB in the page cache took
/// 1.10-1.49 s with pread into a reused buffer against 1.52-2.16 s through the map's views in five
/// runs of six (one: 1.00 s against 0.80 s; at 328 MB the map was x1.41 faster;
/// bench_quantize_kernels, docs/quantize.md). The map saves the kernel's copy: measure at the
/// file's size before choosing it.
enum class PaletteFileAccess {
  kMapped,  ///< read-only mmap of the file; pread when mmap fails
  kPread,   ///< pread into the caller's buffer, one system call (and kernel copy) per read (the default)
};

/// Reads a palette file a range of items at a time, for catalogs whose palettes do not fit in
/// memory (1M items x 4 x 1024 floats = 16 GB): the header and ids are read and checked (magic,
/// version, dtype, shape, exact file length) on open, the palettes only when asked for.
/// A path that is not a regular file (a directory, a FIFO, a device) is an IOError, on open and
/// without blocking.
///
///   lamia::PaletteFileReader r("palettes.bin");        // checksum verified by one streaming pass
///   torch::Tensor p = r.read(1000, 2000);             // [1000, L, D] float32
class PaletteFileReader {
 public:
  /// Opens path; with verify_checksum the whole file is read once to check its crc32 (a mismatch
  /// throws ParseError, field "crc32"). Throws IOError / ParseError like load_palettes.
  explicit PaletteFileReader(const std::filesystem::path& path, bool verify_checksum = true,
                             PaletteFileAccess access = PaletteFileAccess::kPread);
  ~PaletteFileReader();
  PaletteFileReader(const PaletteFileReader&) = delete;
  PaletteFileReader& operator=(const PaletteFileReader&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  std::int64_t num_items() const noexcept { return n_; }
  std::int64_t palette_size() const noexcept { return L_; }
  std::int64_t dim() const noexcept { return D_; }
  const std::vector<std::string>& item_ids() const noexcept { return item_ids_; }
  /// The file's metadata text (empty for a version-1 file).
  const std::string& metadata() const noexcept { return metadata_; }

  /// Palettes of items [begin, end) as a new [end - begin, L, D] float32 tensor. Safe to call from
  /// several threads. Throws IndexError for a bad range, IOError on a read error.
  torch::Tensor read(std::int64_t begin, std::int64_t end) const;
  /// Same into out ((end - begin) * L * D floats), so that a loop can reuse one buffer (fresh
  /// pages cost a page fault each: reading into a new tensor can be several times slower).
  void read_into(std::int64_t begin, std::int64_t end, float* out) const;
  /// Reads the palettes once, in chunks, and checks the crc32 (ParseError on a mismatch).
  void verify_checksum() const;

  /// True when the palettes are read through the map (false: pread, asked for or the fallback).
  bool mapped() const noexcept { return map_ != nullptr; }
  /// The palettes of items [begin, end) inside the map, (end - begin) * L * D floats, not copied;
  /// nullptr when the file is not mapped. Valid while the reader lives; read-only (writing through
  /// it is a segmentation fault). Safe to call from several threads. Throws IndexError for a bad
  /// range, IOError when the file has shrunk since it was opened.
  const float* view(std::int64_t begin, std::int64_t end) const;
  /// Asks the kernel to read the palettes of items [begin, end) into the page cache and returns
  /// without waiting for the disk (posix_fadvise POSIX_FADV_WILLNEED, in pieces of 128 KiB: Linux
  /// reads at most the device's read-ahead size, read_ahead_kb, per call, and drops the rest of a
  /// larger range). Advisory: the range is clipped to the file's items and errors are ignored
  /// (the read itself reports them). Safe to call from several threads, and while another thread
  /// reads. PaletteSource::from_reader calls it for the next chunks on a thread of its own.
  void prefetch(std::int64_t begin, std::int64_t end) const noexcept;
  /// Drops the mapped pages of items [begin, end) from this process's resident set (madvise
  /// MADV_DONTNEED: the page cache keeps them, and a later view faults them back in), so that a
  /// pass over a file larger than memory does not count the whole file in the peak RSS. Views
  /// stay valid. Does nothing when the file is not mapped, or for a bad range.
  void release(std::int64_t begin, std::int64_t end) const noexcept;

 private:
  friend PaletteFile load_palettes(const std::filesystem::path& path);
  void check_range(std::int64_t begin, std::int64_t end) const;
  void read_bytes(void* dst, std::uint64_t size, std::uint64_t offset, const char* field) const;
  void check_crc(std::uint32_t computed) const;
  void check_not_shrunk() const;
  void close_file() noexcept;

  std::filesystem::path path_;
  int fd_ = -1;
  const char* map_ = nullptr;  // the whole file, PROT_READ, MAP_SHARED; nullptr: pread
  std::uint64_t file_size_ = 0;
  std::int64_t n_ = 0, L_ = 0, D_ = 0;
  std::vector<std::string> item_ids_;
  std::string metadata_;
  std::uint64_t data_offset_ = 0;
  std::uint32_t header_crc_ = 0;  // crc32 of the bytes between the magic and the palettes
  std::uint32_t stored_crc_ = 0;
};

}  // namespace lamia
