// Backbone (2): the language model with the code tokens after its text vocabulary, LoRA, the
// text-token alignment task and its two training phases, decoding on this backbone, save/load.
#include <lamia/core/errors.hpp>
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/ids/trie.hpp>
#include <lamia/nn/checkpoint.hpp>
#include <lamia/nn/lora.hpp>
#include <lamia/recommend/beam_search.hpp>
#include <lamia/recommend/constraints.hpp>
#include <lamia/recommend/exact_scoring.hpp>
#include <lamia/recommend/generative_recommender.hpp>
#include <lamia/recommend/lm_backbone.hpp>

#include "recommend_fixtures.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

using namespace lamia;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kText = 40;  // text vocabulary of the tests' LM: ids 0..39, bos 2, pad 1

fs::path lm_temp_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("lamia_test_lm_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The cyclic data (recommend_fixtures.hpp) with texts: item i's is (4 + i % 8, 20 + i / 8, 12), a text
// that names its codes, so the alignment task can be learnt.
struct LmData {
  SemanticIdTable table;
  ItemTextTokens text;
  std::vector<SequenceExample> train, valid;
};

LmData lm_data(std::int64_t n, std::int64_t users, std::int64_t length) {
  auto c = test::cyclic(n, users, length);
  LmData d{std::move(c.table), {}, std::move(c.train), std::move(c.valid)};
  for (std::int64_t i = 0; i < n; ++i) d.text.push_back({4 + i % 8, 20 + i / 8, 12});
  return d;
}

CodeVocabulary lm_vocab(const SemanticIdTable& table) {
  return CodeVocabulary::after_text(table.codebook_sizes(), kText, /*bos=*/2, /*pad=*/1);
}

RecommenderModelOptions small_lm() {
  RecommenderModelOptions o;
  o.backbone = RecommenderBackbone::lm;
  o.hidden_size = 32;
  o.num_layers = 2;
  o.num_heads = 4;
  o.dropout = 0.1;
  o.max_history_items = 8;
  o.align_text_tokens = 4;
  return o;
}

// A "user's checkpoint": a text-only OPT decoder saved as a Hugging Face folder.
fs::path save_text_checkpoint(const fs::path& dir, std::uint64_t seed) {
  torch::manual_seed(seed);
  Decoder text_lm(DecoderOptions(kText, 32, 2, 4).dropout(0.0).max_position_embeddings(128));
  save_pretrained(*text_lm, dir);
  return dir;
}

std::vector<std::pair<std::string, torch::Tensor>> named_snapshot(torch::nn::Module& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value().detach().clone());
  return out;
}

}  // namespace

TEST_CASE("LM vocabulary: code tokens after the text vocabulary", "[recommend][lm]") {
  std::vector<std::int32_t> codes = {0, 0, 0, 1, 1, 0, 1, 2, 2, 2, 2, 2};
  auto table = SemanticIdTable::from_codes(codes.data(), 6, 2, {3, 3}, IndexTokenOrder::item_order);
  auto vocab = CodeVocabulary::after_text(table.codebook_sizes(), 100, 2, 1);
  CHECK(vocab.text_vocab_size() == 100);
  CHECK(vocab.first_code_token() == 100);
  CHECK(vocab.size() == 100 + 3 + 3 + 2);
  CHECK(vocab.bos() == 2);
  CHECK(vocab.pad() == 1);
  CHECK(vocab.token(0, 0) == 100);
  CHECK(vocab.token(1, 2) == 105);
  CHECK(vocab.token(2, 1) == 107);
  CHECK_THROWS_AS(vocab.code_of(99), IndexError);
  for (std::int64_t t = 100; t < vocab.size(); ++t) {
    auto [level, code] = vocab.code_of(t);
    CHECK(vocab.token(level, code) == t);
  }
  auto codes_only = CodeVocabulary::for_table(table);
  CHECK(codes_only.text_vocab_size() == 0);
  CHECK(codes_only.bos() == CodeVocabulary::kBos);
  CHECK(codes_only != vocab);
  nlohmann::json j = vocab;
  CHECK(j.get<CodeVocabulary>() == vocab);
  nlohmann::json j0 = codes_only;
  CHECK(j0.get<CodeVocabulary>() == codes_only);
  // The histories start with the text vocabulary's BOS and pad with its pad token.
  auto h = encode_histories(table, vocab, {{0, 3}, {5}});
  CHECK(h.tokens[1][0].item<std::int64_t>() == 1);                 // pad
  CHECK(h.tokens[1][3].item<std::int64_t>() == 2);                 // bos
  CHECK(h.tokens[0][1].item<std::int64_t>() == vocab.token(0, 0));  // item 0's first code
  CHECK_THROWS_AS(CodeVocabulary::after_text({3, 3}, 100, 100, 1), ValueError);  // bos outside the text part
}

