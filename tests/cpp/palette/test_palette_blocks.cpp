#include "palette/palette_fixture.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/palette/attention_mask.hpp>
#include <lamia/palette/blocks.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <map>
#include <random>
#include <string>

using namespace lamia;

namespace {

using testing::make_tokens;

// The table of DESIGN.md, written out as text: rows are queries, columns keys.
const std::map<std::string, std::map<std::string, std::string>> kDesignTable = {
    {"content", {{"content", "causal"}, {"LaP", "-"}, {"LdP", "-"}, {"task", "-"}}},
    {"LaP", {{"content", "all"}, {"LaP", "causal"}, {"LdP", "-"}, {"task", "-"}}},
    {"LdP", {{"content", "-"}, {"LaP", "-"}, {"LdP", "causal"}, {"task", "-"}}},
    {"task", {{"content", "-"}, {"LaP", "-"}, {"LdP", "all"}, {"task", "causal"}}},
};

bool table_says(Block q, std::int64_t qi, Block k, std::int64_t ki) {
  if (q == Block::kPad || k == Block::kPad) return false;
  const auto& rule = kDesignTable.at(block_name(q)).at(block_name(k));
  if (rule == "all") return true;
  if (rule == "causal") return ki <= qi;
  return false;
}

}  // namespace

TEST_CASE("a sample is content, LaP, LdP, task token, answer, eos", "[palette][blocks]") {
  auto tokens = make_tokens(3, 2);
  auto s = build_sample({10, 11, 12}, {20, 21}, 1, tokens, 7);
  std::vector<PaletteTokenId> expected = {10, 11, 12, 100, 101, 102, 200, 201, 202, 301, 20, 21, 2};
  CHECK(s.tokens == expected);
  std::vector<Block> blocks = {Block::kContent, Block::kContent, Block::kContent, Block::kLaP, Block::kLaP,
                               Block::kLaP, Block::kLdP, Block::kLdP, Block::kLdP, Block::kTask,
                               Block::kTask, Block::kTask, Block::kTask};
  CHECK(s.blocks == blocks);
  // Loss on answer tokens and eos only: the task token predicts 20, 20 predicts 21, 21 predicts eos.
  std::vector<std::int64_t> labels(13, kIgnoreLabel);
  labels[9] = 20;
  labels[10] = 21;
  labels[11] = 2;
  CHECK(s.labels == labels);
  CHECK(s.content_length == 3);
  CHECK(s.task_length == 4);
  CHECK(s.item == 7);
  CHECK(s.task == 1);
}

TEST_CASE("an empty answer is the task token followed by eos", "[palette][blocks]") {
  auto s = build_sample({5}, {}, 0, make_tokens(1, 1));
  CHECK(s.tokens == std::vector<PaletteTokenId>{5, 100, 200, 300, 2});
  CHECK(s.labels == std::vector<std::int64_t>{kIgnoreLabel, kIgnoreLabel, kIgnoreLabel, 2, kIgnoreLabel});
}

TEST_CASE("build_sample rejects bad tasks, empty content and L = 0", "[palette][blocks]") {
  auto tokens = make_tokens(2, 2);
  CHECK_THROWS_AS(build_sample({1}, {2}, 2, tokens), IndexError);
  CHECK_THROWS_AS(build_sample({1}, {2}, -1, tokens), IndexError);
  CHECK_THROWS_AS(build_sample(std::vector<PaletteTokenId>{}, {2}, 0, tokens), ValueError);
  auto none = make_tokens(0, 2);
  CHECK_THROWS_WITH(build_sample({1}, {2}, 0, none), Catch::Contains("at least 1"));
}

