// Constrained decoding: the device trie, item constraints, batched beam search with the KV cache and
// exact full-catalog scoring, each against an independent reference.
#include <lamia/core/errors.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/recommend/beam_search.hpp>
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/recommend/constraints.hpp>
#include <lamia/recommend/exact_scoring.hpp>
#include <lamia/ids/trie.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <vector>

using namespace lamia;
using Catch::Matchers::Contains;

namespace {

using Histories = std::vector<std::vector<ItemIndex>>;

// n items with random codes over small codebooks, so that many collide (index tokens up to ~5).
SemanticIdTable random_table(std::int64_t n, std::vector<std::int64_t> sizes, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::int32_t> codes;
  for (std::int64_t i = 0; i < n; ++i) {
    for (auto s : sizes) codes.push_back(std::int32_t(rng() % std::uint32_t(s)));
  }
  return SemanticIdTable::from_codes(codes.data(), n, std::int64_t(sizes.size()), sizes);
}

// A small random decoder over the table's vocabulary, with weights wide enough that the
// distributions are far from uniform (no near-ties between candidates).
Decoder random_model(const CodeVocabulary& vocab, std::uint64_t seed, double dropout = 0) {
  torch::manual_seed(seed);
  Decoder model(DecoderOptions(vocab.size(), 32, 2, 4).dropout(dropout).pad_token_id(CodeVocabulary::kPad));
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    if (p.key().find("layer_norm") == std::string::npos) p.value().normal_(0, 0.25);
  }
  model->eval();
  return model;
}

Histories random_histories(std::int64_t users, std::int64_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  Histories h(std::size_t(users), std::vector<ItemIndex>{});
  for (std::int64_t u = 0; u < users; ++u) {
    const auto len = u == 1 ? 0 : 1 + rng() % 6;  // row 1 is empty: [BOS] only
    for (std::uint32_t t = 0; t < len; ++t) h[std::size_t(u)].push_back(ItemIndex(rng() % std::uint32_t(n)));
  }
  return h;
}

struct Fixture {
  SemanticIdTable table;
  CodeVocabulary vocab;
  DeviceTrie trie;
  Decoder model{nullptr};
  Histories lists;
  EncodedHistories histories;

  explicit Fixture(std::int64_t n = 40, std::vector<std::int64_t> sizes = {4, 3, 3}, std::int64_t users = 7,
                   std::uint32_t seed = 1) {
    table = random_table(n, sizes, seed);
    vocab = CodeVocabulary::for_table(table);
    trie = DeviceTrie(table, vocab);
    model = random_model(vocab, seed);
    lists = random_histories(users, n, seed + 100);
    histories = encode_histories(table, vocab, lists, 20);
  }
  std::int64_t B() const { return histories.tokens.size(0); }
};

// Independent reference: per user, a plain full forward of [BOS, history..., item tokens] for every
// item (unpadded, default positions and causal mask), summing log_softmax at the item's tokens.
torch::Tensor brute_force_scores(DecoderImpl& model, const SemanticIdTable& table, const CodeVocabulary& vocab,
                                 const Histories& lists) {
  torch::NoGradGuard no_grad;
  const auto n = table.num_items(), W = vocab.num_levels();
  auto all = vocab.all_item_tokens(table);  // [n, W]
  auto out = torch::empty({std::int64_t(lists.size()), n});
  for (std::size_t u = 0; u < lists.size(); ++u) {
    std::vector<std::int64_t> hist{CodeVocabulary::kBos};
    std::vector<std::int64_t> tok(std::size_t(W), 0);
    for (auto item : lists[u]) {
      vocab.item_tokens(table, item, tok.data());
      hist.insert(hist.end(), tok.begin(), tok.end());
    }
    const auto H = std::int64_t(hist.size());
    auto prefix = torch::tensor(hist, torch::kLong).unsqueeze(0).expand({n, H});
    auto seq = torch::cat({prefix, all}, 1);  // [n, H + W]
    DecoderInput in;
    in.input_ids = seq;
    auto logp = torch::log_softmax(model.forward(in).logits, -1);  // [n, H+W, V]
    // Token at column H + l is predicted at column H + l - 1.
    auto pred = logp.narrow(1, H - 1, W).gather(2, all.unsqueeze(2)).squeeze(2);  // [n, W]
    out[std::int64_t(u)] = pred.sum(1);
  }
  return out;
}