TEST_CASE("alignment batch: text then codes, labels only on the code tokens", "[recommend][lm]") {
  std::vector<std::int32_t> codes = {0, 0, 0, 1, 1, 0, 1, 2, 2, 2, 2, 2};
  auto table = SemanticIdTable::from_codes(codes.data(), 6, 2, {3, 3}, IndexTokenOrder::item_order);
  auto vocab = CodeVocabulary::after_text(table.codebook_sizes(), 50, /*bos=*/0, /*pad=*/1);
  ItemTextTokens text(6);
  text[0] = {10, 11, 12};
  text[3] = {20};
  auto b = make_alignment_batch(table, vocab, text, {0, 3}, /*max_text_tokens=*/2);
  // item 0: codes (0, 0, index 0) -> 50, 53, 56; item 3: codes (1, 2, index 0) -> 51, 55, 56.
  const std::int64_t P = 1, I = kRecommenderIgnoreLabel;
  auto expect_in = torch::tensor(std::vector<std::int64_t>{0, 10, 11, 50, 53, P, 0, 20, 51, 55}).view({2, 5});
  auto expect_lab = torch::tensor(std::vector<std::int64_t>{I, I, 50, 53, 56, I, I, 51, 55, 56}).view({2, 5});
  auto expect_pos = torch::tensor(std::vector<std::int64_t>{0, 1, 2, 3, 4, 0, 0, 1, 2, 3}).view({2, 5});
  CHECK(torch::equal(b.input_ids, expect_in));
  CHECK(torch::equal(b.labels, expect_lab));
  CHECK(torch::equal(b.position_ids, expect_pos));
  CHECK(b.label_count == 6);
  CHECK(b.tokens == 9);
  CHECK_FALSE(b.attention_mask[1][0].any().item<bool>());  // the pad row attends nothing
  CHECK_THROWS_AS(make_alignment_batch(table, vocab, text, {6}, 2), IndexError);
  ItemTextTokens bad(6);
  bad[0] = {50};  // a code token is not text
  CHECK_THROWS_AS(make_alignment_batch(table, vocab, bad, {0}, 2), ValueError);
  CHECK_THROWS_AS(make_alignment_batch(table, CodeVocabulary::for_table(table), text, {0}, 2), ValueError);
}

TEST_CASE("LM backbone: beam search returns only real items; at full width it equals exact ranking",
          "[recommend][lm]") {
  auto d = lm_data(24, 10, 3);
  auto vocab = lm_vocab(d.table);
  auto model = make_recommender(vocab, small_lm(), 3);
  CHECK(model->options().vocab_size() == kText + 8 + 3 + 1);
  // Push the text tokens' logits far above the codes': an unconstrained decoder would emit text.
  {
    torch::NoGradGuard no_grad;
    model->embed_tokens_->weight.narrow(0, 0, kText).mul_(50);
  }
  model->eval();
  DeviceTrie trie(d.table, vocab);
  std::vector<std::vector<ItemIndex>> histories;
  for (const auto& e : d.valid) histories.push_back(e.history);
  auto h = encode_histories(d.table, vocab, histories, 8);
  const auto n = d.table.num_items();
  BeamSearchOptions opt;
  opt.beam_width = n;
  opt.top_k = n;
  auto beam = beam_search(*model, trie, h, opt);
  auto exact = score_all_items(*model, trie, h);
  auto top = exact.topk(n, 1);
  for (std::int64_t b = 0; b < h.tokens.size(0); ++b) {
    std::set<std::int64_t> seen;
    for (std::int64_t k = 0; k < n; ++k) {
      const auto item = beam.items[b][k].item<std::int64_t>();
      CHECK(item >= 0);
      CHECK(item < n);
      seen.insert(item);
      CHECK(item == std::get<1>(top)[b][k].item<std::int64_t>());
      CHECK(beam.scores[b][k].item<float>() == Approx(std::get<0>(top)[b][k].item<float>()).margin(1e-3));
    }
    CHECK(std::int64_t(seen.size()) == n);
  }
  // The text tokens took most of the probability: the item scores are far below log(1/n).
  CHECK(beam.scores[0][0].item<float>() < std::log(1.0 / double(n)) - 1.0);
}

