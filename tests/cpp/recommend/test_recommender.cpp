// The generative recommender's token layout, batches, loss, training loop and SASRec.
#include <lamia/core/errors.hpp>
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/recommend/generative_recommender.hpp>
#include <lamia/recommend/sasrec.hpp>

#include "recommend_fixtures.hpp"

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <cmath>

using namespace lamia;
namespace fs = std::filesystem;

namespace {

// 6 items, L = 2, items 4 and 5 collide (same codes) so the index level has 2 tokens.
SemanticIdTable small_table() {
  std::vector<std::int32_t> codes = {0, 0, 0, 1, 1, 0, 1, 2, 2, 2, 2, 2};
  return SemanticIdTable::from_codes(codes.data(), 6, 2, {3, 3}, IndexTokenOrder::item_order);
}

using test::cyclic;

std::vector<torch::Tensor> snapshot(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

bool same(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

fs::path temp_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("lamia_test_recommend_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("CodeVocabulary: position-specific tokens after the specials", "[recommend]") {
  auto table = small_table();
  auto vocab = CodeVocabulary::for_table(table);
  REQUIRE(vocab.level_sizes() == std::vector<std::int64_t>{3, 3, 2});
  CHECK(vocab.size() == 2 + 3 + 3 + 2);
  CHECK(vocab.token(0, 0) == 2);
  CHECK(vocab.token(1, 0) == 5);
  CHECK(vocab.token(2, 1) == 9);
  for (std::int64_t t = CodeVocabulary::kFirstCodeToken; t < vocab.size(); ++t) {
    auto [level, code] = vocab.code_of(t);
    CHECK(vocab.token(level, code) == t);
  }
  CHECK_THROWS_AS(vocab.token(0, 3), IndexError);
  CHECK_THROWS_AS(vocab.code_of(CodeVocabulary::kBos), IndexError);
  auto tokens = vocab.all_item_tokens(table);
  // item 5 collides with item 4: same codes (2, 2), index tokens 0 and 1
  CHECK(tokens[4].equal(torch::tensor({4, 7, 8}, torch::kInt64)));
  CHECK(tokens[5].equal(torch::tensor({4, 7, 9}, torch::kInt64)));
  auto other = SemanticIdTable::from_codes(std::vector<std::int32_t>{0, 1}.data(), 1, 2, {4, 4});
  CHECK_THROWS_WITH(vocab.check_table(other), Catch::Contains("[3, 3, 2]") && Catch::Contains("[4, 4, 1]"));
}

TEST_CASE("encode_histories: left-padded, unknown items skipped and counted", "[recommend]") {
  auto table = small_table();
  auto vocab = CodeVocabulary::for_table(table);
  auto enc = encode_histories(table, vocab, {{0, 1}, {99, 2, -1}, {}}, 20);
  CHECK(enc.skipped_unknown == 2);
  CHECK(enc.empty_rows == 1);
  REQUIRE(enc.tokens.sizes() == torch::IntArrayRef({3, 7}));
  CHECK(enc.tokens[0].equal(torch::tensor({1, 2, 5, 8, 2, 6, 8}, torch::kInt64)));
  CHECK(enc.tokens[1].equal(torch::tensor({0, 0, 0, 1, 3, 5, 8}, torch::kInt64)));
  CHECK(enc.tokens[2].equal(torch::tensor({0, 0, 0, 0, 0, 0, 1}, torch::kInt64)));
  CHECK(enc.lengths.equal(torch::tensor({7, 4, 1}, torch::kInt64)));
  CHECK(enc.position_ids[1].equal(torch::tensor({0, 0, 0, 0, 1, 2, 3}, torch::kInt64)));
  CHECK(enc.key_mask[2].sum().item<int>() == 1);
  // max_items keeps the last ones
  auto last = encode_histories(table, vocab, {{0, 1, 2}}, 1);
  CHECK(last.tokens[0].equal(torch::tensor({1, 3, 5, 8}, torch::kInt64)));
  auto mask = causal_padded_mask(enc.key_mask);
  CHECK(mask[1][6].equal(torch::tensor({false, false, false, true, true, true, true})));
  CHECK(mask[1][0].sum().item<int>() == 0);  // a padding row attends nothing
}

TEST_CASE("make_recommender_batch: labels on the target's tokens, or on every item's", "[recommend]") {
  auto table = small_table();
  auto vocab = CodeVocabulary::for_table(table);
  SequenceExample a{0, {0, 1}, 2}, b{1, {3}, 4};
  auto batch = make_recommender_batch(table, vocab, {&a, &b}, 20, false);
  CHECK(batch.label_count == 2 * 3);
  REQUIRE(batch.input_ids.size(1) == 1 + 2 * 3 + 2);
  // the last three labels of each row are the target's tokens
  auto t2 = vocab.all_item_tokens(table)[2];
  CHECK(batch.labels[0].slice(0, -3).equal(t2));
  CHECK((batch.labels[0].slice(0, 0, -3) == -100).all().item<bool>());
  auto all = make_recommender_batch(table, vocab, {&a, &b}, 20, true);
  CHECK(all.label_count == (2 + 1) * 3 + (1 + 1) * 3);
  SequenceExample bad{2, {0}, 6};
  CHECK_THROWS_AS(make_recommender_batch(table, vocab, {&bad}, 20, false), IndexError);
}

TEST_CASE("recommender_loss on a padded batch equals the mean over unpadded single examples", "[recommend]") {
  auto table = small_table();
  auto vocab = CodeVocabulary::for_table(table);
  RecommenderModelOptions mo;
  mo.hidden_size = 32;
  mo.num_layers = 2;
  mo.dropout = 0;
  auto model = make_recommender(vocab, mo, 7);
  model->eval();
  std::vector<SequenceExample> ex = {{0, {0, 1, 2}, 3}, {1, {4}, 5}, {2, {5, 0}, 1}};
  std::vector<const SequenceExample*> ptrs;
  for (auto& e : ex) ptrs.push_back(&e);
  auto batched = recommender_loss(*model, make_recommender_batch(table, vocab, ptrs, 20, false));
  // Reference: each example alone, no padding, default causal mask, plain log_softmax.
  double total = 0;
  for (auto& e : ex) {
    std::vector<std::int64_t> seq = {CodeVocabulary::kBos};
    auto toks = vocab.all_item_tokens(table);
    for (auto i : e.history)
      for (int l = 0; l < 3; ++l) seq.push_back(toks[i][l].item<std::int64_t>());
    for (int l = 0; l < 3; ++l) seq.push_back(toks[e.target][l].item<std::int64_t>());
    DecoderInput in;
    in.input_ids = torch::tensor(seq, torch::kInt64).slice(0, 0, -1).unsqueeze(0);
    auto logp = torch::log_softmax(model->forward(in).logits[0], -1);
    const auto n = std::int64_t(seq.size());
    for (std::int64_t t = n - 4; t < n - 1; ++t) total -= logp[t][seq[t + 1]].item<double>();
  }
  CHECK(batched.labels == 9);
  CHECK(batched.loss.item<double>() == Approx(total / 9).epsilon(1e-5));
}

TEST_CASE("train_recommender learns a next-item rule and resumes exactly", "[recommend]") {
  auto data = cyclic(32, 200, 4);
  auto vocab = CodeVocabulary::for_table(data.table);
  RecommenderModelOptions mo;
  mo.hidden_size = 32;
  mo.num_layers = 2;
  mo.dropout = 0.1;
  auto dir = temp_dir("train");
  RecommenderTrainerOptions to;
  to.batch_size = 16;
  to.seed = 3;
  to.loop.epochs(6).patience(0).log_every(0).learning_rate(3e-3);

  // Uninterrupted.
  auto full = make_recommender(vocab, mo, 1);
  const double before = recommender_validation_loss(*full, data.table, data.valid, 20);
  to.loop.checkpoint_path((dir / "full.ckpt").string());
  auto r = train_recommender(full, data.table, data.train, data.valid, to);
  const double after = recommender_validation_loss(*full, data.table, data.valid, 20);
  CHECK(r.steps == 6 * 10);
  CHECK(after < 0.5 * before);

  // Stopped after 17 steps (mid-epoch, after a validation), then resumed from the checkpoint: same weights bit for bit.
  auto part = make_recommender(vocab, mo, 1);
  to.loop.checkpoint_path((dir / "part.ckpt").string()).max_steps(17);
  train_recommender(part, data.table, data.train, data.valid, to);
  auto resumed = make_recommender(vocab, mo, 99);  // other init: everything must come from the checkpoint
  to.loop.max_steps(0);
  auto r2 = train_recommender(resumed, data.table, data.train, data.valid, to);
  CHECK(r2.resumed);
  CHECK(r2.resumed_at_step == 17);
  CHECK(same(snapshot(*full), snapshot(*resumed)));

  // A checkpoint of other data is refused.
  auto other = cyclic(32, 100, 4);
  auto m3 = make_recommender(vocab, mo, 1);
  CHECK_THROWS_WITH(train_recommender(m3, other.table, other.train, other.valid, to),
                    Catch::Contains("another setup"));
  fs::remove_all(dir);
}

TEST_CASE("save_recommender / load_recommender round trip; another table is refused", "[recommend]") {
  auto table = small_table();
  auto vocab = CodeVocabulary::for_table(table);
  RecommenderModelOptions mo;
  mo.hidden_size = 16;
  mo.num_layers = 1;
  auto model = make_recommender(vocab, mo, 5);
  auto dir = temp_dir("save");
  save_recommender(dir / "rec", *model, table, mo);
  auto loaded = load_recommender(dir / "rec", table);
  CHECK(loaded.vocab == vocab);
  CHECK(loaded.options.hidden_size == 16);
  CHECK(same(snapshot(*model), snapshot(*loaded.model)));
  std::vector<std::int32_t> codes = {0, 0, 0, 1, 1, 0, 1, 2, 2, 2, 2, 1};  // same sizes, other IDs
  auto other = SemanticIdTable::from_codes(codes.data(), 6, 2, {3, 3});
  CHECK_THROWS_WITH(load_recommender(dir / "rec", other), Catch::Contains("other semantic IDs"));
  fs::remove_all(dir);
}

TEST_CASE("RecommenderModelOptions JSON: presets, unknown keys and wrong types named", "[recommend]") {
  CHECK(RecommenderModelOptions::preset("trm12l").num_layers == 12);
  CHECK_THROWS_WITH(RecommenderModelOptions::preset("trm4l"), Catch::Contains("trm3l, trm6l, trm12l"));
  RecommenderModelOptions o;
  CHECK_THROWS_WITH(nlohmann::json::parse(R"({"hidden": 3})").get_to(o), Catch::Contains("'hidden'"));
  CHECK_THROWS_WITH(nlohmann::json::parse(R"({"num_layers": "3"})").get_to(o), Catch::Contains("num_layers"));
  CHECK_THROWS_WITH(nlohmann::json::parse(R"({"num_heads": 5})").get_to(o), Catch::Contains("num_heads"));
  nlohmann::json j = RecommenderModelOptions::preset("trm6l");
  CHECK(j.get<RecommenderModelOptions>().num_layers == 6);
}

TEST_CASE("SasRec (CE and BCE) learns a next-item rule; scores rank the true next item first", "[recommend]") {
  auto data = cyclic(24, 240, 5);
  for (auto loss : {SasRecLoss::cross_entropy, SasRecLoss::bce}) {
    SasRecOptions so;
    so.hidden_size = 32;
    so.num_layers = 1;
    so.dropout = 0;
    so.loss = loss;
    SasRec model(24, so, 2);
    SasRecTrainerOptions to;
    to.batch_size = 32;
    to.loop.epochs(loss == SasRecLoss::bce ? 40 : 15).patience(0).log_every(0).learning_rate(5e-3);
    train_sasrec(model, sequences_of(data.train), data.valid, to);
    std::vector<std::vector<ItemIndex>> histories;
    for (auto& e : data.valid) histories.push_back(e.history);
    auto scores = model.score(histories);
    REQUIRE(scores.sizes() == torch::IntArrayRef({std::int64_t(data.valid.size()), 24}));
    std::int64_t hits = 0;
    for (std::size_t i = 0; i < data.valid.size(); ++i) hits += scores[i].argmax().item<std::int64_t>() == data.valid[i].target;
    INFO("loss " << (loss == SasRecLoss::bce ? "bce" : "ce") << " hits " << hits << "/" << data.valid.size());
    CHECK(hits >= std::int64_t(0.8 * data.valid.size()));  // chance: 1/24
  }
}