std::map<std::int64_t, float> row_map(const BeamSearchResult& r, std::int64_t b) {
  std::map<std::int64_t, float> m;
  for (std::int64_t k = 0; k < r.items.size(1); ++k) {
    const auto item = r.items[b][k].item<std::int64_t>();
    if (item >= 0) m[item] = r.scores[b][k].item<float>();
  }
  return m;
}

// The set of items each user's constraints ban, computed directly from the lists.
std::set<std::int64_t> history_set(const Histories& lists, std::size_t u, std::int64_t n) {
  std::set<std::int64_t> s;
  for (auto i : lists[u])
    if (i >= 0 && i < n) s.insert(i);
  return s;
}

}  // namespace

TEST_CASE("device trie mirrors the table's trie with vocabulary tokens", "[decoding]") {
  Fixture f;
  const auto N = f.table.num_nodes();
  REQUIRE(f.trie.num_nodes() == N);
  auto first = f.trie.first_child(), count = f.trie.num_children(), edge = f.trie.edge_token();
  auto leaf = f.trie.leaf_item(), items_below = f.trie.item_count(), parent = f.trie.parent();
  std::int64_t depth = 0;
  for (std::int64_t v = 0; v < N; ++v) {
    while (v >= f.trie.depth_begin(depth + 1)) ++depth;
    const auto c = f.table.children(SemanticIdTable::Node(v));
    CHECK(count[v].item<std::int64_t>() == std::int64_t(c.size));
    CHECK(items_below[v].item<std::int64_t>() == f.table.count(SemanticIdTable::Node(v)));
    CHECK(leaf[v].item<std::int64_t>() == f.table.leaf_item(SemanticIdTable::Node(v)));
    for (std::size_t i = 0; i < c.size; ++i) {
      const auto child = c.first + std::int64_t(i);
      CHECK(first[v].item<std::int64_t>() + std::int64_t(i) == child);
      CHECK(parent[child].item<std::int64_t>() == v);
      CHECK(edge[child].item<std::int64_t>() == f.vocab.token(depth, c.tokens[i]));
    }
    CHECK(std::int64_t(c.size) <= f.trie.max_children(depth));
  }
  CHECK(depth == f.trie.id_length());
  // find_items inverts every item's tokens; a non-ID finds nothing.
  auto tokens = f.vocab.all_item_tokens(f.table);
  CHECK(torch::equal(f.trie.find_items(tokens), torch::arange(f.table.num_items(), torch::kLong)));
  auto wrong = tokens.clone();
  wrong.select(1, f.trie.id_length() - 1).fill_(f.vocab.token(f.trie.id_length() - 1, 0) - 1);  // a level-L token
  CHECK((f.trie.find_items(wrong) == -1).all().item<bool>());
}

TEST_CASE("allowed item counts equal per-user counts of non-banned items below each node", "[decoding]") {
  Fixture f;
  std::mt19937 rng(7);
  const auto n = f.table.num_items(), W = f.trie.id_length();
  auto banned = torch::zeros({3, n}, torch::kBool);
  for (int r = 0; r < 3; ++r)
    for (int k = 0; k < 15; ++k) banned[r][std::int64_t(rng() % n)] = true;
  auto counts = functional::allowed_item_counts(f.trie, banned);
  auto ids = f.table.ids();
  for (std::int64_t v = 0; v < f.table.num_nodes(); ++v) {
    // The node's prefix: walk up the parents.
    std::vector<SemanticIdTable::Token> prefix;
    for (auto u = v; u != 0; u = f.trie.parent()[u].item<std::int64_t>()) {
      const auto code = f.vocab.code_of(f.trie.edge_token()[u].item<std::int64_t>()).second;
      prefix.insert(prefix.begin(), SemanticIdTable::Token(code));
    }
    REQUIRE(std::int64_t(prefix.size()) <= W);
    const auto below = f.table.items_with_prefix(prefix);
    for (int r = 0; r < 3; ++r) {
      std::int64_t expected = 0;
      for (auto i : below) expected += !banned[r][i].item<bool>();
      CHECK(counts[r][v].item<std::int32_t>() == expected);
    }
  }
}