TEST_CASE("LM backbone from a checkpoint: old embedding rows kept, new rows near the mean, seeded",
          "[recommend][lm]") {
  auto dir = lm_temp_dir("grow");
  save_text_checkpoint(dir / "opt", 7);
  auto ckpt = load_pretrained(dir / "opt");
  auto d = lm_data(24, 10, 3);
  auto vocab = lm_vocab(d.table);
  auto o = small_lm();
  o.pretrained = dir / "opt";
  auto a = make_recommender(vocab, o, 11);
  auto b = make_recommender(vocab, o, 11);
  auto c = make_recommender(vocab, o, 12);
  const auto& w = a->embed_tokens_->weight;
  REQUIRE(w.size(0) == vocab.size());
  CHECK(torch::equal(w.narrow(0, 0, kText), ckpt->embed_tokens_->weight));
  CHECK(torch::equal(w, b->embed_tokens_->weight));
  CHECK_FALSE(torch::equal(w, c->embed_tokens_->weight));
  auto mean = ckpt->embed_tokens_->weight.mean(0);
  auto spread = (ckpt->embed_tokens_->weight - mean).pow(2).mean().sqrt().item<double>();
  auto dev = (w.narrow(0, kText, vocab.size() - kText) - mean).pow(2).mean().sqrt().item<double>();
  CHECK(dev > 0.0);
  CHECK(dev < 0.3 * spread);
  // The other weights are the checkpoint's.
  CHECK(torch::equal(a->layer_modules[0]->fc1->weight, ckpt->layer_modules[0]->fc1->weight));
  // A checkpoint whose vocabulary is not the text part is refused.
  auto wrong = CodeVocabulary::after_text(d.table.codebook_sizes(), kText + 1, 2, 1);
  CHECK_THROWS_WITH(make_recommender(wrong, o, 1), Catch::Contains("41"));
  fs::remove_all(dir);
}

TEST_CASE("LM backbone with LoRA trains only the adapters and the code tokens' rows", "[recommend][lm]") {
  auto dir = lm_temp_dir("lora");
  save_text_checkpoint(dir / "opt", 7);
  auto d = lm_data(24, 20, 3);
  auto vocab = lm_vocab(d.table);
  auto o = small_lm();
  o.pretrained = dir / "opt";
  o.lora_rank = 4;
  auto model = make_recommender(vocab, o, 1);
  REQUIRE(has_lora(*model));
  auto before = named_snapshot(*model);
  RecommenderTrainerOptions to;
  to.batch_size = 8;
  to.max_history_items = 8;
  to.align_epochs = 1;
  to.align_text_tokens = 4;
  to.loop.epochs(1).max_steps(1).patience(0).log_every(0).learning_rate(1e-2).weight_decay(0);
  auto r = train_recommender(model, d.table, vocab, d.train, {}, to, d.text);
  REQUIRE(r.steps == 1);
  auto after = named_snapshot(*model);
  REQUIRE(before.size() == after.size());
  bool adapter_moved = false;
  for (std::size_t i = 0; i < before.size(); ++i) {
    const auto& name = before[i].first;
    INFO(name);
    if (name.find("lora_") != std::string::npos) {
      adapter_moved = adapter_moved || !torch::equal(before[i].second, after[i].second);
    } else if (name == "embed_tokens.weight") {
      CHECK(torch::equal(before[i].second.narrow(0, 0, kText), after[i].second.narrow(0, 0, kText)));
      CHECK_FALSE(torch::equal(before[i].second.narrow(0, kText, vocab.size() - kText),
                               after[i].second.narrow(0, kText, vocab.size() - kText)));
    } else {
      CHECK(torch::equal(before[i].second, after[i].second));
    }
  }
  CHECK(adapter_moved);
  // Weight decay would move the frozen rows: refused.
  auto m2 = make_recommender(vocab, o, 1);
  to.loop.weight_decay(0.01);
  CHECK_THROWS_WITH(train_recommender(m2, d.table, vocab, d.train, {}, to, d.text), Catch::Contains("weight_decay"));

  // Save / load keeps the adapters and the grown embedding: the same logits.
  to.loop.weight_decay(0);
  save_recommender(dir / "rec", *model, d.table, vocab, o);
  auto loaded = load_recommender(dir / "rec", d.table);
  CHECK(loaded.vocab == vocab);
  CHECK(loaded.options.backbone == RecommenderBackbone::lm);
  model->eval();
  auto h = encode_histories(d.table, vocab, {{1, 2, 3}}, 8);
  DecoderInput in;
  in.input_ids = h.tokens;
  auto x = model->forward(in).logits;
  auto y = loaded.model->forward(in).logits;
  CHECK(torch::allclose(x, y, 1e-5, 1e-5));
  fs::remove_all(dir);
}

