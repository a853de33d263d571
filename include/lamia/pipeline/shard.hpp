#pragma once
// A stage's items split over processes or machines: shard i of n is the i-th contiguous part of the
// item order, sizes differing by at most one (the rule of pylamia.distributed.shard:
// [i * N / n, (i + 1) * N / n)). `lamia export-palettes DIR --shard i/n` and `lamia evaluate DIR
// --shard i/n` run one part; `--merge` checks the parts and writes what the unsplit stage writes
// (docs/distributed.md, "Running the pipeline across machines").
#include <cstdint>
#include <string>
#include <utility>

namespace lamia {

struct ShardSpec {
  std::int64_t index = 0;  ///< 0 <= index < count
  std::int64_t count = 1;
};

/// Parses "i/n" (0 <= i < n). Throws ValueError naming the text.
ShardSpec parse_shard(const std::string& text);

/// [begin, end) of shard over num_items items. Throws ValueError for a bad shard.
std::pair<std::int64_t, std::int64_t> shard_range(std::int64_t num_items, const ShardSpec& shard);

/// "<stem>-00001-of-00003<extension>": the file name of a shard.
std::string shard_file_name(const std::string& stem, const ShardSpec& shard, const std::string& extension);

}  // namespace lamia
