// `lamia run` with the LM backbone's item text prompts (recommend.model.item_text_tokens > 0): the
// evaluate stage and `lamia inspect --user` write the test histories as the recommender was trained,
// checked against a direct library computation; other prompts are refused, naming both values.
#include <lamia/core/errors.hpp>
#include <lamia/data/sequences.hpp>
#include <lamia/data/synthetic.hpp>
#include <lamia/pipeline/inspect.hpp>
#include <lamia/pipeline/pipeline.hpp>
#include <lamia/recommend/beam_search.hpp>
#include <lamia/recommend/constraints.hpp>
#include <lamia/recommend/exact_scoring.hpp>
#include <lamia/recommend/generative_recommender.hpp>
#include <lamia/ids/trie.hpp>
#include <lamia/text/tokenizer.hpp>

#include "tiny_pipeline_config.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <filesystem>
#include <sstream>

using namespace lamia;
namespace fs = std::filesystem;

namespace {

// The pipeline tests' tiny run with the LM backbone reading 4 text tokens before each item.
PipelineConfig item_text_config() {
  auto c = testing::tiny_pipeline_config();
  c.recommend.model.backbone = RecommenderBackbone::lm;
  c.recommend.model.item_text_tokens = 4;
  c.recommend.epochs = 2;
  c.recommend.tokenizers = {"oracle"};
  c.recommend.baselines = {"popularity"};
  c.evaluate.exact_users = 0;  // every test user
  return c;
}

// Every item's text in the run's tokenizer: its attribute values joined by spaces (the recommend
// stage's rule, written again here).
ItemTextTokens item_texts_of(const Catalog& catalog, const Tokenizer& tokenizer) {
  ItemTextTokens out(catalog.size());
  for (std::size_t i = 0; i < catalog.size(); ++i) {
    auto values = catalog.values(ItemIndex(i));
    values.erase(std::remove(values.begin(), values.end(), std::string()), values.end());
    const auto ids = tokenizer.encode(fmt::format("{}", fmt::join(values, " ")));
    out[i].assign(ids.begin(), ids.end());
  }
  return out;
}

// Recall@K and NDCG@K of the full ranking of scores [B, n], the history excluded, ties to the
// smaller index (the definitions of DESIGN.md, computed here without lamia/evaluate).
std::pair<double, double> recall_ndcg(const torch::Tensor& scores, const std::vector<SequenceExample>& test,
                                      std::int64_t K) {
  double recall = 0, ndcg = 0;
  for (std::size_t u = 0; u < test.size(); ++u) {
    auto s = scores[std::int64_t(u)].to(torch::kDouble).clone();
    for (auto i : test[u].history) s[i] = -std::numeric_limits<double>::infinity();
    const auto target = test[u].target;
    const double st = s[target].item<double>();
    auto before = (s > st).sum().item<std::int64_t>() + (s.narrow(0, 0, target) == st).sum().item<std::int64_t>();
    const auto rank = before + 1;
    if (rank <= K) {
      recall += 1;
      ndcg += 1.0 / std::log2(double(rank) + 1.0);
    }
  }
  return {recall / double(test.size()), ndcg / double(test.size())};
}

}  // namespace