TEST_CASE("LM backbone: alignment phase then recommendation, exact resume across the switch; loss falls",
          "[recommend][lm]") {
  auto d = lm_data(24, 60, 4);
  auto vocab = lm_vocab(d.table);
  auto o = small_lm();
  auto dir = lm_temp_dir("phases");
  RecommenderTrainerOptions to;
  to.batch_size = 40;  // phase 1: (48 examples + 24 items) / 40 = 2 batches per epoch; phase 2: 48 / 40 = 2
  to.max_history_items = 8;
  to.align_epochs = 1;
  to.align_text_tokens = 4;
  to.seed = 5;
  to.loop.epochs(2).patience(0).log_every(0).learning_rate(3e-3);

  auto full = make_recommender(vocab, o, 1);
  to.loop.checkpoint_path((dir / "full.ckpt").string());
  auto r = train_recommender(full, d.table, vocab, d.train, d.valid, to, d.text);
  CHECK(r.steps == 4);

  // Two steps (the end of phase 1), checkpoint, then resume into phase 2: the same weights bit for bit.
  auto part = make_recommender(vocab, o, 1);
  to.loop.checkpoint_path((dir / "part.ckpt").string()).max_steps(2);
  train_recommender(part, d.table, vocab, d.train, d.valid, to, d.text);
  auto resumed = make_recommender(vocab, o, 99);
  to.loop.max_steps(0);
  auto r2 = train_recommender(resumed, d.table, vocab, d.train, d.valid, to, d.text);
  CHECK(r2.resumed);
  CHECK(r2.resumed_at_step == 2);
  auto a = named_snapshot(*full), b = named_snapshot(*resumed);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(torch::equal(a[i].second, b[i].second));

  // Other item texts: a checkpoint of another setup is refused.
  auto other_text = d.text;
  other_text[0][0] = 5;
  auto m3 = make_recommender(vocab, o, 1);
  CHECK_THROWS_WITH(train_recommender(m3, d.table, vocab, d.train, d.valid, to, other_text),
                    Catch::Contains("another setup"));

  // A longer run learns: the recommendation loss and the alignment loss both fall.
  auto learner = make_recommender(vocab, o, 2);
  std::vector<ItemIndex> all_items;
  for (std::int64_t i = 0; i < d.table.num_items(); ++i) all_items.push_back(ItemIndex(i));
  auto align_loss = [&] {
    torch::NoGradGuard no_grad;
    learner->eval();
    auto l = recommender_loss(*learner, make_alignment_batch(d.table, vocab, d.text, all_items, 4)).loss.item<double>();
    learner->train();
    return l;
  };
  const auto rec_before = recommender_validation_loss(*learner, d.table, vocab, d.valid, 8);
  const auto align_before = align_loss();
  to.batch_size = 16;
  to.align_epochs = 10;
  to.loop.epochs(14).checkpoint_path("");
  train_recommender(learner, d.table, vocab, d.train, d.valid, to, d.text);
  const auto rec_after = recommender_validation_loss(*learner, d.table, vocab, d.valid, 8);
  const auto align_after = align_loss();
  CHECK(rec_after < 0.7 * rec_before);
  CHECK(align_after < 0.7 * align_before);
  fs::remove_all(dir);
}

TEST_CASE("LM backbone with item text prompts: histories carry each item's text before its codes",
          "[recommend][lm]") {
  auto d = lm_data(24, 10, 3);
  auto vocab = lm_vocab(d.table);
  auto h = encode_histories(d.table, vocab, {{0, 9}}, 8, d.text, 2);
  // [bos, 4, 20, codes(0), 5, 21, codes(9)]
  REQUIRE(h.tokens.size(1) == 1 + 2 * (2 + 3));
  CHECK(h.tokens[0][1].item<std::int64_t>() == 4);
  CHECK(h.tokens[0][2].item<std::int64_t>() == 20);
  CHECK(h.tokens[0][3].item<std::int64_t>() == vocab.token(0, 0));
  CHECK(h.tokens[0][6].item<std::int64_t>() == 5);
  CHECK(h.tokens[0][7].item<std::int64_t>() == 21);
  // The training batch: labels only on code tokens (the target's, and with loss_on_history the items').
  std::vector<const SequenceExample*> ex = {&d.train[0]};
  auto b = make_recommender_batch(d.table, vocab, ex, 8, /*loss_on_history=*/true, &d.text, 2);
  auto labels = b.labels[0];
  for (std::int64_t t = 0; t < labels.size(0); ++t) {
    const auto l = labels[t].item<std::int64_t>();
    if (l != kRecommenderIgnoreLabel) CHECK(l >= kText);
  }
  CHECK(b.label_count == std::int64_t(d.train[0].history.size() + 1) * 3);
}

