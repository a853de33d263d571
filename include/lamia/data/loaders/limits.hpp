#pragma once
// The limits the readers of input files enforce, so that hostile input (a line of 50 MB, JSON
// nested 100k deep, a timestamp that would overflow) is a clear error instead of a crash, a hang
// or a silently wrong value. docs/data.md ("Bad input") explains each.
#include <cstddef>
#include <cstdint>

namespace lamia::limits {

/// Deepest nesting of arrays and objects in one JSON value (a JSON-lines record, an LC-Rec item,
/// a config file). Real records nest 3 deep; the readers recurse over the values they keep.
inline constexpr std::size_t kMaxJsonDepth = 256;

/// Longest line of a text file, or record of a CSV/TSV file (quoted newlines included), in bytes
/// after decompression. Longer ones are a ParseError; memory stays bounded by about twice this.
inline constexpr std::size_t kMaxRecordBytes = std::size_t(16) << 20;

/// Timestamps are Unix seconds from 0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z (the years an
/// ISO 8601 date can write); anything else is an error, never a wrapped or sentinel value.
inline constexpr std::int64_t kMinTimestamp = -62167219200;
inline constexpr std::int64_t kMaxTimestamp = 253402300799;

}  // namespace lamia::limits
