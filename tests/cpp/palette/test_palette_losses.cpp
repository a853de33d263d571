#include <lamia/core/errors.hpp>
#include <lamia/palette/blocks.hpp>
#include <lamia/palette/losses.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

using namespace lamia;

namespace {

// The paper's formulas, term by term, with explicit loops (double precision).
torch::Tensor cosine(const torch::Tensor& a, const torch::Tensor& b) {
  return (a * b).sum() / (a.norm() * b.norm());
}

torch::Tensor intra_by_loops(const torch::Tensor& p, double alpha, bool mean) {
  auto total = torch::zeros({}, p.options());
  std::int64_t pairs = 0;
  for (std::int64_t i = 0; i < p.size(0); ++i)
    for (std::int64_t j = 0; j < p.size(1); ++j)
      for (std::int64_t k = 0; k < p.size(1); ++k) {
        if (j == k) continue;
        total = total + torch::relu(cosine(p[i][j], p[i][k]) - alpha).pow(2);
        ++pairs;
      }
  return mean && pairs > 0 ? total / double(pairs) : total;
}

torch::Tensor inter_by_loops(const torch::Tensor& p, double alpha, bool mean) {
  auto total = torch::zeros({}, p.options());
  std::int64_t pairs = 0;
  for (std::int64_t j = 0; j < p.size(1); ++j)
    for (std::int64_t i = 0; i < p.size(0); ++i)
      for (std::int64_t k = 0; k < p.size(0); ++k) {
        if (i == k) continue;
        total = total + torch::relu(cosine(p[i][j], p[k][j]) - alpha).pow(2);
        ++pairs;
      }
  return mean && pairs > 0 ? total / double(pairs) : total;
}

}  // namespace

TEST_CASE("contrastive losses equal the paper's sums, values and gradients", "[palette][losses]") {
  const std::int64_t B = GENERATE(1, 2, 5);
  const std::int64_t L = GENERATE(1, 3, 4);
  const bool mean = GENERATE(true, false);
  torch::manual_seed(B * 100 + L);
  // A shared direction makes many similarities exceed the margins, so the hinge is active.
  auto base = torch::randn({1, 1, 8}, torch::kFloat64);
  auto p0 = (torch::randn({B, L, 8}, torch::kFloat64) + 1.5 * base);
  const auto red = mean ? Reduction::kMean : Reduction::kSum;
  for (int which = 0; which < 2; ++which) {
    auto p = p0.clone().requires_grad_(true);
    auto q = p0.clone().requires_grad_(true);
    torch::Tensor got, want;
    if (which == 0) {
      got = functional::intra_palette_loss(p, 0.1, red);
      want = intra_by_loops(q, 0.1, mean);
    } else {
      got = functional::inter_palette_loss(p, 0.25, red);
      want = inter_by_loops(q, 0.25, mean);
    }
    REQUIRE(got.dim() == 0);
    CHECK(std::isfinite(got.item<double>()));
    CHECK(got.item<double>() == Approx(want.item<double>()).epsilon(1e-10).margin(1e-12));
    got.backward();
    if (want.requires_grad()) want.backward();
    auto gq = q.grad().defined() ? q.grad() : torch::zeros_like(q);
    REQUIRE(p.grad().defined());
    CHECK(torch::allclose(p.grad(), gq, 1e-9, 1e-12));
  }
}

TEST_CASE("no pairs give a zero loss with a zero gradient, never NaN", "[palette][losses]") {
  auto one_item = torch::randn({1, 4, 16}).requires_grad_(true);
  auto inter = functional::inter_palette_loss(one_item);
  CHECK(inter.item<float>() == 0.0f);
  inter.backward();
  CHECK(one_item.grad().abs().sum().item<float>() == 0.0f);
  auto one_position = torch::randn({3, 1, 16});
  CHECK(functional::intra_palette_loss(one_position).item<float>() == 0.0f);
  CHECK(functional::intra_palette_loss(one_position, 0.1, Reduction::kSum).item<float>() == 0.0f);
}

