#include "palette/palette_fixture.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/nn/kernel_policy.hpp>
#include <lamia/palette.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <map>

using namespace lamia;

namespace {

std::vector<SampleLayout> mixed_samples(const PaletteSetup& s) {
  // Items repeat across tasks (one pass-1 row serves several samples), lengths vary.
  std::vector<std::pair<ItemIndex, std::int64_t>> spec = {{0, 0}, {1, 3}, {0, 2}, {2, 1}, {3, 0}, {1, 1}, {4, 3}};
  std::vector<SampleLayout> out;
  for (auto [item, task] : spec) out.push_back(make_sample(s.catalog, item, task, s.encoder->tokens()));
  return out;
}

std::map<std::string, torch::Tensor> gradients(PaletteEncoderImpl& enc) {
  std::map<std::string, torch::Tensor> g;
  for (const auto& p : enc.named_parameters()) {
    g[p.key()] = p.value().grad().defined() ? p.value().grad().clone() : torch::zeros_like(p.value());
  }
  return g;
}

}  // namespace

TEST_CASE("fast and reference paths agree: loss, palettes and every gradient", "[palette][encoder]") {
  const std::int64_t L = GENERATE(1, 3);
  const std::int64_t embed_dim = GENERATE(0, 16);  // 0: E = D; 16: project_in / project_out
  const auto mode = GENERATE(ContrastiveMode::kBoth, ContrastiveMode::kOff);
  const auto reduction = GENERATE(Reduction::kMean, Reduction::kSum);
  auto catalog = testing::tiny_catalog(6);
  auto model = testing::tiny_model(32, /*dropout=*/0.1);
  PaletteEncoderOptions opt(4, 2);
  opt.palette_size(L).losses(PaletteLossOptions().contrastive(mode).reduction(reduction));
  PaletteSetup s;
  if (embed_dim == 0) {
    s = make_palette_setup_from_scratch(catalog, opt, model);
  } else {
    // make_palette_setup_from_scratch has no E option: build the same way by hand.
    s = make_palette_setup_from_scratch(catalog, opt, model);
    torch::manual_seed(1);
    Decoder d(DecoderOptions(s.encoder->decoder->options()).word_embed_proj_dim(embed_dim));
    s.encoder = PaletteEncoder(opt, d, s.encoder->tokens());
  }
  s.encoder->eval();  // dropout off: both paths must be the same function
  auto batch = collate_samples(mixed_samples(s), s.encoder->tokens());
  REQUIRE(batch.num_items() == 5);

  auto fast = s.encoder->forward(batch, PalettePath::kFast);
  fast.loss.backward();
  auto g_fast = gradients(*s.encoder);
  s.encoder->zero_grad();
  auto ref = s.encoder->forward(batch, PalettePath::kReference);
  ref.loss.backward();
  auto g_ref = gradients(*s.encoder);

  CHECK(fast.palettes.sizes() == torch::IntArrayRef({5, L, embed_dim == 0 ? 32 : embed_dim}));
  CHECK(torch::allclose(fast.palettes, ref.palettes, 1e-5, 1e-5));
  CHECK(fast.loss.item<double>() == Approx(ref.loss.item<double>()).epsilon(1e-5));
  CHECK(fast.generation_loss.item<double>() == Approx(ref.generation_loss.item<double>()).epsilon(1e-5));
  CHECK(fast.intra_loss.item<double>() == Approx(ref.intra_loss.item<double>()).epsilon(1e-4).margin(1e-7));
  CHECK(fast.inter_loss.item<double>() == Approx(ref.inter_loss.item<double>()).epsilon(1e-4).margin(1e-7));
  CHECK(fast.label_tokens == ref.label_tokens);
  CHECK(fast.correct_tokens == ref.correct_tokens);
  REQUIRE(g_fast.size() == g_ref.size());
  std::int64_t nonzero = 0;
  for (const auto& [name, gf] : g_fast) {
    const auto& gr = g_ref.at(name);
    const double scale = std::max(1e-3, gr.abs().max().item<double>());
    const double diff = (gf - gr).abs().max().item<double>();
    if (diff > 1e-4 * scale + 1e-6) FAIL_CHECK("gradient of " << name << " differs by " << diff << " (scale " << scale << ")");
    if (gr.abs().sum().item<double>() > 0) ++nonzero;
  }
  CHECK(nonzero > static_cast<std::int64_t>(g_fast.size()) / 2);
}