TEST_CASE("content renders the first r attributes as name: value, each cut to its budget", "[palette][blocks]") {
  Catalog catalog({"title", "abstract", "category"});
  catalog.add("a", {"hello world", "x", "news"});
  catalog.add("b", {"", "a long abstract here", "sports"});
  // A character-level "tokenizer": one id per byte.
  EncodeFunction encode = [](std::string_view s) {
    std::vector<PaletteTokenId> ids;
    for (unsigned char c : s) ids.push_back(c);
    return ids;
  };
  BlockLayoutOptions opt;
  opt.num_content_attributes = 2;
  opt.attribute_token_budget = 12;
  opt.answer_token_budget = 5;
  auto tc = tokenize_catalog(catalog, encode, opt, PaletteTokenId{0});
  REQUIRE(tc.size() == 2);
  auto text = [](const std::vector<PaletteTokenId>& ids, std::size_t from) {
    std::string s;
    for (std::size_t i = from; i < ids.size(); ++i) s.push_back(static_cast<char>(ids[i]));
    return s;
  };
  CHECK(tc.items[0].content[0] == 0);  // bos
  // "title: hello world" (18) -> 12; " abstract: x" (12) fits.
  CHECK(text(tc.items[0].content, 1) == std::string("title: hello") + " abstract: x");
  CHECK(text(tc.items[1].content, 1) == std::string("title: ") + " abstract: a");
  CHECK(tc.content_truncations == 2);  // item a's title, item b's abstract
  CHECK(text(tc.items[0].answers[0], 0) == "hello");
  CHECK(text(tc.items[1].answers[2], 0) == "sport");
  CHECK(tc.item_ids == std::vector<std::string>{"a", "b"});
  auto s = make_sample(tc, 1, 2, make_tokens(2, 3));
  CHECK(s.item == 1);
  CHECK(s.content_length == static_cast<std::int64_t>(tc.items[1].content.size()));
  CHECK_THROWS_AS(make_sample(tc, 2, 0, make_tokens(2, 3)), IndexError);
  CHECK_THROWS_AS(make_sample(tc, 0, 0, make_tokens(2, 2)), ValueError);
  CHECK(tc.answer_truncations == 3);  // a.title, b.abstract, b.category
  opt.num_content_attributes = 4;
  CHECK_THROWS_AS(tokenize_catalog(catalog, encode, opt), ValueError);
  opt.num_content_attributes = 0;
  CHECK_THROWS_AS(tokenize_catalog(catalog, encode, opt), ValueError);
}

TEST_CASE("collate pads rows and keeps positions of the full layout in every segment", "[palette][blocks]") {
  const std::int64_t L = GENERATE(1, 2, 4);
  auto tokens = make_tokens(L, 3);
  std::vector<SampleLayout> samples = {build_sample({10, 11, 12, 13}, {20}, 0, tokens, 0),
                                       build_sample({14}, {21, 22, 23}, 2, tokens, 1),
                                       build_sample({10, 11, 12, 13}, {24, 25}, 1, tokens, 0)};
  auto b = collate_samples(samples, tokens);
  CHECK(b.num_samples() == 3);
  CHECK(b.items == std::vector<ItemIndex>{0, 1});
  CHECK(b.sample_item_row.equal(torch::tensor({0, 1, 0}, torch::kInt64)));
  CHECK(b.item_first_sample.equal(torch::tensor({0, 1}, torch::kInt64)));
  std::int64_t total = 0;
  for (auto& s : samples) total += s.size();
  CHECK(b.num_tokens == total);
  std::int64_t longest = 0;
  for (auto& s : samples) longest = std::max(longest, s.size());
  REQUIRE(b.full.length() == longest);
  for (std::size_t r = 0; r < samples.size(); ++r) {
    const auto& s = samples[r];
    for (std::int64_t t = 0; t < b.full.length(); ++t) {
      const bool real = t < s.size();
      CHECK(b.full.input_ids[r][t].item<std::int64_t>() == (real ? s.tokens[t] : tokens.pad));
      CHECK(b.full.block_types[r][t].item<std::int64_t>() ==
            (real ? static_cast<std::int64_t>(s.blocks[t]) : 0));
      CHECK(b.full.labels[r][t].item<std::int64_t>() == (real ? s.labels[t] : kIgnoreLabel));
      if (real) CHECK(b.full.position_ids[r][t].item<std::int64_t>() == t);
    }
    // decode: [LdP; task] with the positions the tokens have in the full layout.
    const auto start = s.content_length + L;
    for (std::int64_t t = 0; t < s.size() - start; ++t) {
      CHECK(b.decode.input_ids[r][t].item<std::int64_t>() == s.tokens[start + t]);
      CHECK(b.decode.position_ids[r][t].item<std::int64_t>() == start + t);
      CHECK(b.decode.labels[r][t].item<std::int64_t>() == s.labels[start + t]);
    }
    for (std::int64_t j = 0; j < L; ++j) {
      CHECK(b.full_lap_index[r][j].item<std::int64_t>() == s.content_length + j);
      CHECK(b.full_ldp_index[r][j].item<std::int64_t>() == s.content_length + L + j);
      CHECK(b.decode.block_types[r][j].item<std::int64_t>() == static_cast<std::int64_t>(Block::kLdP));
    }
  }
  // encode: one row per distinct item, [content; LaP].
  REQUIRE(b.encode.rows() == 2);
  CHECK(b.encode.length() == 4 + L);
  CHECK(b.encode_lap_index[1][0].item<std::int64_t>() == 1);
  CHECK(b.encode.block_types[1][1 + L].item<std::int64_t>() == 0);
  CHECK(b.encode.input_ids[1][1 + L].item<std::int64_t>() == tokens.pad);
}