TEST_CASE("trie beam step keeps the best allowed children of each beam", "[decoding]") {
  Fixture f;
  const auto V = f.vocab.size();
  torch::manual_seed(3);
  // Two users, three beams at depth 1 (some dead), random log-probabilities.
  auto d1 = f.trie.depth_begin(1);
  auto nodes = torch::tensor({d1, d1 + 1, d1 + 2, d1 + 1, d1, d1}, torch::kLong).view({2, 3});
  auto scores = torch::tensor({-1.0f, -2.0f, -INFINITY, -0.5f, -3.0f, -INFINITY}).view({2, 3});
  auto logp = torch::log_softmax(torch::randn({6, V}) * 3, -1);
  const std::int64_t W = 4;
  auto step = functional::trie_beam_step(f.trie, nodes, scores, logp, 1, W);
  for (std::int64_t b = 0; b < 2; ++b) {
    // Brute force: every (live beam, child) pair.
    std::vector<std::pair<float, std::int64_t>> cand;
    for (std::int64_t w = 0; w < 3; ++w) {
      const auto s = scores[b][w].item<float>();
      if (std::isinf(s)) continue;
      const auto c = f.table.children(SemanticIdTable::Node(nodes[b][w].item<std::int64_t>()));
      for (std::size_t i = 0; i < c.size; ++i) {
        const auto tok = f.vocab.token(1, c.tokens[i]);
        cand.push_back({s + logp[b * 3 + w][tok].item<float>(), c.first + std::int64_t(i)});
      }
    }
    std::sort(cand.begin(), cand.end(), [](auto& x, auto& y) { return x.first > y.first; });
    for (std::int64_t k = 0; k < W; ++k) {
      if (k < std::int64_t(cand.size())) {
        CHECK(step.scores[b][k].item<float>() == Approx(cand[std::size_t(k)].first));
        CHECK(step.nodes[b][k].item<std::int64_t>() == cand[std::size_t(k)].second);
        const auto p = step.parents[b][k].item<std::int64_t>();
        CHECK(f.trie.parent()[step.nodes[b][k].item<std::int64_t>()].item<std::int64_t>() ==
              nodes.view(-1)[p].item<std::int64_t>());
        CHECK(p / 3 == b);
      } else {
        CHECK(std::isinf(step.scores[b][k].item<float>()));
      }
    }
  }
}

TEST_CASE("beam search returns distinct real items, best first, scored as the brute-force reference", "[decoding]") {
  const auto users = GENERATE(1, 7);
  const auto batch = GENERATE(64, 3);
  Fixture f(40, {4, 3, 3}, users, 2);
  BeamSearchOptions opt;
  opt.beam_width = 6;
  opt.top_k = 5;
  opt.batch_size = batch;
  auto r = beam_search(*f.model, f.trie, f.histories, opt);
  REQUIRE(r.items.sizes() == torch::IntArrayRef({users, 5}));
  REQUIRE(r.scores.sizes() == r.items.sizes());
  auto ref = brute_force_scores(*f.model, f.table, f.vocab, f.lists);
  for (std::int64_t b = 0; b < users; ++b) {
    std::set<std::int64_t> seen;
    CHECK(r.counts[b].item<std::int64_t>() == 5);
    for (std::int64_t k = 0; k < 5; ++k) {
      const auto item = r.items[b][k].item<std::int64_t>();
      REQUIRE(item >= 0);
      REQUIRE(item < f.table.num_items());
      CHECK(seen.insert(item).second);
      CHECK(r.scores[b][k].item<float>() == Approx(ref[b][item].item<float>()).margin(1e-4));
      if (k > 0) CHECK(r.scores[b][k].item<float>() <= r.scores[b][k - 1].item<float>());
    }
  }
  CHECK(r.stats.forward_calls == ((users + batch - 1) / batch) * f.trie.id_length());
}

