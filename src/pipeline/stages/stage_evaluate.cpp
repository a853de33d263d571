// Stage "evaluate": every method on the same test users under the config's protocol.
// Generative recommenders: beam search constrained to real items (top-K lists: item-level metrics)
// and exact scoring of the whole catalog (full-ranking metrics, and how often the beam's top-K equals
// the exact top-K). Baselines (popularity, transition, SASRec): full ranking of their scores.
// With recommend.model.item_text_tokens > 0 (LM backbone) the test histories carry each item's text
// prompt, as in training; a recommender trained with other prompts is refused, naming both values.
// Writes metrics.json. Split over processes with `--shard i/n` (a part of the test users each) and
// `--merge`: each part holds the per-user metric sums and counts (evaluation_shards.cpp); under torchrun
// every rank evaluates its part and rank 0 merges them.
#include "../context.hpp"
#include "../lm_text.hpp"
#include "distributed_stages.hpp"
#include "shards.hpp"

#include <lamia/evaluate/baselines.hpp>
#include <lamia/evaluate/metrics.hpp>
#include <lamia/pipeline/metrics_table.hpp>
#include <lamia/pipeline/stage.hpp>
#include <lamia/recommend/beam_search.hpp>
#include <lamia/recommend/constraints.hpp>
#include <lamia/recommend/exact_scoring.hpp>
#include <lamia/recommend/generative_recommender.hpp>
#include <lamia/recommend/prod_score.hpp>
#include <lamia/recommend/sasrec.hpp>
#include <lamia/ids/trie.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>

namespace lamia {
namespace fs = std::filesystem;
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

class EvaluateStage : public Stage {
 public:
  std::string name() const override { return "evaluate"; }
  std::vector<std::string> inputs(const PipelineConfig& config) const override {
    const auto& b = config.recommend.baselines;
    std::vector<std::string> in = {"dataset", "recommenders"};
    if (std::any_of(b.begin(), b.end(), is_trained_baseline)) in.push_back("baselines");
    // Item text prompts: the histories carry the run's tokenizer's tokens of each item.
    if (config.recommend.model.item_text_tokens > 0) in.push_back("tokenizer");
    return in;
  }
  nlohmann::json config_section(const PipelineConfig& config) const override {
    nlohmann::json j;
    to_json(j, config);
    return {{"sequences", j.at("sequences")}, {"evaluate", j.at("evaluate")},
            {"baselines", j.at("recommend").at("baselines")}};
  }

  std::vector<ArtifactSpec> run(PipelineContext& ctx) override {
    const auto& group = detail::stage_training_group();
    if (!group) {
      ctx.write_json("metrics.json", merge_evaluation_parts({evaluate_users(ctx, ShardSpec{})}));
      return {{"metrics", "metrics.json", 1}};
    }
    // torchrun: each rank evaluates its part of the test users (the --shard split; a part may be
    // empty), and rank 0 merges the parts as --merge does.
    detail::begin_distributed_stage(name());
    const auto part = evaluate_users(ctx, ShardSpec{group->rank(), group->world_size()}, /*empty_part=*/true);
    const auto texts = detail::gather_bytes_on_rank0(*group, part.dump());
    if (!detail::writes_run_folder()) return {};
    std::vector<nlohmann::json> parts;
    for (const auto& text : texts)
      if (auto p = nlohmann::json::parse(text); !p.is_null()) parts.push_back(std::move(p));
    ctx.write_json("metrics.json", merge_evaluation_parts(parts));
    return {{"metrics", "metrics.json", 1}};
  }
  bool shardable() const override { return true; }
  void run_shard(PipelineContext& ctx, const ShardSpec& shard, const StageInputs& inputs) override {
    write_evaluation_shard(ctx, shard, inputs, evaluate_users(ctx, shard));
  }
  std::vector<ArtifactSpec> merge_shards(PipelineContext& ctx, const StageInputs& inputs) override {
    ctx.write_json("metrics.json", merge_evaluation_parts(read_evaluation_shards(ctx, inputs)));
    return {{"metrics", "metrics.json", 1}};
  }