TEST_CASE("identical palettes hit the hinge at (1 - alpha)^2 per pair", "[palette][losses]") {
  auto p = torch::ones({3, 4, 5});
  CHECK(functional::intra_palette_loss(p, 0.1).item<double>() == Approx(0.81));
  CHECK(functional::inter_palette_loss(p, 0.25).item<double>() == Approx(0.5625));
  CHECK(functional::intra_palette_loss(p, 0.1, Reduction::kSum).item<double>() == Approx(0.81 * 3 * 4 * 3));
  CHECK(functional::inter_palette_loss(p, 0.25, Reduction::kSum).item<double>() == Approx(0.5625 * 4 * 3 * 2));
  // Orthogonal palette positions are below the margin: no intra loss.
  auto eye = torch::eye(4).unsqueeze(0).repeat({2, 1, 1});
  CHECK(functional::intra_palette_loss(eye).item<double>() == 0.0);
}

TEST_CASE("palette size 0 and bad shapes are clear errors", "[palette][losses]") {
  CHECK_THROWS_WITH(functional::intra_palette_loss(torch::zeros({2, 0, 4})), Catch::Contains("L = 0"));
  CHECK_THROWS_WITH(functional::inter_palette_loss(torch::zeros({2, 0, 4})), Catch::Contains("L = 0"));
  CHECK_THROWS_AS(functional::intra_palette_loss(torch::zeros({2, 4})), c10::ValueError);
  CHECK_THROWS_AS(functional::inter_palette_loss(torch::zeros({2, 3, 4}, torch::kInt64)), c10::ValueError);
  CHECK_THROWS_AS(parse_reduction("avg"), ValueError);
  CHECK(parse_reduction("sum") == Reduction::kSum);
  CHECK(parse_contrastive_mode("intra") == ContrastiveMode::kIntraOnly);
  CHECK_THROWS_AS(parse_contrastive_mode("none"), ValueError);
}

TEST_CASE("generation loss is cross-entropy over labelled tokens only", "[palette][losses]") {
  torch::manual_seed(3);
  auto logits = torch::randn({2, 5, 7}, torch::kFloat64);
  auto labels = torch::full({2, 5}, kIgnoreLabel, torch::kInt64);
  labels[0][1] = 3;
  labels[0][2] = 0;
  labels[1][4] = 6;
  auto lp = torch::log_softmax(logits, -1);
  const double want_sum = -(lp[0][1][3] + lp[0][2][0] + lp[1][4][6]).item<double>();
  CHECK(functional::generation_loss(logits, labels, Reduction::kSum).item<double>() == Approx(want_sum));
  CHECK(functional::generation_loss(logits, labels).item<double>() == Approx(want_sum / 3));
  auto none = torch::full({2, 5}, kIgnoreLabel, torch::kInt64);
  CHECK(functional::generation_loss(logits, none).item<double>() == 0.0);
  CHECK_THROWS_AS(functional::generation_loss(logits, labels.slice(1, 0, 4)), c10::ValueError);
}

TEST_CASE("the total is L_gen + gamma (intra + inter) with the selected terms", "[palette][losses]") {
  torch::manual_seed(5);
  auto logits = torch::randn({2, 3, 5});
  auto labels = torch::randint(0, 5, {2, 3}, torch::kInt64);
  auto palettes = torch::randn({2, 4, 6}) + 2.0;
  PaletteLoss loss(PaletteLossOptions{});
  auto parts = loss(logits, labels, palettes);
  const double g = parts.generation.item<double>(), a = parts.intra.item<double>(), e = parts.inter.item<double>();
  CHECK(a > 0);
  CHECK(e > 0);
  CHECK(parts.total.item<double>() == Approx(g + 0.1 * (a + e)));
  loss->options.contrastive(ContrastiveMode::kIntraOnly);
  CHECK(loss(logits, labels, palettes).total.item<double>() == Approx(g + 0.1 * a));
  loss->options.contrastive(ContrastiveMode::kInterOnly).gamma(0.5);
  CHECK(loss(logits, labels, palettes).total.item<double>() == Approx(g + 0.5 * e));
  loss->options.contrastive(ContrastiveMode::kOff);
  CHECK(loss(logits, labels, palettes).total.item<double>() == Approx(g));
  IntraPaletteLoss intra(0.1);
  InterPaletteLoss inter(0.25, Reduction::kSum);
  CHECK(intra(palettes).item<double>() == Approx(a));
  CHECK(inter(palettes).item<double>() == Approx(e * 4 * 2));
}

