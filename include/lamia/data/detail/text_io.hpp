#pragma once
// Internals of the loaders: chunked (optionally gzipped) file reading, a line reader,
// an RFC 4180 CSV/TSV reader, UTF-8 validation and latin-1 conversion.
// Not part of the stable API.
#include <lamia/core/preview.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lamia::detail {

/// Offset of the first byte that is not part of valid UTF-8 (overlongs, surrogates and
/// code points above U+10FFFF are invalid), or std::string_view::npos when all is valid.
std::size_t find_invalid_utf8(std::string_view text) noexcept;
inline bool is_valid_utf8(std::string_view text) noexcept { return find_invalid_utf8(text) == std::string_view::npos; }
/// Each latin-1 byte becomes its code point in UTF-8.
std::string latin1_to_utf8(std::string_view text);
/// text with each byte that is not valid UTF-8 written as "\xNN": valid UTF-8 that still shows
/// the bytes (a folder name that is not UTF-8 can be a dataset name in JSON output).
std::string printable_utf8(std::string_view text);

/// Reads a file in large chunks; gzip files (detected by their magic, not their name)
/// are decompressed on the fly, in bounded memory. Throws IOError naming the path when it is
/// not a regular file (checked before opening: a FIFO never blocks), cannot be opened or read,
/// or is a gzip stream that is corrupt or ends early (a truncated download is never a clean end).
class ByteReader {
 public:
  explicit ByteReader(const std::filesystem::path& path);
  ~ByteReader();
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;
  /// Reads up to n bytes; 0 at end of file.
  std::size_t read(char* dst, std::size_t n);
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
  void* gz_ = nullptr;  // gzFile; zlib reads plain files transparently
};

/// A growing buffer over a ByteReader that hands out complete lines / records (at most
/// limits::kMaxRecordBytes each: the readers below throw ParseError past that).
class ChunkBuffer {
 public:
  explicit ChunkBuffer(const std::filesystem::path& path);
  /// Bytes from pos() to the end of what was read so far.
  const char* data() const noexcept { return buf_.get() + pos_; }
  std::size_t available() const noexcept { return end_ - pos_; }
  void consume(std::size_t n) noexcept { pos_ += n; }
  /// Reads more bytes (keeping the unconsumed ones); false at end of file.
  bool fill();
  bool eof() const noexcept { return eof_; }
  const std::filesystem::path& path() const noexcept { return reader_.path(); }
  /// At the start of the file: consumes a UTF-8 byte order mark; throws ParseError (line 1) for a
  /// UTF-16 or UTF-32 one, which would otherwise be reported as invalid UTF-8 at column 1.
  void skip_byte_order_mark();

 private:
  ByteReader reader_;
  std::unique_ptr<char[]> buf_;  // not zero-filled: only [pos_, end_) is ever read
  std::size_t capacity_ = 0, pos_ = 0, end_ = 0;
  bool eof_ = false;
};

/// Reads a file line by line ("\n" or "\r\n"); a UTF-8 byte order mark at the start is skipped.
class LineReader {
 public:
  explicit LineReader(const std::filesystem::path& path);
  /// The next line without its terminator; false at end of file.
  bool next(std::string_view& line);
  /// 1-based number of the line last returned.
  std::size_t line_number() const noexcept { return line_; }
  const std::filesystem::path& path() const noexcept { return in_.path(); }

 private:
  [[noreturn]] void too_long() const;
  ChunkBuffer in_;
  std::size_t line_ = 0;
  bool started_ = false;
};

/// Field separator and quoting of a delimited text file.
struct CsvDialect {
  char delimiter = ',';
  /// RFC 4180 double-quote quoting; off for MIND's TSV, whose titles contain bare quotes.
  bool quoting = true;
};

/// RFC 4180 reader: quoted fields with "" escapes and embedded newlines, LF or CRLF line
/// ends, a UTF-8 byte order mark skipped. Blank lines are skipped. A quote inside an
/// unquoted field, or text after a closing quote, is kept literally (as Python's csv does).
class CsvReader {
 public:
  explicit CsvReader(const std::filesystem::path& path, CsvDialect dialect = {});
  /// Reads the next record; false at end of file. Throws ParseError for a quoted field
  /// that is still open at the end of the file.
  bool next();
  std::size_t size() const noexcept { return offsets_.size() - 1; }
  std::string_view operator[](std::size_t i) const noexcept {
    return {storage_.data() + offsets_[i], offsets_[i + 1] - offsets_[i]};
  }
  /// 1-based line on which the current record starts.
  std::size_t line() const noexcept { return record_line_; }
  /// Index of the first field that is not valid UTF-8, or size() when all are valid.
  std::size_t first_invalid_utf8_field() const noexcept;
  const std::filesystem::path& path() const noexcept { return in_.path(); }
  std::string file_name() const { return in_.path().filename().string(); }
  /// Column names used in errors the reader itself raises (an unclosed quote).
  void set_field_names(std::vector<std::string> names) { names_ = std::move(names); }

 private:
  // Parses one record from the buffer; false when the buffer ends before the record does.
  bool parse(std::size_t& consumed, std::size_t& newlines);

  ChunkBuffer in_;
  CsvDialect dialect_;
  std::string storage_;
  std::vector<std::size_t> offsets_{0};
  std::vector<std::string> names_;
  std::size_t next_line_ = 1, record_line_ = 0;
  bool started_ = false;
};

}  // namespace lamia::detail
