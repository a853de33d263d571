// Shard ranges and names, finding a stage's shard files in a run folder, and checking each one's record
// before a merge.
#include "shards.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/pipeline/manifest.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <regex>

namespace lamia {
namespace fs = std::filesystem;

ShardSpec parse_shard(const std::string& text) {
  static const std::regex pattern(R"(([0-9]{1,9})/([0-9]{1,9}))");
  std::smatch m;
  if (!std::regex_match(text, m, pattern))
    throw ValueError(fmt::format("--shard '{}': expected i/n with 0 <= i < n, e.g. 0/4", text));
  const ShardSpec shard{std::stoll(m[1].str()), std::stoll(m[2].str())};
  if (shard.count < 1 || shard.index >= shard.count)
    throw ValueError(fmt::format("--shard '{}': expected i/n with 0 <= i < n, e.g. 0/4", text));
  return shard;
}

std::pair<std::int64_t, std::int64_t> shard_range(std::int64_t num_items, const ShardSpec& shard) {
  if (shard.count < 1 || shard.index < 0 || shard.index >= shard.count)
    throw ValueError(fmt::format("shard {}/{}: expected 0 <= i < n", shard.index, shard.count));
  if (num_items < 0) throw ValueError(fmt::format("shard_range: num_items must be >= 0, got {}", num_items));
  return {shard.index * num_items / shard.count, (shard.index + 1) * num_items / shard.count};
}

std::string shard_file_name(const std::string& stem, const ShardSpec& shard, const std::string& extension) {
  return fmt::format("{}-{:05d}-of-{:05d}{}", stem, shard.index, shard.count, extension);
}

void Stage::run_shard(PipelineContext&, const ShardSpec&, const StageInputs&) {
  throw ValueError(fmt::format("pipeline: stage '{}' cannot be split into shards", name()));
}

std::vector<ArtifactSpec> Stage::merge_shards(PipelineContext&, const StageInputs&) {
  throw ValueError(fmt::format("pipeline: stage '{}' cannot be split into shards", name()));
}

std::vector<ShardFile> find_shard_files(const fs::path& dir, const std::string& stem, const std::string& extension,
                                        const std::string& make) {
  const std::regex pattern(stem + R"(-([0-9]{5})-of-([0-9]{5}))" + std::regex_replace(extension, std::regex(R"(\.)"), R"(\.)"));
  std::map<std::string, ShardFile> by_name;  // in name order
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const auto name = it->path().filename().string();
    std::smatch m;
    if (!std::regex_match(name, m, pattern)) continue;
    by_name[name] = ShardFile{it->path(), ShardSpec{std::stoll(m[1].str()), std::stoll(m[2].str())}};
  }
  const auto wanted = fmt::format("{}/{}-*-of-*{}", dir.string(), stem, extension);
  if (by_name.empty()) throw ValueError(fmt::format("merge: no shard files {}; run `{}` first", wanted, make));
  const auto& first = by_name.begin()->second;
  const auto count = first.shard.count;
  std::vector<ShardFile> out(std::size_t(std::max<std::int64_t>(count, 0)));
  for (const auto& [name, file] : by_name) {
    if (file.shard.count != count || file.shard.index >= count)
      throw ValueError(fmt::format("merge: {} is shard {} of {}, but {} is one of {} shards: the files come from "
                                   "different splits",
                                   file.path.string(), file.shard.index, file.shard.count, first.path.string(), count));
    out[std::size_t(file.shard.index)] = file;
  }
  for (std::int64_t i = 0; i < count; ++i) {
    if (out[std::size_t(i)].path.empty())
      throw ValueError(fmt::format("merge: shard {} of {} is missing: no {}", i, count,
                                   (dir / shard_file_name(stem, {i, count}, extension)).string()));
  }
  return out;
}

nlohmann::json shard_record(const std::string& stage, const std::string& kind, const ShardSpec& shard,
                            std::int64_t total, const std::vector<ShardOrigin>& origins) {
  const auto [begin, end] = shard_range(total, shard);
  nlohmann::json record = {{"format", "lamia-shard"}, {"version", 1},        {"stage", stage},
                           {"kind", kind},            {"shard", shard.index}, {"shards", shard.count},
                           {"first", begin},          {"count", end - begin}, {"total", total}};
  for (const auto& origin : origins) record[origin.key] = origin.expected;
  return record;
}

std::pair<std::int64_t, std::int64_t> check_shard_record(const ShardFile& file, const nlohmann::json& record,
                                                         const std::string& stage, const std::string& kind,
                                                         std::int64_t total, const std::vector<ShardOrigin>& origins) {
  const auto where = file.path.string();
  auto field = [&](const char* key) -> const nlohmann::json& {
    if (!record.is_object() || !record.contains(key))
      throw ValueError(fmt::format("merge: {} has no shard record (key '{}'): not written by a --shard run", where, key));
    return record.at(key);
  };
  if (field("format") != "lamia-shard" || field("stage") != stage || field("kind") != kind)
    throw ValueError(fmt::format("merge: {} is not a {} shard of the {} stage (its record says {} of {})", where, kind,
                                 stage, field("kind").dump(), field("stage").dump()));
  const auto index = field("shard").get<std::int64_t>(), count = field("shards").get<std::int64_t>();
  if (count != file.shard.count)
    throw ValueError(fmt::format("merge: {} holds shard {} of {}, its name says {} of {}: a file of another split",
                                 where, index, count, file.shard.index, file.shard.count));
  if (index != file.shard.index)
    throw ValueError(fmt::format("merge: {} is a duplicate of shard {} of {} (its record says shard {}), not shard {}",
                                 where, index, count, index, file.shard.index));
  for (const auto& origin : origins) {
    const auto got = field(origin.key.c_str()).get<std::string>();
    if (got != origin.expected)
      throw ValueError(fmt::format("merge: {} {} ({} {}, this folder's {})", where, origin.refusal, origin.key, got,
                                   origin.expected));
  }
  if (field("total").get<std::int64_t>() != total)
    throw ValueError(fmt::format("merge: {} was cut from {} items, this folder has {}", where,
                                 field("total").get<std::int64_t>(), total));
  const auto range = shard_range(total, file.shard);
  if (field("first").get<std::int64_t>() != range.first || field("count").get<std::int64_t>() != range.second - range.first)
    throw ValueError(fmt::format("merge: {} holds [{}, +{}), shard {} of {} is [{}, {})", where,
                                 field("first").get<std::int64_t>(), field("count").get<std::int64_t>(), index, count,
                                 range.first, range.second));
  return range;
}

std::string order_hash(const std::vector<std::string>& ids) {
  std::string text;
  for (const auto& id : ids) {
    text += id;
    text += '\n';
  }
  return hash_text(text);
}

}  // namespace lamia