TEST_CASE("cached and uncached beam search return the same items and scores", "[decoding]") {
  const auto constrained = GENERATE(false, true);
  Fixture f(40, {4, 3, 3}, 6, 3);
  ConstraintSet cs;
  if (constrained) cs.add(ExcludeHistory{}).add(DenyItems({0, 1, 2}));
  BeamSearchOptions opt;
  opt.beam_width = 8;
  opt.top_k = 6;
  auto cached = beam_search(*f.model, f.trie, f.histories, opt, cs);
  opt.use_cache = false;
  auto full = beam_search(*f.model, f.trie, f.histories, opt, cs);
  REQUIRE(cached.items.sizes() == full.items.sizes());
  for (std::int64_t b = 0; b < f.B(); ++b) {
    auto a = row_map(cached, b), c = row_map(full, b);
    REQUIRE(a.size() == c.size());
    for (auto& [item, score] : a) {
      REQUIRE(c.count(item) == 1);
      CHECK(score == Approx(c[item]).margin(1e-5));
    }
  }
}

TEST_CASE("history, denied and non-allowed items never appear", "[decoding]") {
  Fixture f(40, {4, 3, 3}, 7, 4);
  const auto n = f.table.num_items();
  const std::vector<ItemIndex> deny{3, 5, 8, 13, 21};
  std::vector<ItemIndex> allow;
  for (ItemIndex i = 0; i < n; i += 2) allow.push_back(i);  // even items only
  const auto which = GENERATE(0, 1, 2, 3);
  ConstraintSet cs;
  if (which == 0) cs.add(ExcludeHistory{});
  if (which == 1) cs.add(ExcludeHistory(f.lists));
  if (which >= 2) cs.add(ExcludeHistory{}).add(DenyItems(deny));
  if (which == 3) cs.add(AllowItems(allow));
  BeamSearchOptions opt;
  opt.beam_width = 10;
  opt.top_k = 8;
  auto r = beam_search(*f.model, f.trie, f.histories, opt, cs);
  for (std::int64_t b = 0; b < f.B(); ++b) {
    const auto hist = history_set(f.lists, std::size_t(b), n);
    std::set<std::int64_t> seen;
    for (std::int64_t k = 0; k < r.items.size(1); ++k) {
      const auto item = r.items[b][k].item<std::int64_t>();
      if (item < 0) continue;
      CHECK(seen.insert(item).second);
      CHECK(hist.count(item) == 0);
      if (which >= 2) CHECK(std::find(deny.begin(), deny.end(), item) == deny.end());
      if (which == 3) CHECK(item % 2 == 0);
    }
    CHECK(r.counts[b].item<std::int64_t>() == std::int64_t(seen.size()));
  }
  // The banned sets are what the constraints say: history from the tokens == from the lists.
  const ConstraintContext ctx{f.trie, f.histories, 0, f.B()};
  auto from_tokens = ConstraintSet().add(ExcludeHistory{}).banned_items(ctx);
  auto from_lists = ConstraintSet().add(ExcludeHistory(f.lists)).banned_items(ctx);
  CHECK(torch::equal(from_tokens, from_lists));
  for (std::int64_t b = 0; b < f.B(); ++b) {
    CHECK(from_tokens[b].sum().item<std::int64_t>() == std::int64_t(history_set(f.lists, std::size_t(b), n).size()));
  }
}

