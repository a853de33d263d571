// The shared-prefix decoding step (src/recommend/shared_prefix_step.hpp, beam search's cached path)
// against an independent reference: a plain full forward of each beam's unpadded [history + generated
// tokens] (default positions, causal mask), log_softmax at the last position.
#include <lamia/nn/decoder.hpp>
#include <lamia/nn/lora.hpp>
#include <lamia/ids/code_vocabulary.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <random>
#include <string>
#include <vector>

#include "../../../src/recommend/shared_prefix_step.hpp"

using namespace lamia;

namespace {

constexpr std::int64_t kVocab = 50;

enum class Variant { pre_ln, post_ln, projected, lora };

Decoder make_model(Variant variant, std::uint64_t seed) {
  torch::manual_seed(seed);
  DecoderOptions o(kVocab, 32, 2, 4);
  o.dropout(0).max_position_embeddings(64);
  if (variant == Variant::post_ln) o.do_layer_norm_before(false);
  if (variant == Variant::projected) o.word_embed_proj_dim(16);
  Decoder model(o);
  if (variant == Variant::lora)
    apply_lora(*model, LoraOptions(4).target_modules({"q", "k", "v", "out", "fc1", "fc2"}));
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    // Wide weights (and non-zero adapters, whose B starts at zero) so that every part matters.
    if (p.key().find("layer_norm") == std::string::npos)
      p.value().normal_(0, 0.15);
    else
      p.value().add_(torch::randn_like(p.value()) * 0.1);
  }
  model->eval();
  return model;
}

torch::Tensor reference_log_probs(DecoderImpl& model, const std::vector<std::int64_t>& sequence) {
  DecoderInput in;
  in.input_ids = torch::tensor(sequence, torch::kLong).unsqueeze(0);
  return torch::log_softmax(model.forward(in).logits.select(1, -1), -1).squeeze(0);
}

// R users with histories of different lengths (left or right padded), W beams, `steps` tokens per
// beam with random parents inside each user; every step's log-probabilities against the reference.
void check_steps(Variant variant, std::int64_t R, std::int64_t W, std::int64_t steps, bool left_pad,
                 std::uint32_t seed) {
  torch::NoGradGuard no_grad;
  auto model = make_model(variant, seed);
  std::mt19937 rng(seed);
  std::vector<std::vector<std::int64_t>> hist(static_cast<std::size_t>(R));
  std::int64_t T = 0;
  for (std::int64_t r = 0; r < R; ++r) {
    const auto len = 1 + std::int64_t((r * 5 + rng()) % 9);
    for (std::int64_t t = 0; t < len; ++t) hist[std::size_t(r)].push_back(2 + std::int64_t(rng() % (kVocab - 2)));
    T = std::max(T, len);
  }
  auto tokens = torch::full({R, T}, std::int64_t(1), torch::kLong);
  auto key_mask = torch::zeros({R, T}, torch::kBool);
  auto positions = torch::zeros({R, T}, torch::kLong);
  for (std::int64_t r = 0; r < R; ++r) {
    const auto len = std::int64_t(hist[std::size_t(r)].size());
    const auto off = left_pad ? T - len : 0;
    for (std::int64_t t = 0; t < len; ++t) {
      tokens[r][off + t] = hist[std::size_t(r)][std::size_t(t)];
      key_mask[r][off + t] = true;
      positions[r][off + t] = t;
    }
  }
  KVCache cache;
  DecoderInput in;
  in.input_ids = tokens;
  in.position_ids = positions;
  in.attention_mask = causal_padded_mask(key_mask);
  model->forward(in, &cache);
  lamia::detail::SharedPrefixDecoder shared(*model, cache, key_mask, W, steps);

  std::vector<std::vector<std::int64_t>> generated(static_cast<std::size_t>(R * W));
  for (std::int64_t s = 0; s < steps; ++s) {
    auto parents = torch::empty({R * W}, torch::kLong);
    auto next = torch::empty({R * W}, torch::kLong);
    auto pos = torch::empty({R * W}, torch::kLong);
    std::vector<std::vector<std::int64_t>> moved(generated.size());
    for (std::int64_t i = 0; i < R * W; ++i) {
      const auto r = i / W;
      const auto parent = r * W + std::int64_t(rng() % W);
      const auto token = 2 + std::int64_t(rng() % (kVocab - 2));
      parents[i] = parent;
      next[i] = token;
      pos[i] = std::int64_t(hist[std::size_t(r)].size()) + s;
      moved[std::size_t(i)] = s == 0 ? std::vector<std::int64_t>{} : generated[std::size_t(parent)];
      moved[std::size_t(i)].push_back(token);
    }
    generated.swap(moved);
    auto logp = torch::log_softmax(shared.step(parents, next, pos), -1);
    REQUIRE(logp.sizes() == torch::IntArrayRef({R * W, kVocab}));
    REQUIRE(shared.length() == s + 1);
    double worst = 0;
    for (std::int64_t i = 0; i < R * W; ++i) {
      auto sequence = hist[std::size_t(i / W)];
      sequence.insert(sequence.end(), generated[std::size_t(i)].begin(), generated[std::size_t(i)].end());
      worst = std::max(worst, (logp[i] - reference_log_probs(*model, sequence)).abs().max().item<double>());
    }
    INFO("variant " << int(variant) << ", users " << R << ", left padded " << left_pad << ", step " << s);
    CHECK(worst < 1e-5);
  }
}

}  // namespace

TEST_CASE("the shared-prefix step equals a full forward of history + generated tokens", "[decoding][shared_prefix]") {
  const auto variant = GENERATE(Variant::pre_ln, Variant::post_ln, Variant::projected, Variant::lora);
  const auto users = GENERATE(std::int64_t(1), std::int64_t(3));
  const auto left_pad = GENERATE(true, false);
  check_steps(variant, users, /*W*/ 4, /*steps*/ 3, left_pad, 7 + std::uint32_t(users));
}

TEST_CASE("the shared-prefix step refuses more steps than its buffer and a wrong row count", "[decoding][shared_prefix]") {
  torch::NoGradGuard no_grad;
  auto model = make_model(Variant::pre_ln, 1);
  auto key_mask = torch::ones({2, 3}, torch::kBool);
  KVCache cache;
  DecoderInput in;
  in.input_ids = torch::full({2, 3}, std::int64_t(5), torch::kLong);
  model->forward(in, &cache);
  lamia::detail::SharedPrefixDecoder shared(*model, cache, key_mask, 2, 1);
  auto ids = torch::full({4}, std::int64_t(3), torch::kLong);
  auto pos = torch::full({4}, std::int64_t(3), torch::kLong);
  CHECK_THROWS_AS(shared.step({}, ids.narrow(0, 0, 3), pos.narrow(0, 0, 3)), c10::ValueError);
  shared.step({}, ids, pos);
  CHECK_THROWS_AS(shared.step(torch::arange(4), ids, pos), c10::ValueError);
}
