#include <lamia/core/atomic_file.hpp>
#include <lamia/core/binary_io.hpp>

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>

namespace lamia::detail {

Crc32::Crc32() : value_(static_cast<std::uint32_t>(::crc32(0L, Z_NULL, 0))) {}

Crc32& Crc32::update(const void* data, std::size_t size) {
  uLong crc = value_;
  const auto* p = static_cast<const Bytef*>(data);
  while (size > 0) {  // zlib takes uInt lengths
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(size, 1u << 30));
    crc = ::crc32(crc, p, chunk);
    p += chunk;
    size -= chunk;
  }
  value_ = static_cast<std::uint32_t>(crc);
  return *this;
}

std::uint32_t crc32_of(const void* data, std::size_t size) { return Crc32().update(data, size).value(); }

BinaryReader::BinaryReader(const std::filesystem::path& path)
    : BinaryReader(read_file(path), path.string()) {}

BinaryReader::BinaryReader(std::string bytes, std::string name)
    : bytes_(std::move(bytes)), name_(std::move(name)), end_(bytes_.size()) {}

void BinaryReader::fail(const std::string& what) const { throw ValueError(fmt::format("{}: {}", name_, what)); }

void BinaryReader::truncated(const char* field, std::size_t need) const {
  fail(fmt::format("truncated file: field '{}' at byte {} needs {} bytes, {} left", field, pos_, need, remaining()));
}

void BinaryReader::take(void* out, std::size_t n, const char* field) {
  if (n > remaining()) truncated(field, n);
  if (n == 0) return;  // out may be null (an empty vector's data()), which memcpy forbids even for 0 bytes
  std::memcpy(out, bytes_.data() + pos_, n);
  pos_ += n;
}

std::uint32_t BinaryReader::expect_header(std::string_view magic, std::string_view kind,
                                          std::uint32_t supported_version) {
  if (bytes_.size() < magic.size() || std::string_view(bytes_).substr(0, magic.size()) != magic) {
    fail(fmt::format("bad magic: not a {} file (expected the bytes '{}' at the start)", kind, magic));
  }
  pos_ = magic.size();
  const auto version = get<std::uint32_t>("version");
  if (version != supported_version) {
    fail(fmt::format("unsupported {} format version {} (this build reads version {})", kind, version,
                     supported_version));
  }
  return version;
}

void BinaryReader::verify_checksum() {
  if (end_ < pos_ + 4) truncated("checksum", 4);
  std::uint32_t stored;
  std::memcpy(&stored, bytes_.data() + end_ - 4, 4);
  const std::uint32_t actual = crc32_of(bytes_.data(), end_ - 4);
  if (stored != actual) {
    fail(fmt::format("checksum mismatch (stored {:08x}, computed {:08x}): the file is corrupted", stored, actual));
  }
  end_ -= 4;
}

std::uint64_t BinaryReader::get_size(const char* field, std::uint64_t lo, std::uint64_t hi) {
  const auto v = get<std::uint64_t>(field);
  if (v < lo || v > hi) fail(fmt::format("field '{}' is {}, expected {} to {}", field, v, lo, hi));
  return v;
}

void BinaryReader::expect_remaining(std::uint64_t payload_bytes, const std::string& what) {
  const std::uint64_t have = remaining();
  if (have < payload_bytes + 4) {
    fail(fmt::format("truncated file: the header promises {} ({} bytes + 4-byte checksum) after byte {}, only {} left",
                     what, payload_bytes, pos_, have));
  }
  if (have > payload_bytes + 4) {
    fail(fmt::format("inconsistent sizes: the header promises {} ({} bytes + 4-byte checksum) after byte {}, but {} "
                     "bytes are left",
                     what, payload_bytes, pos_, have));
  }
}

void BinaryReader::expect_end() {
  if (pos_ != end_) fail(fmt::format("inconsistent sizes: {} unexpected bytes after the data", end_ - pos_));
}

}  // namespace lamia::detail