TEST_CASE("batch-centred intra loss is the paper's intra loss on centred palettes", "[palette][losses]") {
  torch::manual_seed(11);
  auto p = torch::randn({5, 3, 8}, torch::kFloat64) + 2.0;
  auto centred = p - p.mean(0, true);
  CHECK(functional::intra_palette_loss(p, 0.1, Reduction::kMean, IntraCentring::kBatch).item<double>() ==
        Approx(intra_by_loops(centred, 0.1, true).item<double>()));
  // A per-position offset satisfies the raw loss but not the centred one: positions that are
  // offsets of one shared item-dependent vector.
  auto shared = torch::randn({64, 1, 8}, torch::kFloat64);
  auto offsets = 100.0 * torch::eye(8, torch::kFloat64).slice(0, 0, 3).unsqueeze(0);  // [1, 3, 8]
  auto shifted = shared + offsets;
  CHECK(functional::intra_palette_loss(shifted).item<double>() < 0.01);
  CHECK(functional::intra_palette_loss(shifted, 0.1, Reduction::kMean, IntraCentring::kBatch).item<double>() ==
        Approx(0.81).epsilon(1e-6));  // centred positions are identical: cos 1, (1 - 0.1)^2
}

TEST_CASE("decorrelation loss: identical positions are penalised, independent ones are not", "[palette][losses]") {
  torch::manual_seed(13);
  const std::int64_t B = 4000, D = 4;
  // Identical positions whose dimensions are one variable: every correlation is 1, the maximum D.
  auto rank_one = torch::randn({B, 1, 1}, torch::kFloat64).expand({B, 3, D});
  CHECK(functional::decorrelation_loss(rank_one).item<double>() == Approx(double(D)).epsilon(1e-5));
  // Identical positions with independent dimensions: C_ij ~ identity, ||C||^2 / D ~ 1.
  auto copy = torch::randn({B, 1, D}, torch::kFloat64).expand({B, 3, D});
  CHECK(functional::decorrelation_loss(copy).item<double>() == Approx(1.0).epsilon(0.01));
  // Independent positions: about D / B (sampling noise only).
  auto independent = torch::randn({B, 3, D}, torch::kFloat64);
  CHECK(functional::decorrelation_loss(independent).item<double>() < 5.0 * D / B);
  // Invariant to a per-position offset and scale (what K-Means cannot see either).
  auto moved = independent * torch::tensor({1.0, 3.0, 0.5}, torch::kFloat64).view({1, 3, 1}) + 7.0;
  CHECK(functional::decorrelation_loss(moved).item<double>() ==
        Approx(functional::decorrelation_loss(independent).item<double>()).epsilon(1e-4));
  // The sum is the mean times L (L - 1) D.
  CHECK(functional::decorrelation_loss(copy, Reduction::kSum).item<double>() ==
        Approx(functional::decorrelation_loss(copy).item<double>() * 3 * 2 * D));
}

TEST_CASE("decorrelation loss equals its definition, by loops, with gradients", "[palette][losses]") {
  torch::manual_seed(17);
  auto p0 = torch::randn({6, 3, 5}, torch::kFloat64);
  p0.select(1, 2).copy_(p0.select(1, 0) * 0.7 + 0.3 * p0.select(1, 2));  // correlated positions
  auto p = p0.clone().requires_grad_(true);
  auto q = p0.clone().requires_grad_(true);
  auto got = functional::decorrelation_loss(p);
  auto want = torch::zeros({}, torch::kFloat64);
  auto standardised = [&](const torch::Tensor& x) {  // x [B, D]
    auto c = x - x.mean(0, true);
    return c / (c.pow(2).mean(0, true) + kDecorrelationEps).sqrt();
  };
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t j = 0; j < 3; ++j) {
      if (i == j) continue;
      auto c = torch::mm(standardised(q.select(1, i)).t(), standardised(q.select(1, j))) / 6.0;
      want = want + c.pow(2).sum();
    }
  want = want / (3 * 2 * 5);
  CHECK(got.item<double>() == Approx(want.item<double>()).epsilon(1e-10));
  got.backward();
  want.backward();
  CHECK(torch::allclose(p.grad(), q.grad(), 1e-9, 1e-12));
}

TEST_CASE("decorrelation loss: no pairs give 0 and a zero gradient, never NaN", "[palette][losses]") {
  for (auto shape : {std::vector<std::int64_t>{1, 4, 3}, std::vector<std::int64_t>{5, 1, 3}}) {
    auto p = torch::randn(shape, torch::kFloat64).requires_grad_(true);
    auto d = functional::decorrelation_loss(p);
    CHECK(d.item<double>() == 0.0);
    d.backward();
    CHECK(p.grad().abs().sum().item<double>() == 0.0);
  }
  // A constant dimension is standardised to 0 (variance floor), not NaN.
  auto constant = torch::ones({4, 2, 3}, torch::kFloat64);
  CHECK(functional::decorrelation_loss(constant).item<double>() == 0.0);
}

