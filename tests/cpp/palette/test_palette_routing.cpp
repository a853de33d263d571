// The positive control of issue 11 (TaskRouting::kOnePosition): the mask cell by cell against the
// sample geometry, and the encoder's gradients, which must reach only the routed palette position.
#include "palette/palette_fixture.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/palette.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <random>

using namespace lamia;

namespace {

// Written from the layout [content c][LaP L][LdP L][task t] and the rule "task i reads LdP_(i mod
// L), LdP reads only itself", not from block-type ids.
bool routed_may_attend(std::int64_t c, std::int64_t L, std::int64_t n, std::int64_t task, std::int64_t q,
                       std::int64_t k) {
  if (q >= n || k >= n) return false;  // padding
  auto region = [&](std::int64_t x) { return x < c ? 0 : x < c + L ? 1 : x < c + 2 * L ? 2 : 3; };
  const int rq = region(q), rk = region(k);
  switch (rq) {
    case 0: return rk == 0 && k <= q;
    case 1: return rk == 0 || (rk == 1 && k <= q);
    case 2: return k == q;
    default: return (rk == 3 && k <= q) || (rk == 2 && k - (c + L) == task % L);
  }
}

}  // namespace

TEST_CASE("one_position routing: the mask cell by cell on random layouts", "[palette][mask][routing]") {
  std::mt19937 rng(99);
  for (int trial = 0; trial < 30; ++trial) {
    const std::int64_t L = 1 + static_cast<std::int64_t>(rng() % 5);
    const std::int64_t m = 1 + static_cast<std::int64_t>(rng() % 7);
    auto tokens = testing::make_tokens(L, m);
    const int B = 1 + static_cast<int>(rng() % 4);
    std::vector<SampleLayout> samples;
    std::vector<std::int64_t> tasks;
    for (int r = 0; r < B; ++r) {
      std::vector<PaletteTokenId> content(1 + rng() % 7, 50), answer(rng() % 5, 60);
      tasks.push_back(static_cast<std::int64_t>(rng() % m));
      samples.push_back(build_sample(content, answer, tasks.back(), tokens, r));
    }
    auto b = collate_samples(samples, tokens);
    auto task_tensor = torch::tensor(tasks, torch::kInt64);
    auto full = palette_attention_mask(b.full.block_types, TaskRouting::kOnePosition, task_tensor);
    auto M = full.accessor<bool, 3>();
    for (int r = 0; r < B; ++r) {
      const auto& s = samples[r];
      for (std::int64_t q = 0; q < b.full.length(); ++q)
        for (std::int64_t k = 0; k < b.full.length(); ++k) {
          const bool want = routed_may_attend(s.content_length, L, s.size(), tasks[r], q, k);
          if (M[r][q][k] != want)
            FAIL_CHECK("L " << L << " task " << tasks[r] << " row " << r << " query " << q << " key " << k << ": mask "
                            << M[r][q][k] << ", expected " << want);
        }
    }
    // The decode segment ([LdP; task], LdP_j at column j) gets the same cells.
    auto dec = palette_attention_mask(b.decode.block_types, TaskRouting::kOnePosition, task_tensor);
    auto D = dec.accessor<bool, 3>();
    for (int r = 0; r < B; ++r) {
      const auto& s = samples[r];
      const auto n = L + s.task_length;  // LdP_1 at column 0: the layout with c = -L
      for (std::int64_t q = 0; q < b.decode.length(); ++q)
        for (std::int64_t k = 0; k < b.decode.length(); ++k)
          if (D[r][q][k] != routed_may_attend(-L, L, n, tasks[r], q, k))
            FAIL_CHECK("decode L " << L << " task " << tasks[r] << " row " << r << " query " << q << " key " << k);
    }
    // The content and LaP rows are the paper's: the encode segment is unchanged by the routing.
    CHECK(palette_attention_mask(b.encode.block_types, TaskRouting::kOnePosition,
                                 torch::zeros({b.encode.rows()}, torch::kInt64))
              .equal(palette_attention_mask(b.encode.block_types)));
  }
}