TEST_CASE("collate rejects two samples of one item with different content", "[palette][blocks]") {
  auto tokens = make_tokens(2, 2);
  std::vector<SampleLayout> samples = {build_sample({1, 2}, {3}, 0, tokens, 5),
                                       build_sample({1, 9}, {3}, 1, tokens, 5)};
  CHECK_THROWS_WITH(collate_samples(samples, tokens), Catch::Contains("item 5"));
  CHECK_THROWS_AS(collate_samples({}, tokens), ValueError);
}

TEST_CASE("the attention mask follows the DESIGN.md table cell by cell on random layouts", "[palette][mask]") {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 40; ++trial) {
    const std::int64_t L = 1 + static_cast<std::int64_t>(rng() % 5);
    auto tokens = make_tokens(L, 3);
    const int B = 1 + static_cast<int>(rng() % 4);
    std::vector<SampleLayout> samples;
    for (int r = 0; r < B; ++r) {
      std::vector<PaletteTokenId> content(1 + rng() % 7, 50), answer(rng() % 5, 60);
      samples.push_back(build_sample(content, answer, static_cast<std::int64_t>(rng() % 3), tokens, r));
    }
    auto b = collate_samples(samples, tokens);
    for (const PaletteSegment* seg : {&b.full, &b.encode, &b.decode}) {
      auto mask = palette_attention_mask(seg->block_types);
      REQUIRE(mask.scalar_type() == torch::kBool);
      REQUIRE(mask.sizes() == torch::IntArrayRef({seg->rows(), seg->length(), seg->length()}));
      auto M = mask.accessor<bool, 3>();
      auto K = seg->block_types.accessor<std::int64_t, 2>();
      for (std::int64_t r = 0; r < seg->rows(); ++r) {
        for (std::int64_t q = 0; q < seg->length(); ++q) {
          for (std::int64_t k = 0; k < seg->length(); ++k) {
            const auto bq = static_cast<Block>(K[r][q]), bk = static_cast<Block>(K[r][k]);
            const bool want = table_says(bq, q, bk, k);
            if (M[r][q][k] != want) {
              FAIL_CHECK("row " << r << " query " << q << " (" << block_name(bq) << ") key " << k << " ("
                                << block_name(bk) << "): mask " << M[r][q][k] << ", table " << want);
            }
            CHECK(palette_may_attend(bq, q, bk, k) == want);
          }
        }
      }
    }
  }
}

TEST_CASE("the mask of a sub-layout is the sub-matrix of the full mask", "[palette][mask]") {
  auto tokens = make_tokens(3, 2);
  auto s = build_sample({1, 2, 3, 4}, {5, 6}, 1, tokens, 0);
  auto b = collate_samples({s}, tokens);
  auto full = palette_attention_mask(b.full.block_types)[0];
  const auto c = s.content_length, L = tokens.palette_size();
  CHECK(palette_attention_mask(b.encode.block_types)[0].equal(full.slice(0, 0, c + L).slice(1, 0, c + L)));
  CHECK(palette_attention_mask(b.decode.block_types)[0].equal(full.slice(0, c + L).slice(1, c + L)));
  // Task rows see nothing of content or LaP: the item reaches the task only through LdP.
  CHECK_FALSE(full.slice(0, c + 2 * L).slice(1, 0, c + L).any().item<bool>());
  CHECK_THROWS_AS(palette_attention_mask(torch::zeros({2, 2, 2}, torch::kInt64)), c10::ValueError);
  CHECK_THROWS_AS(palette_attention_mask(torch::zeros({2, 2}, torch::kInt32)), c10::ValueError);
}