TEST_CASE("LM backbone with item text prompts: ExcludeHistory skips the prompts; the folder records them",
          "[recommend][lm]") {
  auto d = lm_data(24, 10, 3);
  auto vocab = lm_vocab(d.table);
  auto options = small_lm();
  options.item_text_tokens = 2;
  auto model = make_recommender(vocab, options, 5);
  model->eval();
  DeviceTrie trie(d.table, vocab);
  const std::vector<std::vector<ItemIndex>> histories = {{0, 9, 17}, {5}, {}, {23, 1}};
  auto h = encode_histories(d.table, vocab, histories, 8, d.text, 2);
  const auto n = d.table.num_items();
  BeamSearchOptions opt;
  opt.beam_width = n;
  opt.top_k = n;
  ConstraintSet decoded, listed;
  decoded.add(ExcludeHistory());  // decoded from the tokens: the code tokens only
  listed.add(ExcludeHistory(histories));
  auto a = beam_search(*model, trie, h, opt, decoded);
  auto b = beam_search(*model, trie, h, opt, listed);
  CHECK(torch::equal(a.items, b.items));
  for (std::size_t u = 0; u < histories.size(); ++u) {
    INFO("user " << u);
    CHECK(a.counts[std::int64_t(u)].item<std::int64_t>() == n - std::int64_t(histories[u].size()));
    for (auto item : histories[u]) CHECK_FALSE((a.items[std::int64_t(u)] == item).any().item<bool>());
  }

  // The folder records the prompts; histories with others are refused, naming both values.
  const auto dir = lm_temp_dir("item_text");
  save_recommender(dir, *model, d.table, vocab, options, &d.text);
  auto rec = load_recommender(dir, d.table);
  CHECK(rec.options.item_text_tokens == 2);
  CHECK(rec.item_text_checksum == item_text_checksum(d.text, 2));
  CHECK(nlohmann::json::parse(std::ifstream(dir / "recommender.json"))["item_text_checksum"] == rec.item_text_checksum);
  CHECK_NOTHROW(check_item_text_prompts(rec, 2, d.text));
  CHECK_THROWS_WITH(check_item_text_prompts(rec, 3, d.text),
                    Catch::Contains("item_text_tokens = 2") && Catch::Contains("item_text_tokens = 3"));
  auto third = d.text;  // beyond the first 2 tokens: not part of the prompts
  for (auto& t : third) t[2] = 13;
  CHECK(item_text_checksum(third, 2) == rec.item_text_checksum);
  CHECK_NOTHROW(check_item_text_prompts(rec, 2, third));
  auto other = d.text;
  other[7][1] = 30;
  CHECK(item_text_checksum(other, 2) != rec.item_text_checksum);
  CHECK_THROWS_WITH(check_item_text_prompts(rec, 2, other),
                    Catch::Contains(rec.item_text_checksum) && Catch::Contains(item_text_checksum(other, 2)));
  // Without the texts nothing is recorded, and only the count is checked.
  save_recommender(dir, *model, d.table, vocab, options);
  auto bare = load_recommender(dir, d.table);
  CHECK(bare.item_text_checksum.empty());
  CHECK_NOTHROW(check_item_text_prompts(bare, 2, other));
  CHECK_THROWS(check_item_text_prompts(bare, 0, {}));
  fs::remove_all(dir);
}

TEST_CASE("RecommenderModelOptions: the backbone and its fields in JSON; codes-only fields checked",
          "[recommend][lm]") {
  RecommenderModelOptions o;
  nlohmann::json::parse(R"({"backbone": "lm", "item_text_tokens": 8, "lora_rank": 0})").get_to(o);
  CHECK(o.backbone == RecommenderBackbone::lm);
  CHECK(o.item_text_tokens == 8);
  CHECK_THROWS_WITH(nlohmann::json::parse(R"({"backbone": "gpt"})").get_to(o), Catch::Contains("codes"));
  RecommenderModelOptions codes;
  CHECK_THROWS_WITH(nlohmann::json::parse(R"({"item_text_tokens": 4})").get_to(codes), Catch::Contains("backbone"));
  CHECK_THROWS_WITH(nlohmann::json::parse(R"({"backbone": "lm", "lora_rank": 4})").get_to(codes),
                    Catch::Contains("pretrained"));
}
