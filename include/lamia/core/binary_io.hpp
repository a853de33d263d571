#pragma once
// Checked binary I/O for lamia's versioned binary files (semantic-ID tables, quantizers, palette
// files): a writer that appends fixed-width little-endian fields to a buffer, a reader whose every
// read is bounds-checked and whose errors name the file, the field and the byte offset, and the
// CRC-32 that ends every file (a running one for files streamed in chunks).
#include <lamia/core/errors.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace lamia::detail {

/// A running CRC-32 (zlib's polynomial) over bytes fed in any number of pieces of any size.
class Crc32 {
 public:
  Crc32();
  /// Starts from the CRC of bytes already seen.
  explicit Crc32(std::uint32_t value) : value_(value) {}
  Crc32& update(const void* data, std::size_t size);
  std::uint32_t value() const noexcept { return value_; }

 private:
  std::uint32_t value_;
};

/// CRC-32 (zlib) of bytes.
std::uint32_t crc32_of(const void* data, std::size_t size);

class BinaryWriter {
 public:
  template <typename T>
  void put(T value) {
    static_assert(std::is_arithmetic_v<T>);
    append(&value, sizeof(T));
  }
  template <typename T>
  void put_array(const T* values, std::size_t count) {
    static_assert(std::is_arithmetic_v<T>);
    append(values, sizeof(T) * count);
  }
  void put_bytes(std::string_view bytes) { append(bytes.data(), bytes.size()); }
  /// Appends the CRC-32 of everything written so far; call last.
  void put_checksum() { put<std::uint32_t>(crc32_of(buffer_.data(), buffer_.size())); }
  const std::string& bytes() const noexcept { return buffer_; }

 private:
  void append(const void* p, std::size_t n) { buffer_.append(static_cast<const char*>(p), n); }
  std::string buffer_;
};

class BinaryReader {
 public:
  /// Reads the whole file (IOError when it cannot be read).
  explicit BinaryReader(const std::filesystem::path& path);
  BinaryReader(std::string bytes, std::string name);

  /// Throws ValueError "<file>: <what>".
  [[noreturn]] void fail(const std::string& what) const;

  /// Checks the magic bytes and returns the version that follows it (uint32).
  std::uint32_t expect_header(std::string_view magic, std::string_view kind, std::uint32_t supported_version);
  /// Checks that the last 4 bytes are the CRC-32 of the rest; excludes them from reading.
  void verify_checksum();

  template <typename T>
  T get(const char* field) {
    static_assert(std::is_arithmetic_v<T>);
    T value;
    take(&value, sizeof(T), field);
    return value;
  }
  template <typename T>
  void get_array(T* out, std::size_t count, const char* field) {
    static_assert(std::is_arithmetic_v<T>);
    if (count > remaining() / sizeof(T)) truncated(field, count * sizeof(T));
    take(out, sizeof(T) * count, field);
  }
  template <typename T>
  std::vector<T> get_vector(std::size_t count, const char* field) {
    if (count > remaining() / sizeof(T)) truncated(field, count * sizeof(T));
    std::vector<T> v(count);
    get_array(v.data(), count, field);
    return v;
  }
  /// Reads a uint64 count and checks lo <= value <= hi.
  std::uint64_t get_size(const char* field, std::uint64_t lo, std::uint64_t hi);
  std::size_t remaining() const noexcept { return end_ - pos_; }
  std::size_t position() const noexcept { return pos_; }
  /// Checks, before reading the data, that exactly payload_bytes plus the 4-byte
  /// checksum remain (what names the data, e.g. "100 items x 5 codes").
  void expect_remaining(std::uint64_t payload_bytes, const std::string& what);
  /// Fails unless every byte (before the checksum) was read.
  void expect_end();
  const std::string& name() const noexcept { return name_; }

 private:
  void take(void* out, std::size_t n, const char* field);
  [[noreturn]] void truncated(const char* field, std::size_t need) const;
  std::string bytes_;
  std::string name_;
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
};

}  // namespace lamia::detail