TEST_CASE("lamia run with item text prompts evaluates the histories the recommender was trained on") {
  const auto dir = fs::temp_directory_path() / "lamia_pipeline_item_text";
  fs::remove_all(dir);
  const auto config = item_text_config();
  std::ostringstream log;
  const auto result = run_pipeline(config, dir, log);
  const auto& m = result.metrics["methods"]["oracle"];

  // The direct computation: the same test users, the recommender folder, texts from the run's tokenizer.
  auto synth = generate_synthetic(config.dataset.synthetic);
  auto seq_options = config.sequences.filter;
  seq_options.drop_items_without_text = false;
  const auto sequences = build_sequences(synth.dataset, seq_options);
  auto test = split_leave_one_out(sequences).test;
  test.resize(std::min<std::size_t>(test.size(), std::size_t(config.evaluate.max_users)));
  REQUIRE(result.metrics["test_users"] == test.size());
  std::vector<std::vector<ItemIndex>> histories;
  for (const auto& e : test) histories.push_back(e.history);

  const auto rec_dir = dir / "recommenders" / "oracle";
  const auto table = SemanticIdTable::load(rec_dir / "semantic_ids.bin");
  auto rec = load_recommender(rec_dir, table);
  REQUIRE(rec.options.item_text_tokens == 4);
  REQUIRE_FALSE(rec.item_text_checksum.empty());
  const auto texts = item_texts_of(sequences.catalog, *load_tokenizer(dir / "tokenizer"));
  REQUIRE(rec.item_text_checksum == item_text_checksum(texts, 4));
  const auto max_items = rec.options.max_history_items;
  DeviceTrie trie(table, rec.vocab, rec.model->device());
  const auto with_text = encode_histories(table, rec.vocab, histories, max_items, texts, 4);
  const auto codes_only = encode_histories(table, rec.vocab, histories, max_items);
  REQUIRE(with_text.tokens.size(1) > codes_only.tokens.size(1));

  {  // exact metrics equal the library's scores of the text histories, not of code-only ones
    const auto exact = score_all_items(*rec.model, trie, with_text);
    const auto exact_codes = score_all_items(*rec.model, trie, codes_only);
    REQUIRE((exact - exact_codes).abs().max().item<double>() > 1e-3);  // the prompts change the scores
    bool codes_only_differ = false;  // so this test can tell the two evaluations apart
    for (std::int64_t K : {1, 5, 10, 20}) {
      INFO("K = " << K);
      const auto [recall, ndcg] = recall_ndcg(exact, test, K);
      REQUIRE(m["exact"][fmt::format("recall@{}", K)].get<double>() == Approx(recall).margin(1e-9));
      REQUIRE(m["exact"][fmt::format("ndcg@{}", K)].get<double>() == Approx(ndcg).margin(1e-6));
      const auto [codes_recall, codes_ndcg] = recall_ndcg(exact_codes, test, K);
      codes_only_differ = codes_only_differ || std::abs(codes_ndcg - ndcg) > 1e-6 || codes_recall != recall;
    }
    REQUIRE(codes_only_differ);
  }

  {  // beam metrics and `inspect --user` equal beam search over the text histories
    ConstraintSet constraints;
    constraints.add(ExcludeHistory(histories));  // explicit lists: independent of decoding the tokens
    BeamSearchOptions bo;
    bo.beam_width = 10;
    bo.top_k = 10;
    const auto beam = beam_search(*rec.model, trie, with_text, bo, constraints);
    double hits = 0;
    for (std::size_t u = 0; u < test.size(); ++u)
      hits += (beam.items[std::int64_t(u)] == test[u].target).any().item<bool>() ? 1 : 0;
    REQUIRE(m["beam"]["recall@10"].get<double>() == Approx(hits / double(test.size())).margin(1e-9));

    // The first test user through `lamia inspect --user`: the same top-10 with the same scores.
    const auto& user = *std::find_if(sequences.users.begin(), sequences.users.end(),
                                     [&](const UserSequence& s) { return s.user == test[0].user; });
    const auto shown = inspect_user(dir, user.id, "oracle", 10);
    REQUIRE(shown["held_out"]["item"] == sequences.catalog.id(test[0].target));
    const auto& listed = shown["recommendations"];
    REQUIRE(listed.size() == std::size_t(beam.counts[0].item<std::int64_t>()));
    for (std::size_t k = 0; k < listed.size(); ++k) {
      INFO("rank " << k + 1);
      REQUIRE(listed[k]["item"] == sequences.catalog.id(ItemIndex(beam.items[0][std::int64_t(k)].item<std::int64_t>())));
      REQUIRE(listed[k]["score"].get<double>() == Approx(beam.scores[0][std::int64_t(k)].item<double>()).margin(1e-5));
    }
  }

  {  // other prompts than the recommender's are refused, naming both values
    REQUIRE_THROWS_WITH(check_item_text_prompts(rec, 0, {}),
                        Catch::Contains("item_text_tokens = 4") && Catch::Contains("item_text_tokens = 0"));
    auto other = texts;
    other[0].insert(other[0].begin(), other[0].empty() ? 5 : (other[0][0] + 1) % 400);
    REQUIRE_THROWS_WITH(check_item_text_prompts(rec, 4, other),
                        Catch::Contains(rec.item_text_checksum) && Catch::Contains(item_text_checksum(other, 4)));
    REQUIRE_NOTHROW(check_item_text_prompts(rec, 4, texts));

    // `lamia run --only evaluate` with code-only histories.
    auto codes_config = config;
    codes_config.recommend.model.item_text_tokens = 0;
    PipelineRunOptions only;
    only.only = {"evaluate"};
    REQUIRE_THROWS_WITH(run_pipeline(codes_config, dir, log, only),
                        Catch::Contains("item_text_tokens = 4") && Catch::Contains("item_text_tokens = 0"));
  }
}

TEST_CASE("item_text_tokens > 0 needs the LM backbone: one line naming the key") {
  PipelineConfig c;
  auto j = nlohmann::json::parse(R"({"recommend": {"model": {"backbone": "codes", "item_text_tokens": 4}}})");
  try {
    from_json(j, c);
    FAIL("a codes backbone with item text prompts was accepted");
  } catch (const ValueError& e) {
    const std::string what = e.what();
    REQUIRE_THAT(what, Catch::Contains("recommend.model.item_text_tokens") && Catch::Contains("'lm'"));
    REQUIRE(what.find('\n') == std::string::npos);
  }
  auto lm = nlohmann::json::parse(R"({"recommend": {"model": {"backbone": "lm", "item_text_tokens": 4}}})");
  REQUIRE_NOTHROW(from_json(lm, c));
  REQUIRE(c.recommend.model.item_text_tokens == 4);
}
