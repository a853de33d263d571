// lamia inspect: an item's IDs, a prefix's items, a user's recommendations, from a run folder.
#include "context.hpp"
#include "lm_text.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/pipeline/inspect.hpp>
#include <lamia/recommend/beam_search.hpp>
#include <lamia/recommend/constraints.hpp>
#include <lamia/recommend/generative_recommender.hpp>
#include <lamia/ids/trie.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <sstream>

namespace lamia {
namespace fs = std::filesystem;
namespace {

// The folder's effective configuration (config.json), checked as any config file is.
PipelineConfig run_config(const fs::path& run_dir) {
  if (!fs::exists(run_dir / "manifest.json"))
    throw ValueError(fmt::format("inspect: {} is not a lamia run folder (no manifest.json); make one with `lamia run --out {}`",
                                 run_dir.string(), run_dir.string()));
  auto config = load_pipeline_config(run_dir / "config.json");
  config.progress = false;
  return config;
}

nlohmann::json item_text(const Catalog& catalog, ItemIndex item) {
  nlohmann::json text = nlohmann::json::object();
  for (std::size_t a = 0; a < catalog.num_attributes(); ++a) text[catalog.attribute_names()[a]] = catalog.value(item, a);
  return text;
}

SemanticIdTable load_table(const fs::path& run_dir, const std::string& tokenizer) {
  const auto path = run_dir / "semantic_ids" / (tokenizer + ".bin");
  if (!fs::exists(path)) {
    std::vector<std::string> made;
    if (fs::is_directory(run_dir / "semantic_ids"))
      for (const auto& e : fs::directory_iterator(run_dir / "semantic_ids"))
        if (e.path().extension() == ".bin") made.push_back(e.path().stem().string());
    std::sort(made.begin(), made.end());
    throw ValueError(fmt::format("inspect: the run made no semantic IDs '{}' ({} missing; made: {}); run `lamia quantize {}` first",
                                 tokenizer, path.string(), made.empty() ? "none" : fmt::format("{}", fmt::join(made, ", ")),
                                 run_dir.string()));
  }
  return SemanticIdTable::load(path);
}

std::vector<std::int64_t> to_vector(const std::vector<SemanticIdTable::Token>& id) { return {id.begin(), id.end()}; }

}  // namespace

nlohmann::json inspect_item(const fs::path& run_dir, const std::string& item_id) {
  const auto config = run_config(run_dir);
  std::ostringstream quiet;
  PipelineContext ctx(config, run_dir, quiet);
  const auto& catalog = ctx.dataset().dataset.catalog;
  const auto found = catalog.find(item_id);
  if (!found) {
    std::vector<std::string> some;
    for (std::size_t i = 0; i < std::min<std::size_t>(3, catalog.size()); ++i) some.push_back(catalog.id(ItemIndex(i)));
    throw ValueError(fmt::format("inspect: item '{}' is not in the catalog of {} ({} items, e.g. {})", item_id,
                                 run_dir.string(), catalog.size(), fmt::join(some, ", ")));
  }
  nlohmann::json ids = nlohmann::json::object();
  if (fs::is_directory(run_dir / "semantic_ids")) {
    for (const auto& e : fs::directory_iterator(run_dir / "semantic_ids")) {
      if (e.path().extension() != ".bin") continue;
      const auto table = SemanticIdTable::load(e.path());
      if (table.num_items() == std::int64_t(catalog.size())) ids[e.path().stem().string()] = to_vector(table.id(*found));
    }
  }
  return {{"item", item_id}, {"index", *found}, {"text", item_text(catalog, *found)}, {"ids", ids}};
}

nlohmann::json inspect_prefix(const fs::path& run_dir, const std::string& tokenizer,
                              const std::vector<std::int64_t>& prefix, std::int64_t limit) {
  const auto config = run_config(run_dir);
  const auto table = load_table(run_dir, tokenizer);
  if (std::int64_t(prefix.size()) > table.id_length())
    throw ValueError(fmt::format("inspect: prefix {} is longer than the IDs of '{}' ({} tokens)", fmt::join(prefix, ","),
                                 tokenizer, table.id_length()));
  std::vector<SemanticIdTable::Token> tokens;
  for (std::size_t l = 0; l < prefix.size(); ++l) {
    const auto size = table.codebook_sizes()[l];
    if (prefix[l] < 0 || prefix[l] >= size)
      throw ValueError(fmt::format("inspect: code {} at position {} of the prefix is outside the codebook of '{}' (0..{})",
                                   prefix[l], l, tokenizer, size - 1));
    tokens.push_back(SemanticIdTable::Token(prefix[l]));
  }
  std::ostringstream quiet;
  PipelineContext ctx(config, run_dir, quiet);
  const auto& catalog = ctx.dataset().dataset.catalog;
  const auto items = table.items_with_prefix(tokens);
  nlohmann::json listed = nlohmann::json::array();
  for (std::size_t i = 0; i < items.size() && std::int64_t(i) < limit; ++i) {
    listed.push_back({{"item", catalog.id(items[i])}, {"id", to_vector(table.id(items[i]))},
                      {"text", item_text(catalog, items[i])}});
  }
  return {{"tokenizer", tokenizer}, {"prefix", prefix}, {"count", items.size()}, {"items", listed}};
}

nlohmann::json inspect_user(const fs::path& run_dir, const std::string& user_id, const std::string& tokenizer,
                            std::int64_t top_k) {
  if (top_k < 1) throw ValueError(fmt::format("inspect: top_k must be >= 1, got {}", top_k));
  const auto config = run_config(run_dir);
  std::ostringstream quiet;
  PipelineContext ctx(config, run_dir, quiet);
  std::string name = tokenizer;
  if (name.empty()) {
    for (const auto& t : config.recommend.tokenizers)
      if (fs::exists(run_dir / "recommenders" / t / "recommender.json")) {
        name = t;
        break;
      }
    if (name.empty())
      throw ValueError(fmt::format("inspect: {} has no trained recommender; run `lamia train-rec {}` first",
                                   run_dir.string(), run_dir.string()));
  }
  const auto dir = run_dir / "recommenders" / name;
  if (!fs::exists(dir / "recommender.json"))
    throw ValueError(fmt::format("inspect: no recommender was trained on '{}' in {} ({} missing)", name,
                                 run_dir.string(), (dir / "recommender.json").string()));
  const auto& sequences = ctx.sequences();
  const auto& catalog = sequences.catalog;
  const auto user = std::find_if(sequences.users.begin(), sequences.users.end(),
                                 [&](const UserSequence& u) { return u.id == user_id; });
  if (user == sequences.users.end())
    throw ValueError(fmt::format("inspect: user '{}' has no sequence in {} ({} users after the sequence filters)",
                                 user_id, run_dir.string(), sequences.users.size()));
  std::vector<ItemIndex> history = user->items;
  ItemIndex held_out = -1;
  const auto& test = ctx.split().test;
  if (auto e = std::find_if(test.begin(), test.end(), [&](const SequenceExample& x) { return x.user == user->user; });
      e != test.end()) {
    history = e->history;
    held_out = e->target;
  }
  const auto table = SemanticIdTable::load(dir / "semantic_ids.bin");
  auto rec = load_recommender(dir, table);
  // The history as the evaluate stage writes it (item text prompts included).
  const auto text_tokens = config.recommend.model.item_text_tokens;
  const auto prompts = history_item_texts(ctx);
  check_item_text_prompts(rec, text_tokens, prompts);
  DeviceTrie trie(table, rec.vocab, rec.model->device());
  auto encoded = encode_histories(table, rec.vocab, {history}, rec.options.max_history_items, prompts, text_tokens);
  ConstraintSet constraints;
  if (config.evaluate.exclude_history) constraints.add(ExcludeHistory());
  BeamSearchOptions bo;
  bo.beam_width = std::max(config.evaluate.beam_width, top_k);
  bo.top_k = top_k;
  auto beam = beam_search(*rec.model, trie, encoded, bo, constraints);
  auto items = beam.items.to(torch::kCPU);
  auto scores = beam.scores.to(torch::kCPU);
  nlohmann::json listed = nlohmann::json::array();
  std::int64_t held_out_rank = 0;
  for (std::int64_t k = 0; k < items.size(1); ++k) {
    const auto item = ItemIndex(items[0][k].item<std::int64_t>());
    if (item < 0) break;
    if (item == held_out) held_out_rank = k + 1;
    listed.push_back({{"rank", k + 1}, {"item", catalog.id(item)}, {"id", to_vector(table.id(item))},
                      {"score", scores[0][k].item<double>()}, {"text", item_text(catalog, item)}});
  }
  nlohmann::json hist = nlohmann::json::array();
  for (auto i : history) hist.push_back({{"item", catalog.id(i)}, {"text", item_text(catalog, i)}});
  nlohmann::json held = nullptr;
  if (held_out >= 0) {
    // rank 0: not in the top-K
    held = {{"item", catalog.id(held_out)}, {"rank", held_out_rank}, {"text", item_text(catalog, held_out)}};
  }
  return {{"user", user_id}, {"tokenizer", name}, {"history", hist}, {"held_out", held}, {"recommendations", listed}};
}

}  // namespace lamia
