// The evaluate stage split over processes: `lamia evaluate DIR --shard i/n` evaluates the i-th part of
// the test users and writes its per-user metric sums and counts to DIR/eval_shards/; `--merge` checks
// the n parts and adds them up into metrics.json. The unsplit stage goes through the same merge with
// one part, so both write the same metrics (to the summation order of the sums).
#include "../context.hpp"
#include "shards.hpp"

#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/evaluate/metrics.hpp>

#include <fmt/format.h>

namespace lamia {
namespace {

constexpr const char* kEvaluationShardsDir = "eval_shards";
constexpr const char* kMakeEvaluationShards = "lamia evaluate DIR --shard i/n";

// What every part must have been made from: the stage's settings and its inputs (the recommenders).
std::vector<ShardOrigin> evaluation_shard_origins(const StageInputs& inputs) {
  return {{"config_hash", inputs.config_hash, "was evaluated with other settings"},
          {"inputs_hash", inputs.inputs_hash, "was evaluated on other recommenders or data"}};
}

// One method's entry of a part added into the merged one: reports and rankings by their sums, numbers
// (seconds, counters) summed, the rest (kind, tokenizer) kept.
void add_method_part(nlohmann::json& merged, const nlohmann::json& part) {
  for (const auto& [key, value] : part.items()) {
    if (!merged.contains(key)) {
      merged[key] = value;
    } else if (value.is_object() && value.contains("overall")) {
      auto report = EvaluationReport::from_sums_json(merged[key]);
      report.merge(EvaluationReport::from_sums_json(value));
      merged[key] = report.sums_json();
    } else if (value.is_object() && value.contains("rr_sum")) {
      auto metrics = RankingMetrics::from_sums_json(merged[key]);
      metrics.merge(RankingMetrics::from_sums_json(value));
      merged[key] = metrics.sums_json();
    } else if (value.is_number_integer()) {
      merged[key] = merged[key].get<std::int64_t>() + value.get<std::int64_t>();
    } else if (value.is_number()) {
      merged[key] = merged[key].get<double>() + value.get<double>();
    } else if (merged[key] != value) {
      throw ValueError(fmt::format("merge: the parts of the evaluation differ in '{}': {} and {}", key,
                                   merged[key].dump(), value.dump()));
    }
  }
}

}  // namespace

nlohmann::json merge_evaluation_parts(const std::vector<nlohmann::json>& parts) {
  if (parts.empty()) throw ValueError("merge_evaluation_parts: no parts");
  nlohmann::json metrics = parts.front();
  std::int64_t users = 0;
  nlohmann::json methods = nlohmann::json::object();
  for (const auto& part : parts) {
    if (part.at("first_user").get<std::int64_t>() != users)
      throw ValueError(fmt::format("merge: a part of the evaluation starts at user {}, expected {}",
                                   part.at("first_user").dump(), users));
    users += part.at("users").get<std::int64_t>();
    for (const auto& [name, m] : part.at("methods").items()) add_method_part(methods[name], m);
  }
  if (users != metrics.at("test_users").get<std::int64_t>())
    throw ValueError(fmt::format("merge: the parts of the evaluation hold {} users, the test has {}", users,
                                 metrics.at("test_users").dump()));
  // Means from the sums and counts.
  for (auto& m : methods) {
    for (auto& value : m) {
      if (value.is_object() && value.contains("overall"))
        value = EvaluationReport::from_sums_json(value).to_json();
      else if (value.is_object() && value.contains("rr_sum"))
        value = RankingMetrics::from_sums_json(value).to_json();
    }
    if (m.contains("beam_exact_agreeing_users")) {
      const auto exact = m.at("exact").at("users").get<std::int64_t>();
      m["beam_exact_agreement"] = exact == 0 ? 0.0 : double(m["beam_exact_agreeing_users"].get<std::int64_t>()) / double(exact);
      m.erase("beam_exact_agreeing_users");
    }
  }
  metrics.erase("first_user");
  metrics.erase("users");
  metrics["methods"] = methods;
  return metrics;
}

void write_evaluation_shard(PipelineContext& ctx, const ShardSpec& shard, const StageInputs& inputs,
                            const nlohmann::json& part) {
  const auto total = part.at("test_users").get<std::int64_t>();
  auto record = shard_record("evaluate", "metrics", shard, total, evaluation_shard_origins(inputs));
  record["part"] = part;
  const auto file = std::string(kEvaluationShardsDir) + "/" + shard_file_name("evaluate", shard, ".json");
  std::filesystem::create_directories(ctx.path(kEvaluationShardsDir));
  ctx.write_json(file, record);
  ctx.say(fmt::format("shard {}/{}: test users [{}, {}) of {} evaluated into {}", shard.index, shard.count,
                      part.at("first_user").get<std::int64_t>(),
                      part.at("first_user").get<std::int64_t>() + part.at("users").get<std::int64_t>(), total,
                      ctx.path(file).string()));
}

std::vector<nlohmann::json> read_evaluation_shards(PipelineContext& ctx, const StageInputs& inputs) {
  const auto files =
      find_shard_files(ctx.path(kEvaluationShardsDir), "evaluate", ".json", kMakeEvaluationShards);
  const auto origins = evaluation_shard_origins(inputs);
  std::vector<nlohmann::json> parts;
  std::int64_t total = -1;
  for (const auto& file : files) {
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(read_file(file.path));
      if (total < 0) total = record.at("total").get<std::int64_t>();
      check_shard_record(file, record, "evaluate", "metrics", total, origins);
      parts.push_back(record.at("part"));
    } catch (const nlohmann::json::exception& e) {
      throw ParseError({file.path.string(), 0, ""}, fmt::format("not a shard of the evaluation: {}", e.what()));
    }
  }
  return parts;
}

}  // namespace lamia