TEST_CASE("one_position routing needs the sample tasks", "[palette][mask][routing]") {
  auto tokens = testing::make_tokens(2, 3);
  auto b = collate_samples({build_sample({5, 6}, {7}, 2, tokens, 0)}, tokens);
  CHECK_THROWS_WITH(palette_attention_mask(b.full.block_types, TaskRouting::kOnePosition, torch::Tensor()),
                    Catch::Contains("sample_tasks"));
  CHECK_THROWS_AS(palette_attention_mask(b.full.block_types, TaskRouting::kOnePosition, torch::zeros({2}, torch::kInt64)),
                  c10::ValueError);
  // kAll ignores the tasks: the paper's mask.
  CHECK(palette_attention_mask(b.full.block_types, TaskRouting::kAll, torch::Tensor())
            .equal(palette_attention_mask(b.full.block_types)));
}

// The fast path (palettes feed pass 2 directly); the reference path computes the same function
// (next test).
TEST_CASE("one_position routing: task i's loss reaches only palette position i mod L", "[palette][encoder][routing]") {
  const auto path = PalettePath::kFast;
  auto catalog = testing::tiny_catalog(5);
  PaletteEncoderOptions opt(4, 2);
  const std::int64_t L = 3;
  opt.palette_size(L).task_routing(TaskRouting::kOnePosition);
  opt.losses(PaletteLossOptions().contrastive(ContrastiveMode::kOff));
  auto s = make_palette_setup_from_scratch(catalog, opt, testing::tiny_model());
  s.encoder->eval();
  const auto& t = s.encoder->tokens();
  for (std::int64_t task = 0; task < 4; ++task) {
    auto batch = collate_samples({make_sample(s.catalog, 0, task, t), make_sample(s.catalog, 1, task, t)}, t);
    auto out = s.encoder->forward(batch, path);
    auto grad = torch::autograd::grad({out.generation_loss}, {out.palettes})[0];  // [U, L, E]
    for (std::int64_t j = 0; j < L; ++j) {
      const double g = grad.select(1, j).abs().sum().item<double>();
      INFO("task " << task << " position " << j);
      if (j == task % L) CHECK(g > 0);
      else CHECK(g == 0);
    }
  }
  // The paper's routing lets every task reach every position.
  s.encoder->options().task_routing(TaskRouting::kAll);
  auto batch = collate_samples({make_sample(s.catalog, 0, 1, t)}, t);
  auto out = s.encoder->forward(batch, path);
  auto grad = torch::autograd::grad({out.generation_loss}, {out.palettes})[0];
  for (std::int64_t j = 0; j < L; ++j) CHECK(grad.select(1, j).abs().sum().item<double>() > 0);
}

TEST_CASE("one_position routing: fast and reference paths agree", "[palette][encoder][routing]") {
  auto catalog = testing::tiny_catalog(6);
  PaletteEncoderOptions opt(4, 2);
  opt.palette_size(3).task_routing(TaskRouting::kOnePosition);
  auto s = make_palette_setup_from_scratch(catalog, opt, testing::tiny_model());
  s.encoder->eval();
  const auto& t = s.encoder->tokens();
  std::vector<SampleLayout> samples;
  for (auto [item, task] : std::vector<std::pair<ItemIndex, std::int64_t>>{{0, 0}, {1, 3}, {0, 2}, {2, 1}, {3, 0}})
    samples.push_back(make_sample(s.catalog, item, task, t));
  auto batch = collate_samples(samples, t);
  auto fast = s.encoder->forward(batch, PalettePath::kFast);
  auto ref = s.encoder->forward(batch, PalettePath::kReference);
  CHECK(fast.loss.item<double>() == Approx(ref.loss.item<double>()).epsilon(1e-5));
  CHECK(torch::allclose(fast.palettes, ref.palettes, 1e-5, 1e-5));
  // And the routing changes the function: the paper's mask gives another generation loss.
  s.encoder->options().task_routing(TaskRouting::kAll);
  auto paper = s.encoder->forward(batch, PalettePath::kFast);
  CHECK(std::abs(paper.generation_loss.item<double>() - fast.generation_loss.item<double>()) > 1e-6);
}
