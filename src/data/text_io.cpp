#include <lamia/core/errors.hpp>
#include <lamia/core/input_file.hpp>
#include <lamia/data/detail/text_io.hpp>
#include <lamia/data/loaders/limits.hpp>

#include <fmt/format.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

namespace lamia::detail {

std::size_t find_invalid_utf8(std::string_view text) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, s + i, 8);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= n) break;
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return i;  // continuation byte, overlong 2-byte lead, or > U+10FFFF lead
    }
    if (i + len > n) return i;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string latin1_to_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (unsigned char c : text) {
    if (c < 0x80) {
      out.push_back(char(c));
    } else {
      out.push_back(char(0xC0 | (c >> 6)));
      out.push_back(char(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

std::string printable_utf8(std::string_view text) {
  std::string out;
  while (!text.empty()) {
    const std::size_t bad = find_invalid_utf8(text);
    out.append(text.substr(0, bad));
    if (bad == std::string_view::npos) break;
    out += fmt::format("\\x{:02X}", unsigned(static_cast<unsigned char>(text[bad])));
    text.remove_prefix(bad + 1);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

ByteReader::ByteReader(const std::filesystem::path& path) : path_(path) {
  require_regular_file(path);
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw IOError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  gzbuffer(f, 64);  // fuzz/: tiny reads exercise every chunk boundary (and skip ~1 MiB of mmaps per file)
#else
  gzbuffer(f, 1 << 18);
#endif
  gz_ = f;
}

ByteReader::~ByteReader() {
  if (gz_) gzclose(static_cast<gzFile>(gz_));
}

std::size_t ByteReader::read(char* dst, std::size_t n) {
  auto* f = static_cast<gzFile>(gz_);
  int got = gzread(f, dst, unsigned(std::min<std::size_t>(n, 1u << 30)));
  if (got > 0) return std::size_t(got);
  // End of input or an error. zlib reports a gzip stream cut short as Z_BUF_ERROR with the data
  // read so far and no error return: without this check a truncated download reads as a clean
  // end of file with its last rows lost.
  int code = Z_OK;
  const char* msg = gzerror(f, &code);
  const char* reason = msg && *msg ? msg : "unknown error";
  if (code == Z_BUF_ERROR)
    throw IOError(fmt::format("{}: the gzip stream ends early (truncated file?): {}", path_.string(), reason));
  if (code == Z_DATA_ERROR)
    throw IOError(fmt::format("{}: corrupt gzip data: {}", path_.string(), reason));
  if (got < 0 || code != Z_OK) throw IOError(fmt::format("{}: read error: {}", path_.string(), reason));
  return 0;
}

// ---------------------------------------------------------------------------------------------

namespace {
// Reads of 256 KiB amortise the system calls; the buffer grows only for longer records. The fuzzing
// build (fuzz/CMakeLists.txt) reads 61 bytes at a time, so that records cross chunk boundaries.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr std::size_t kChunk = 61;
#else
constexpr std::size_t kChunk = 1 << 18;
#endif
}

ChunkBuffer::ChunkBuffer(const std::filesystem::path& path) : reader_(path) {}

bool ChunkBuffer::fill() {
  if (eof_) return false;
  // Keep the unconsumed tail at the front, then append a chunk.
  if (pos_ > 0) {
    std::memmove(buf_.get(), buf_.get() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  if (capacity_ < end_ + kChunk) {
    std::size_t grown = std::max(capacity_ * 2, end_ + kChunk);
    std::unique_ptr<char[]> bigger(new char[grown]);
    if (end_ > 0) std::memcpy(bigger.get(), buf_.get(), end_);
    buf_ = std::move(bigger);
    capacity_ = grown;
  }
  std::size_t got = reader_.read(buf_.get() + end_, capacity_ - end_);
  if (got == 0) {
    eof_ = true;
    return false;
  }
  end_ += got;
  return true;
}

void ChunkBuffer::skip_byte_order_mark() {
  while (available() < 4 && fill()) {
  }
  const auto* b = reinterpret_cast<const unsigned char*>(data());
  const std::size_t n = available();
  if (n >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF) {
    consume(3);
    return;
  }
  const bool utf32 = n >= 4 && ((b[0] == 0xFF && b[1] == 0xFE && b[2] == 0 && b[3] == 0) ||
                                (b[0] == 0 && b[1] == 0 && b[2] == 0xFE && b[3] == 0xFF));
  if (utf32 || (n >= 2 && ((b[0] == 0xFF && b[1] == 0xFE) || (b[0] == 0xFE && b[1] == 0xFF)))) {
    const char* encoding = utf32 ? "UTF-32" : "UTF-16";
    throw ParseError({path().filename().string(), 1, ""},
                     fmt::format("the file is {} (it starts with a {} byte order mark); lamia reads UTF-8: convert "
                                 "it first, e.g. iconv -f {} -t UTF-8", encoding, encoding, encoding));
  }
}

// ---------------------------------------------------------------------------------------------

LineReader::LineReader(const std::filesystem::path& path) : in_(path) {}

bool LineReader::next(std::string_view& line) {
  if (!started_) {
    started_ = true;
    in_.skip_byte_order_mark();
  }
  std::size_t searched = 0;
  for (;;) {
    const char* p = in_.data();
    const void* nl = std::memchr(p + searched, '\n', in_.available() - searched);
    if (nl) {
      std::size_t len = std::size_t(static_cast<const char*>(nl) - p);
      in_.consume(len + 1);
      if (len > 0 && p[len - 1] == '\r') --len;
      line = {p, len};
      ++line_;
      return true;
    }
    searched = in_.available();
    if (searched > limits::kMaxRecordBytes) too_long();
    if (!in_.fill()) {
      if (in_.available() == 0) return false;
      // Last line without a terminator.
      std::size_t len = in_.available();
      const char* q = in_.data();
      in_.consume(len);
      if (len > 0 && q[len - 1] == '\r') --len;
      line = {q, len};
      ++line_;
      return true;
    }
  }
}

void LineReader::too_long() const {
  throw ParseError({in_.path().filename().string(), line_ + 1, ""},
                   fmt::format("line is longer than {} MiB (the limit of one line; is this a text file with line ends?)",
                               limits::kMaxRecordBytes >> 20));
}

// ---------------------------------------------------------------------------------------------

CsvReader::CsvReader(const std::filesystem::path& path, CsvDialect dialect) : in_(path), dialect_(dialect) {}

std::size_t CsvReader::first_invalid_utf8_field() const noexcept {
  // Validate the whole record first: the common case is one pass. A valid record can still split a
  // character between two fields ("\xCE" and "\xA2a" make "\xCE\xA2a"): then a field starts with a
  // continuation byte, and the fields are checked one by one.
  if (is_valid_utf8(storage_)) {
    bool split = false;
    for (std::size_t i = 1; i < size() && !split; ++i) {
      const auto f = (*this)[i];
      split = !f.empty() && (static_cast<unsigned char>(f[0]) & 0xC0) == 0x80;
    }
    if (!split) return size();
  }
  for (std::size_t i = 0; i < size(); ++i)
    if (!is_valid_utf8((*this)[i])) return i;
  return size();
}

bool CsvReader::parse(std::size_t& consumed, std::size_t& newlines) {
  const char* p = in_.data();
  const std::size_t n = in_.available();
  const char delim = dialect_.delimiter;
  storage_.clear();
  offsets_.assign(1, 0);
  newlines = 0;
  std::size_t i = 0;
  for (;;) {
    // One field.
    if (dialect_.quoting && i < n && p[i] == '"') {
      ++i;
      for (;;) {
        const char* start = p + i;
        // Copy runs of plain bytes in one go.
        const void* q = std::memchr(start, '"', n - i);
        std::size_t run = q ? std::size_t(static_cast<const char*>(q) - start) : n - i;
        for (std::size_t k = 0; k < run; ++k)
          if (start[k] == '\n') ++newlines;
        storage_.append(start, run);
        i += run;
        if (i >= n) return false;  // the closing quote is not in the buffer yet
        if (i + 1 >= n) {
          if (!in_.eof()) return false;  // cannot tell "" from " + end yet
          ++i;
          break;
        }
        if (p[i + 1] == '"') {
          storage_.push_back('"');
          i += 2;
          continue;
        }
        ++i;  // closing quote
        break;
      }
      // Text after the closing quote up to the delimiter is kept literally.
    }
    {
      std::size_t j = i;
      while (j < n && p[j] != delim && p[j] != '\n') ++j;
      storage_.append(p + i, j - i);
      i = j;
    }
    if (i >= n) {
      if (!in_.eof()) return false;
      // Last record without a line end.
      if (!storage_.empty() && storage_.back() == '\r') storage_.pop_back();
      offsets_.push_back(storage_.size());
      consumed = i;
      return true;
    }
    if (p[i] == delim) {
      offsets_.push_back(storage_.size());
      ++i;
      continue;
    }
    // '\n': end of record; drop the '\r' of CRLF.
    if (!storage_.empty() && storage_.back() == '\r' && (offsets_.back() < storage_.size())) storage_.pop_back();
    offsets_.push_back(storage_.size());
    ++newlines;
    consumed = i + 1;
    return true;
  }
}

bool CsvReader::next() {
  if (!started_) {
    started_ = true;
    in_.skip_byte_order_mark();
  }
  for (;;) {
    if (in_.available() == 0 && !in_.fill()) return false;
    // Blank lines are skipped (a trailing one is common).
    if (in_.data()[0] == '\n' || (in_.available() >= 2 && in_.data()[0] == '\r' && in_.data()[1] == '\n')) {
      in_.consume(in_.data()[0] == '\n' ? 1 : 2);
      ++next_line_;
      continue;
    }
    std::size_t consumed = 0, newlines = 0;
    while (!parse(consumed, newlines)) {
      if (in_.available() > limits::kMaxRecordBytes) {
        std::size_t f = offsets_.size() - 1;
        throw ParseError({in_.path().filename().string(), next_line_,
                          f < names_.size() ? names_[f] : "#" + std::to_string(f + 1)},
                         fmt::format("record is longer than {} MiB (the limit of one row; an unclosed quote?)",
                                     limits::kMaxRecordBytes >> 20));
      }
      if (!in_.fill()) {
        if (!in_.eof()) continue;
        // At EOF parse() only fails inside a quoted field that never closes.
        if (!parse(consumed, newlines)) {
          std::size_t f = offsets_.size() - 1;
          throw ParseError({in_.path().filename().string(), next_line_,
                            f < names_.size() ? names_[f] : "#" + std::to_string(f + 1)},
                           "quoted field is not closed before the end of the file (truncated row?)");
        }
        break;
      }
    }
    if (offsets_.size() == 2 && storage_.empty()) {  // a lone "\r" line
      in_.consume(consumed);
      next_line_ += newlines;
      continue;
    }
    record_line_ = next_line_;
    next_line_ += newlines;
    in_.consume(consumed);
    return true;
  }
}

}  // namespace lamia::detail