TEST_CASE("with every node kept, beam search equals exact ranking", "[decoding]") {
  const auto constrained = GENERATE(false, true);
  Fixture f(40, {4, 3, 3}, 5, 5);
  const auto n = f.table.num_items();
  ConstraintSet cs;
  if (constrained) cs.add(ExcludeHistory{}).add(DenyItems({7, 9}));
  BeamSearchOptions opt;
  opt.beam_width = n;  // >= the nodes of any depth: nothing is pruned
  opt.top_k = 10;
  auto beam = beam_search(*f.model, f.trie, f.histories, opt, cs);
  auto exact = score_all_items(*f.model, f.trie, f.histories);
  exact.masked_fill_(cs.banned_items({f.trie, f.histories, 0, f.B()}), -INFINITY);
  auto top = exact.topk(10, 1);
  for (std::int64_t b = 0; b < f.B(); ++b) {
    for (std::int64_t k = 0; k < 10; ++k) {
      CHECK(beam.items[b][k].item<std::int64_t>() == std::get<1>(top)[b][k].item<std::int64_t>());
      CHECK(beam.scores[b][k].item<float>() == Approx(std::get<0>(top)[b][k].item<float>()).margin(1e-4));
    }
  }
  CHECK(beam_exact_agreement(beam.items, exact, 10) == 1.0);
  // A narrow beam on a random model misses some: the agreement is a share, not always 1.
  opt.beam_width = 1;
  opt.top_k = 1;
  auto greedy = beam_search(*f.model, f.trie, f.histories, opt, cs);
  auto agree = beam_exact_agreement(greedy.items, exact, 1);
  CHECK(agree >= 0.0);
  CHECK(agree <= 1.0);
}

TEST_CASE("exact scores equal a brute-force full forward of every item", "[decoding]") {
  const auto max_rows = GENERATE(1, 5, 37, 4096);
  const auto batch = GENERATE(1, 64);
  Fixture f(40, {4, 3, 3}, 4, 6);
  ExactScoringOptions opt;
  opt.max_rows = max_rows;
  opt.batch_size = batch;
  auto exact = score_all_items(*f.model, f.trie, f.histories, opt);
  auto ref = brute_force_scores(*f.model, f.table, f.vocab, f.lists);
  REQUIRE(exact.sizes() == ref.sizes());
  CHECK(torch::allclose(exact, ref, /*rtol=*/0, /*atol=*/1e-4));
  // Probabilities over all IDs sum to at most 1 (the rest goes to tokens off the trie).
  CHECK((exact.exp().sum(1) <= 1.0 + 1e-4).all().item<bool>());
}

TEST_CASE("a user whose every item is banned is an error naming the row", "[decoding]") {
  Fixture f(40, {4, 3, 3}, 5, 7);
  const auto n = f.table.num_items();
  std::vector<ItemIndex> everything(std::size_t(n), 0);
  for (ItemIndex i = 0; i < n; ++i) everything[std::size_t(i)] = i;
  Histories per_user(std::size_t(f.B()));
  per_user[3] = everything;
  BeamSearchOptions opt;
  opt.batch_size = 2;  // row 3 is in the second batch: the message names the global row
  CHECK_THROWS_AS(beam_search(*f.model, f.trie, f.histories, opt, ConstraintSet().add(DenyItems::per_user(per_user))),
                  ValueError);
  CHECK_THROWS_WITH(beam_search(*f.model, f.trie, f.histories, opt, ConstraintSet().add(DenyItems::per_user(per_user))),
                    Contains("user row 3") && Contains("no item satisfies the constraints") &&
                        Contains("DenyItems"));
  CHECK_THROWS_WITH(beam_search(*f.model, f.trie, f.histories, opt, ConstraintSet().add(AllowItems(std::vector<ItemIndex>{}))),
                    Contains("user row 0") && Contains("no item satisfies the constraints"));
  // One item left for row 3: it is returned alone, the row padded with -1.
  per_user[3].pop_back();
  auto r = beam_search(*f.model, f.trie, f.histories, opt, ConstraintSet().add(DenyItems::per_user(per_user)));
  CHECK(r.counts[3].item<std::int64_t>() == 1);
  CHECK(r.items[3][0].item<std::int64_t>() == n - 1);
  CHECK(r.items[3][1].item<std::int64_t>() == -1);
  CHECK(std::isinf(r.scores[3][1].item<float>()));
  CHECK_THROWS_AS(beam_search(*f.model, f.trie, f.histories, opt, ConstraintSet().add(DenyItems({ItemIndex(n)}))),
                  IndexError);
}