TEST_CASE("every kernel policy gives both paths the default's loss, palettes and gradients", "[palette][encoder]") {
  // Packed or padded, lamia's attention or the fused one (LibTorch >= 2.1): how, never what.
  struct Restore {
    KernelPolicy before = kernel_policy();
    ~Restore() { set_kernel_policy(before); }
  } restore;
  const auto path = GENERATE(PalettePath::kFast, PalettePath::kReference);
  auto s = make_palette_setup_from_scratch(testing::tiny_catalog(6), PaletteEncoderOptions(4, 2).palette_size(3),
                                           testing::tiny_model(32, /*dropout=*/0.0));
  s.encoder->to(torch::kFloat64);
  auto batch = collate_samples(mixed_samples(s), s.encoder->tokens());
  auto run = [&](const KernelPolicy& policy) {
    set_kernel_policy(policy);
    s.encoder->zero_grad();
    auto out = s.encoder->forward(batch, path);
    out.loss.backward();
    return std::pair{out, gradients(*s.encoder)};
  };
  const auto [base, g_base] = run(KernelPolicy{});
  std::vector<KernelPolicy> others;
  for (bool pack : {true, false})
    for (bool fused : {false, true})
      if ((!pack || fused) && (!fused || fused_attention_available())) others.push_back({pack, fused});
  REQUIRE(others.size() == (fused_attention_available() ? 3u : 1u));
  for (const auto& policy : others) {
    INFO("pack_padding " << policy.pack_padding << ", fused_attention " << policy.fused_attention);
    const auto [out, g] = run(policy);
    CHECK(out.loss.item<double>() == Approx(base.loss.item<double>()).epsilon(1e-10));
    CHECK(torch::allclose(out.palettes, base.palettes, 1e-10, 1e-10));
    CHECK(out.correct_tokens == base.correct_tokens);
    for (const auto& [name, gb] : g_base) {
      const double diff = (g.at(name) - gb).abs().max().item<double>();
      if (diff > 1e-10 * std::max(1.0, gb.abs().max().item<double>())) {
        FAIL_CHECK("gradient of " << name << " differs by " << diff);
      }
    }
  }
}

TEST_CASE("the task loss reaches pass 1 only through the palette", "[palette][encoder]") {
  auto catalog = testing::tiny_catalog(4);
  PaletteEncoderOptions opt(4, 2);
  opt.losses(PaletteLossOptions().contrastive(ContrastiveMode::kOff));
  auto s = make_palette_setup_from_scratch(catalog, opt, testing::tiny_model());
  s.encoder->eval();
  const auto& t = s.encoder->tokens();
  auto batch = collate_samples({make_sample(s.catalog, 0, 3, t), make_sample(s.catalog, 1, 2, t)}, t);
  auto out = s.encoder->forward(batch);
  out.loss.backward();
  auto g = s.encoder->decoder->embed_tokens_->weight.grad();
  REQUIRE(g.defined());
  // LaP embeddings and content tokens only enter pass 1; their gradient comes through the palette.
  for (auto id : t.lap) CHECK(g[id].abs().sum().item<double>() > 0);
  CHECK(g[s.catalog.items[0].content[0]].abs().sum().item<double>() > 0);
  // LdP embeddings are replaced by the palette: their rows get gradient only from the tied LM head,
  // which an untied copy of the same model shows.

  // The LdP ids do not matter, the content does.
  auto swapped = batch;
  swapped.decode.input_ids = batch.decode.input_ids.clone();
  swapped.decode.input_ids.slice(1, 0, t.palette_size()).fill_(t.eos);
  torch::NoGradGuard no_grad;
  CHECK(s.encoder->forward(swapped).loss.item<double>() == Approx(out.loss.item<double>()).epsilon(1e-6));
  auto other = batch;
  other.encode.input_ids = batch.encode.input_ids.clone();
  other.encode.input_ids[0][0] = t.task[0];
  CHECK(std::abs(s.encoder->forward(other).loss.item<double>() - out.loss.item<double>()) > 1e-6);
}