 private:
  // The evaluation of shard's part of the test users (ShardSpec{}: all of them): per method, the metric
  // sums and counts, times and counters that merge_evaluation_parts turns into metrics.json. An empty
  // part is a ValueError, or null with empty_part.
  nlohmann::json evaluate_users(PipelineContext& ctx, const ShardSpec& shard, bool empty_part = false) {
    const auto& ec = ctx.config.evaluate;
    const auto& split = ctx.split();
    const auto num_items = std::int64_t(ctx.sequences().catalog.size());
    // A list cannot hold more items than the catalog has: such a k was cut to the catalog in silence
    // (and Recall@k = 1 by construction); it is a config error naming the key.
    auto refuse_beyond_catalog = [&](const char* key, std::int64_t k) {
      if (k > num_items)
        throw ValueError(fmt::format("config: key 'evaluate.{}': {} is larger than the catalog ({} items); a list "
                                     "cannot hold more items than there are, set it to at most {}",
                                     key, k, num_items, num_items));
    };
    refuse_beyond_catalog("top_k", ec.top_k);
    for (const auto k : ec.ks) refuse_beyond_catalog("ks", k);
    // A beam list holds top_k items: its metrics at a larger cut-off equal those at top_k. Allowed (the
    // exact and baseline rankings cover the catalog), but said, and recorded in metrics.json.
    std::vector<std::int64_t> above_top_k;
    for (const auto k : ec.ks)
      if (k > ec.top_k) above_top_k.push_back(k);
    if (!above_top_k.empty()) {
      ctx.say(fmt::format("evaluate: cut-offs {} are above top_k = {}: the beam metrics there are computed on "
                          "{}-item lists and equal those at {}; the exact and baseline rankings cover the catalog",
                          fmt::join(above_top_k, ", "), ec.top_k, ec.top_k, ec.top_k));
    }
    std::vector<SequenceExample> test = split.test;
    if (ec.max_users > 0 && std::int64_t(test.size()) > ec.max_users) test.resize(std::size_t(ec.max_users));
    // Targets that repeat a history item: the same rule for every method (evaluate/metrics.hpp).
    const auto repeats = [](const SequenceExample& e) { return target_in_history(e.history, e.target); };
    const auto repeated = std::int64_t(std::count_if(test.begin(), test.end(), repeats));
    if (ec.exclude_history && ec.repeated_targets == RepeatedTargets::drop)
      test.erase(std::remove_if(test.begin(), test.end(), repeats), test.end());
    if (test.empty()) throw ValueError("evaluate: no test user is left to evaluate");
    // This shard's users; the first exact_users of all the test users get exact scoring.
    const auto all_users = std::int64_t(test.size());
    const auto [first_user, end_user] = shard_range(all_users, shard);
    if (first_user == end_user && empty_part) return nullptr;
    if (first_user == end_user)
      throw ValueError(fmt::format("evaluate --shard {}/{}: the shard has no test users (there are {})", shard.index,
                                   shard.count, all_users));
    test = std::vector<SequenceExample>(test.begin() + first_user, test.begin() + end_user);
    std::vector<std::vector<ItemIndex>> histories;
    for (const auto& e : test) histories.push_back(e.history);
    // The count-based baselines (and the popularity groups) count every interaction that precedes the
    // test targets: the training sequences and the validation targets (leave-one-out: all but each
    // user's last item), as DESIGN.md's floors on amazon-office do; bench/evaluate_floors.py is an
    // independent reference.
    std::vector<SequenceExample> seen = split.train;
    seen.insert(seen.end(), split.valid.begin(), split.valid.end());
    const auto train_sequences = sequences_of(seen);
    const auto groups = popularity_groups(count_items(train_sequences, num_items));
    const auto K = ec.top_k;
    const auto all_exact_users = ec.exact_users > 0 ? std::min<std::int64_t>(ec.exact_users, all_users) : all_users;
    const auto exact_users = std::clamp<std::int64_t>(all_exact_users - first_user, 0, std::int64_t(test.size()));

    // The histories carry item_text_tokens text tokens of each item (the LM backbone's item text
    // prompts), as the recommenders were trained: each one's folder is checked against them.
    const auto text_tokens = ctx.config.recommend.model.item_text_tokens;
    const auto prompts = history_item_texts(ctx);

    nlohmann::json methods = nlohmann::json::object();
    // Full-ranking report of a score matrix [users, items].
    auto rank_scores = [&](const torch::Tensor& scores, std::int64_t users) {
      EvaluationReport report(ec.ks);
      auto s = scores.to(torch::kCPU, torch::kFloat).contiguous();
      for (std::size_t u = 0; u < std::size_t(users); ++u) {
        const auto group = groups[std::size_t(test[u].target)];
        if (ec.exclude_history && target_in_history(test[u].history, test[u].target)) {
          report.add(0, group);  // unreachable: the history is excluded (dropped users never get here)
          continue;
        }
        const auto& excluded = ec.exclude_history ? test[u].history : std::vector<ItemIndex>{};
        report.add(rank_of_target(s[std::int64_t(u)].data_ptr<float>(), num_items, test[u].target, excluded), group);
      }
      return report;
    };

    for (const auto& name : ctx.config.recommend.tokenizers) {
      const auto dir = ctx.path("recommenders/" + name);
      if (!fs::exists(dir / "recommender.json")) continue;  // skipped by the recommend stage (e.g. oracle on real data)
      const auto t0 = std::chrono::steady_clock::now();
      auto table = SemanticIdTable::load(dir / "semantic_ids.bin");
      auto rec = load_recommender(dir, table);
      check_item_text_prompts(rec, text_tokens, prompts);
      DeviceTrie trie(table, rec.vocab, rec.model->device());
      const auto max_items = rec.options.max_history_items;
      auto encoded = encode_histories(table, rec.vocab, histories, max_items, prompts, text_tokens);
      ConstraintSet constraints;
      if (ec.exclude_history) constraints.add(ExcludeHistory());
      BeamSearchOptions bo;
      bo.beam_width = ec.beam_width;
      bo.top_k = K;
      auto beam = beam_search(*rec.model, trie, encoded, bo, constraints);
      EvaluationReport beam_report(ec.ks);
      auto items = beam.items.to(torch::kCPU);
      for (std::size_t u = 0; u < test.size(); ++u) {
        std::vector<ItemIndex> list;
        for (std::int64_t k = 0; k < items.size(1); ++k) {
          const auto item = items[std::int64_t(u)][k].item<std::int64_t>();
          if (item >= 0) list.push_back(ItemIndex(item));
        }
        beam_report.add(rank_in_list(list, test[u].target), groups[std::size_t(test[u].target)]);
      }
      nlohmann::json m = {{"kind", "generative"},
                          {"tokenizer", name},
                          {"beam", beam_report.sums_json()},
                          {"beam_seconds", beam.stats.total_seconds},
                          {"skipped_unknown_history_items", encoded.skipped_unknown}};
      {
        // RecBench's "prod" score, under its own name: not an item ranking (recommend/prod_score.hpp).
        RankingMetrics prod(ec.ks);
        for (auto r : prod_ranks(*rec.model, table, rec.vocab, test, max_items, 256, &prompts, text_tokens)) prod.add(r);
        m["prod_not_an_item_ranking"] = prod.sums_json();
      }
      if (ec.exact && exact_users > 0) {
        // Exact scoring costs one forward per trie node per user: it runs on the first exact_users users.
        const auto t1 = std::chrono::steady_clock::now();
        std::vector<std::vector<ItemIndex>> first(histories.begin(), histories.begin() + exact_users);
        auto exact =
            score_all_items(*rec.model, trie, encode_histories(table, rec.vocab, first, max_items, prompts, text_tokens));
        m["exact_seconds"] = seconds_since(t1);
        m["exact"] = rank_scores(exact, exact_users).sums_json();
        if (ec.exclude_history) {  // the beam never returns history items: compare with the same exclusion
          for (std::int64_t u = 0; u < exact_users; ++u)
            for (auto i : test[std::size_t(u)].history) exact[u][i] = -std::numeric_limits<float>::infinity();
        }
        // A count of users (the mean's numerator): merge_evaluation_parts divides by the exact users.
        m["beam_exact_agreeing_users"] = std::llround(
            beam_exact_agreement(beam.items.narrow(0, 0, exact_users), exact, K) * double(exact_users));
      }
      methods[name] = m;
      ctx.say(fmt::format("evaluated '{}' on {} users ({:.1f}s)", name, test.size(), seconds_since(t0)));
    }

    for (const auto& name : ctx.config.recommend.baselines) {
      const auto t0 = std::chrono::steady_clock::now();
      nlohmann::json m = {{"kind", "id-based"}};
      if (name == "popularity" || name == "transition") {
        PopularityRecommender popularity;
        TransitionRecommender transition;
        Scorer scorer;
        if (name == "popularity") {
          popularity.fit(train_sequences, num_items);
          scorer = popularity.scorer();
        } else {
          transition.fit(train_sequences, num_items);
          scorer = transition.scorer();
        }
        m["exact"] =
            evaluate_scorer(scorer, test, num_items, groups, ec.exclude_history, ec.ks, ec.repeated_targets).sums_json();
      } else {
        auto model = load_sasrec(ctx.path("baselines/" + name));
        m["exact"] = rank_scores(model.score(histories), std::int64_t(test.size())).sums_json();
      }
      methods[name] = m;
      ctx.say(fmt::format("evaluated '{}' ({:.1f}s)", name, seconds_since(t0)));
    }

    nlohmann::json metrics = {{"protocol", ctx.config.sequences.protocol},
                              {"test_users", all_users},
                              {"num_items", num_items},
                              {"ks", ec.ks},
                              {"top_k", K},
                              {"beam_cutoffs_above_top_k", above_top_k},
                              {"beam_width", std::max(ec.beam_width, K)},
                              {"exclude_history", ec.exclude_history},
                              {"repeated_targets", options::enum_to_string(ec.repeated_targets)},
                              {"test_targets_in_history", repeated},
                              {"exact_users", ec.exact ? all_exact_users : 0},
                              {"first_user", first_user},
                              {"users", std::int64_t(test.size())},
                              {"methods", methods}};
    return metrics;
  }
};

}  // namespace

std::unique_ptr<Stage> make_evaluate_stage() { return std::make_unique<EvaluateStage>(); }

}  // namespace lamia