TEST_CASE("K larger than the catalog is clamped to the catalog", "[decoding]") {
  Fixture f(12, {3, 2}, 4, 8);
  const auto n = f.table.num_items();
  BeamSearchOptions opt;
  opt.top_k = n + 5;
  opt.beam_width = 2;
  auto r = beam_search(*f.model, f.trie, f.histories, opt);
  REQUIRE(r.items.size(1) == n);
  auto exact = score_all_items(*f.model, f.trie, f.histories);
  for (std::int64_t b = 0; b < f.B(); ++b) {
    auto row = r.items[b].clone();
    CHECK(torch::equal(std::get<0>(row.sort()), torch::arange(n, torch::kLong)));  // every item once
    CHECK(r.counts[b].item<std::int64_t>() == n);
  }
  CHECK(beam_exact_agreement(r.items, exact, n) == 1.0);
  auto excluded = beam_search(*f.model, f.trie, f.histories, opt, ConstraintSet().add(ExcludeHistory{}));
  for (std::int64_t b = 0; b < f.B(); ++b) {
    const auto h = std::int64_t(history_set(f.lists, std::size_t(b), n).size());
    CHECK(excluded.counts[b].item<std::int64_t>() == n - h);
    if (h > 0) CHECK(excluded.items[b][n - 1].item<std::int64_t>() == -1);
  }
}

TEST_CASE("a trie, model or table of another layout is refused naming both layouts", "[decoding]") {
  Fixture a(40, {4, 3, 3}, 3, 9);
  Fixture b(30, {20, 5}, 3, 10);  // vocabulary 27 + index level, a's 12 + index level
  REQUIRE(a.vocab.size() != b.vocab.size());
  CHECK_NOTHROW(a.trie.check_table(a.table));
  CHECK_THROWS_AS(a.trie.check_table(b.table), ValueError);
  CHECK_THROWS_WITH(a.trie.check_table(b.table), Contains(a.trie.layout()) && Contains(b.trie.layout()));
  CHECK_THROWS_WITH(a.trie.check_vocabulary(b.vocab), Contains(a.trie.layout()) && Contains("levels [20, 5,"));
  // A model built for b's vocabulary with a's trie (and histories of b's layout).
  CHECK_THROWS_WITH(beam_search(*b.model, a.trie, b.histories),
                    Contains(a.trie.layout()) && Contains(std::to_string(b.vocab.size()) + " tokens"));
  CHECK_THROWS_WITH(score_all_items(*b.model, a.trie, b.histories),
                    Contains(a.trie.layout()) && Contains(std::to_string(b.vocab.size()) + " tokens"));
  // Same layout, other IDs: the checksum tells them apart.
  auto c = SemanticIdTable::from_codes(a.table.codes().flip(0), {4, 3, 3});  // the same IDs, other items
  REQUIRE(c.codebook_sizes() == a.table.codebook_sizes());
  CHECK_THROWS_WITH(a.trie.check_table(c), Contains("checksum") && Contains(a.trie.layout()));
  // Histories with tokens outside the trie's vocabulary.
  auto bad = a.histories;
  bad.tokens = bad.tokens.clone();
  bad.tokens[0][-1] = a.vocab.size();
  CHECK_THROWS_WITH(beam_search(*a.model, a.trie, bad), Contains("outside the trie's vocabulary"));
}

TEST_CASE("beam search leaves the model's training mode and gradients alone", "[decoding]") {
  Fixture f(20, {3, 3}, 2, 12);
  auto model = random_model(f.vocab, 12, /*dropout=*/0.5);
  model->train();
  auto r1 = beam_search(*model, f.trie, f.histories);
  CHECK(model->is_training());
  model->eval();
  auto r2 = beam_search(*model, f.trie, f.histories);
  CHECK_FALSE(model->is_training());
  CHECK(torch::equal(r1.items, r2.items));  // no dropout inside: eval mode is forced
  CHECK(torch::allclose(r1.scores, r2.scores));
  CHECK_FALSE(r1.scores.requires_grad());
}