TEST_CASE("encode returns the palettes forward computes, for any L up to 16", "[palette][encoder]") {
  const std::int64_t L = GENERATE(1, 4, 16);
  auto catalog = testing::tiny_catalog(5);
  PaletteEncoderOptions opt(4, GENERATE(1, 4));
  opt.palette_size(L);
  auto s = make_palette_setup_from_scratch(catalog, opt, testing::tiny_model());
  s.encoder->eval();
  const auto& t = s.encoder->tokens();
  CHECK(t.palette_size() == L);
  CHECK(t.num_tasks() == 4);
  CHECK(s.tokenizer->token_to_id("<LaP_1>") == t.lap[0]);
  CHECK(s.tokenizer->token_to_id("<task_category>") == t.task[3]);
  CHECK(s.encoder->decoder->options().vocab_size() == static_cast<std::int64_t>(s.tokenizer->vocab_size()));
  torch::NoGradGuard no_grad;
  auto samples = std::vector<SampleLayout>{make_sample(s.catalog, 2, 0, t), make_sample(s.catalog, 4, 1, t)};
  auto out = s.encoder->forward(collate_samples(samples, t));
  auto enc = s.encoder->encode(collate_items(s.catalog, {2, 4}, t));
  CHECK(torch::allclose(out.palettes, enc, 1e-5, 1e-6));
  CHECK(std::isfinite(out.loss.item<double>()));
  auto all = encode_items(*s.encoder, s.catalog, {0, 1, 2, 3, 4}, 2);
  CHECK(torch::allclose(all.slice(0, 2, 3), enc.slice(0, 0, 1), 1e-5, 1e-6));
}

TEST_CASE("palette options and tokens are checked", "[palette][encoder]") {
  auto catalog = testing::tiny_catalog(3);
  CHECK_THROWS_WITH(make_palette_setup_from_scratch(catalog, PaletteEncoderOptions(4, 2).palette_size(0), testing::tiny_model()),
                    Catch::Contains("palette_size (L) must be in [1, 16], got 0"));
  CHECK_THROWS_AS(make_palette_setup_from_scratch(catalog, PaletteEncoderOptions(4, 2).palette_size(17), testing::tiny_model()),
                  ValueError);
  CHECK_THROWS_WITH(make_palette_setup_from_scratch(catalog, PaletteEncoderOptions(4, 5), testing::tiny_model()),
                    Catch::Contains("num_content_attributes (r)"));
  CHECK_THROWS_WITH(make_palette_setup_from_scratch(catalog, PaletteEncoderOptions(3, 2), testing::tiny_model()),
                    Catch::Contains("4 attributes"));
  auto s = make_palette_setup_from_scratch(catalog, PaletteEncoderOptions(4, 2), testing::tiny_model());
  auto t = s.encoder->tokens();
  CHECK_THROWS_WITH(PaletteEncoder(PaletteEncoderOptions(4, 2).palette_size(3), s.encoder->decoder, t),
                    Catch::Contains("L = 3"));
  auto bad = t;
  bad.lap[0] = 1 << 20;
  CHECK_THROWS_WITH(PaletteEncoder(PaletteEncoderOptions(4, 2), s.encoder->decoder, bad),
                    Catch::Contains("outside the decoder's vocabulary"));
  // The reference path needs the full layout.
  auto batch = collate_samples({make_sample(s.catalog, 0, 0, t)}, t, /*with_full=*/false);
  CHECK_THROWS_AS(s.encoder->forward(batch, PalettePath::kReference), c10::ValueError);
}

TEST_CASE("clone gives an independent encoder with equal outputs", "[palette][encoder]") {
  auto catalog = testing::tiny_catalog(3);
  auto s = make_palette_setup_from_scratch(catalog, PaletteEncoderOptions(4, 2), testing::tiny_model());
  s.encoder->eval();
  auto copy = std::dynamic_pointer_cast<PaletteEncoderImpl>(s.encoder->clone());
  REQUIRE(copy);
  torch::NoGradGuard no_grad;
  auto b = collate_items(s.catalog, {0, 1, 2}, s.encoder->tokens());
  CHECK(torch::allclose(copy->encode(b), s.encoder->encode(b)));
  copy->decoder->embed_tokens_->weight.add_(1.0);
  CHECK_FALSE(torch::allclose(copy->encode(b), s.encoder->encode(b)));
}