TEST_CASE("the total adds decorrelation_weight times the decorrelation penalty", "[palette][losses]") {
  torch::manual_seed(19);
  auto logits = torch::randn({2, 3, 5}, torch::kFloat64);
  auto labels = torch::randint(0, 5, {2, 3}, torch::kInt64);
  auto palettes = torch::randn({6, 4, 3}, torch::kFloat64);
  PaletteLoss loss(PaletteLossOptions{});
  auto paper = loss(logits, labels, palettes);
  CHECK(paper.decorrelation.item<double>() > 0);  // reported with weight 0
  CHECK(paper.total.item<double>() ==
        palette_total_loss(loss->options, paper.generation.item<double>(), paper.intra.item<double>(),
                           paper.inter.item<double>(), paper.decorrelation.item<double>()));
  loss->options.decorrelation_weight(2.5).intra_centring(IntraCentring::kBatch);
  auto ours = loss(logits, labels, palettes);
  CHECK(ours.intra.item<double>() ==
        Approx(functional::intra_palette_loss(palettes, 0.1, Reduction::kMean, IntraCentring::kBatch).item<double>()));
  CHECK(ours.total.item<double>() ==
        Approx(ours.generation.item<double>() + 0.1 * (ours.intra.item<double>() + ours.inter.item<double>()) +
               2.5 * ours.decorrelation.item<double>()));
  CHECK(palette_total_loss(loss->options, 1.0, 0.5, 0.25, 2.0) == Approx(1.0 + 0.1 * 0.75 + 2.5 * 2.0));
}

// Data-parallel training (docs/distributed.md): the terms' value as combine() computes it, their
// gradient (through the palettes) times grad_scale, the generation loss's gradient unscaled.
TEST_CASE("combine_scaled keeps the value and scales the terms' gradient", "[palette][losses]") {
  torch::manual_seed(23);
  auto palettes = torch::randn({5, 3, 4}, torch::kFloat64).requires_grad_(true);
  auto generation_input = torch::tensor(1.5, torch::kFloat64).requires_grad_(true);
  PaletteLoss loss(PaletteLossOptions().gamma(0.5).decorrelation_weight(0.3).intra_centring(IntraCentring::kBatch));
  auto gradients = [&](double scale) {
    auto generation = generation_input * 2;
    auto parts = scale < 0 ? loss->combine(generation, palettes) : loss->combine_scaled(generation, palettes, scale);
    palettes.mutable_grad() = torch::Tensor();
    generation_input.mutable_grad() = torch::Tensor();
    parts.total.backward();
    return std::tuple{parts, palettes.grad().clone(), generation_input.grad().clone()};
  };
  const auto [plain, plain_grad, plain_gen_grad] = gradients(-1);
  const auto [same, same_grad, same_gen_grad] = gradients(1.0);
  const auto [scaled, scaled_grad, scaled_gen_grad] = gradients(3.0);
  const auto [zero, zero_grad, zero_gen_grad] = gradients(0.0);
  CHECK(plain_grad.abs().max().item<double>() > 0);
  for (const auto* p : {&same, &scaled, &zero}) {
    CHECK(p->total.item<double>() == Approx(plain.total.item<double>()).epsilon(1e-15));
    CHECK(p->intra.item<double>() == plain.intra.item<double>());
    CHECK(p->inter.item<double>() == plain.inter.item<double>());
    CHECK(p->decorrelation.item<double>() == plain.decorrelation.item<double>());
  }
  CHECK(torch::allclose(same_grad, plain_grad, 1e-12, 1e-14));
  CHECK(torch::allclose(scaled_grad, 3.0 * plain_grad, 1e-12, 1e-14));
  CHECK(zero_grad.abs().max().item<double>() == 0.0);
  for (const auto& g : {same_gen_grad, scaled_gen_grad, zero_gen_grad})
    CHECK(g.item<double>() == plain_gen_grad.item<double>());
  CHECK_THROWS_AS(loss->combine_scaled(generation_input, palettes, -1.0), c10::ValueError);
}
