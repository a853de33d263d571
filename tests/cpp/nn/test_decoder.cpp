// Decoder: shapes, KV-cache equivalence, mask NaN-safety, inputs_embeds, hidden states, resize.
#include <catch2/catch.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/nn/decoder.hpp>

#include <torch/torch.h>

using namespace lamia;

namespace {
DecoderOptions small_options(bool pre_ln, int64_t proj_dim) {
  return DecoderOptions(50, 32, 2, 4).ffn_dim(48).max_position_embeddings(64).word_embed_proj_dim(proj_dim)
      .do_layer_norm_before(pre_ln).dropout(0.0);
}
}  // namespace

TEST_CASE("decoder forward gives logits, last hidden state and num_layers + 1 hidden states", "[nn][decoder]") {
  torch::manual_seed(0);
  const bool pre = GENERATE(true, false);
  const int64_t proj = GENERATE(0, 16);
  Decoder d(small_options(pre, proj));
  const int64_t E = proj ? proj : 32;
  DecoderInput in;
  in.input_ids = torch::randint(50, {3, 7}, torch::kLong);
  in.output_hidden_states = true;
  auto out = d->forward(in);
  CHECK(out.logits.sizes() == torch::IntArrayRef({3, 7, 50}));
  CHECK(out.last_hidden_state.sizes() == torch::IntArrayRef({3, 7, E}));
  REQUIRE(out.hidden_states.size() == 3);
  CHECK(out.hidden_states[0].size(2) == 32);
  CHECK(torch::equal(out.hidden_states[2], out.last_hidden_state));
  CHECK((d->named_parameters().contains("project_in.weight")) == (proj != 0));
  CHECK((d->named_parameters().contains("final_layer_norm.weight")) == pre);
  // Tied head: logits = h E^T.
  CHECK(torch::allclose(out.logits, torch::matmul(out.last_hidden_state, d->embed_tokens_->weight.t()), 1e-5, 1e-5));
  in.compute_logits = false;
  CHECK_FALSE(d->forward(in).logits.defined());
}

TEST_CASE("decoder: cached step-by-step logits equal the full forward", "[nn][decoder][cache]") {
  torch::manual_seed(1);
  const bool pre = GENERATE(true, false);
  const int64_t proj = GENERATE(0, 16);
  Decoder d(small_options(pre, proj));
  d->eval();
  torch::NoGradGuard ng;
  DecoderInput full;
  full.input_ids = torch::randint(50, {2, 9}, torch::kLong);
  auto ref = d->forward(full).logits;
  // Prefix of 4 then one token at a time.
  KVCache cache;
  DecoderInput first;
  first.input_ids = full.input_ids.narrow(1, 0, 4);
  std::vector<torch::Tensor> parts{d->forward(first, &cache).logits};
  CHECK(cache.length() == 4);
  for (int64_t t = 4; t < 9; ++t) {
    DecoderInput step;
    step.input_ids = full.input_ids.narrow(1, t, 1);
    parts.push_back(d->forward(step, &cache).logits);
  }
  CHECK(cache.length() == 9);
  CHECK(cache.keys.size() == 2);
  auto got = torch::cat(parts, 1);
  CHECK(torch::allclose(got, ref, 1e-4, 1e-5));
}

TEST_CASE("decoder: cache reorder follows beam parents", "[nn][decoder][cache]") {
  torch::manual_seed(2);
  Decoder d(small_options(true, 0));
  d->eval();
  torch::NoGradGuard ng;
  auto ids = torch::randint(50, {3, 6}, torch::kLong);
  KVCache cache;
  DecoderInput p;
  p.input_ids = ids.narrow(1, 0, 5);
  d->forward(p, &cache);
  auto parents = torch::tensor({2, 2, 0}, torch::kLong);
  cache.reorder(parents);
  DecoderInput step;
  step.input_ids = ids.index_select(0, parents).narrow(1, 5, 1);
  auto got = d->forward(step, &cache).logits;
  DecoderInput full;
  full.input_ids = torch::cat({ids.index_select(0, parents).narrow(1, 0, 5), step.input_ids}, 1);
  auto ref = d->forward(full).logits.narrow(1, 5, 1);
  CHECK(torch::allclose(got, ref, 1e-4, 1e-5));
  CHECK_THROWS_AS(cache.reorder(torch::tensor({0, 7}, torch::kLong)), c10::IndexError);
}

TEST_CASE("decoder: a custom mask equal to the causal mask gives the causal result", "[nn][decoder][mask]") {
  torch::manual_seed(3);
  Decoder d(small_options(true, 16));
  d->eval();
  DecoderInput in;
  in.input_ids = torch::randint(50, {2, 5}, torch::kLong);
  auto ref = d->forward(in).logits;
  in.attention_mask = torch::ones({5, 5}, torch::kBool).tril().expand({2, 5, 5}).contiguous();
  CHECK(torch::allclose(d->forward(in).logits, ref, 1e-5, 1e-6));
}

TEST_CASE("decoder: rows with no allowed key give finite values and finite gradients", "[nn][decoder][mask]") {
  torch::manual_seed(4);
  const bool pre = GENERATE(true, false);
  Decoder d(small_options(pre, 0));
  DecoderInput in;
  in.input_ids = torch::randint(50, {2, 6}, torch::kLong);
  auto mask = torch::ones({6, 6}, torch::kBool).tril().expand({2, 6, 6}).clone();
  mask[0].narrow(0, 4, 2).fill_(false);  // two padding rows
  mask[1].fill_(false);                   // a sample that attends nothing at all
  in.attention_mask = mask;
  in.inputs_embeds = torch::randn({2, 6, 32}, torch::requires_grad());
  in.embeds_mask = torch::zeros({2, 6}, torch::kBool);
  in.embeds_mask[0][1] = true;
  auto out = d->forward(in);
  REQUIRE(torch::isfinite(out.logits).all().item<bool>());
  out.logits.sum().backward();
  for (auto& p : d->parameters()) {
    REQUIRE(p.grad().defined());
    CHECK(torch::isfinite(p.grad()).all().item<bool>());
  }
  CHECK(torch::isfinite(in.inputs_embeds.grad()).all().item<bool>());
}

TEST_CASE("decoder: attention output of a fully masked row is zero", "[nn][decoder][mask]") {
  auto q = torch::randn({1, 2, 3, 4}), k = torch::randn({1, 2, 3, 4}), v = torch::randn({1, 2, 3, 4});
  auto mask = torch::ones({1, 3, 3}, torch::kBool);
  mask[0][1].fill_(false);
  auto out = functional::masked_attention(q, k, v, mask);
  CHECK(out.select(2, 1).abs().max().item<float>() == 0.0f);
  auto ref = torch::matmul(torch::softmax(torch::matmul(q, k.transpose(-1, -2)), -1), v);
  CHECK(torch::allclose(out.select(2, 0), ref.select(2, 0), 1e-5, 1e-6));
}

TEST_CASE("decoder: inputs_embeds replace token embeddings only where embeds_mask is set", "[nn][decoder]") {
  torch::manual_seed(5);
  Decoder d(small_options(false, 16));
  d->eval();
  torch::NoGradGuard ng;
  DecoderInput in;
  in.input_ids = torch::randint(50, {2, 5}, torch::kLong);
  auto ref = d->forward(in).logits;
  // Feeding the token embeddings themselves changes nothing.
  in.inputs_embeds = d->embed_tokens(in.input_ids);
  in.embeds_mask = torch::ones({2, 5}, torch::kBool);
  CHECK(torch::allclose(d->forward(in).logits, ref, 1e-5, 1e-6));
  // Other vectors at position 3 change positions >= 3 only (causal).
  in.inputs_embeds = torch::randn({2, 5, 16});
  in.embeds_mask = torch::zeros({2, 5}, torch::kBool);
  in.embeds_mask.select(1, 3).fill_(true);
  auto got = d->forward(in).logits;
  CHECK(torch::allclose(got.narrow(1, 0, 3), ref.narrow(1, 0, 3), 1e-5, 1e-6));
  CHECK_FALSE(torch::allclose(got.narrow(1, 3, 2), ref.narrow(1, 3, 2), 1e-3, 1e-3));
}

TEST_CASE("decoder: position ids shift the learned positions", "[nn][decoder]") {
  torch::manual_seed(6);
  Decoder d(small_options(true, 0));
  d->eval();
  torch::NoGradGuard ng;
  DecoderInput in;
  in.input_ids = torch::randint(50, {1, 4}, torch::kLong);
  auto ref = d->forward(in).logits;
  in.position_ids = torch::arange(4, torch::kLong).unsqueeze(0);
  CHECK(torch::allclose(d->forward(in).logits, ref));
  in.position_ids = in.position_ids + 3;
  CHECK_FALSE(torch::allclose(d->forward(in).logits, ref, 1e-3, 1e-3));
  in.position_ids = in.position_ids + 100;
  CHECK_THROWS_AS(d->forward(in), c10::IndexError);
}

TEST_CASE("decoder: bad inputs are rejected with the expected and received shape", "[nn][decoder]") {
  Decoder d(small_options(true, 0));
  DecoderInput in;
  in.input_ids = torch::randint(50, {2, 4}, torch::kLong);
  in.attention_mask = torch::ones({2, 4, 5}, torch::kBool);
  CHECK_THROWS_WITH(d->forward(in), Catch::Contains("attention_mask must be [2, 4, 4], got [2, 4, 5]"));
  in.attention_mask = torch::ones({2, 4, 4}, torch::kFloat);
  CHECK_THROWS_AS(d->forward(in), c10::ValueError);
  CHECK_THROWS_AS(Decoder(DecoderOptions(10, 30, 1, 4)), ValueError);
}

TEST_CASE("decoder: resize_token_embeddings keeps old rows and the tied head follows", "[nn][decoder]") {
  torch::manual_seed(7);
  Decoder d(small_options(true, 0));
  auto old = d->embed_tokens_->weight.detach().clone();
  d->resize_token_embeddings(60);
  CHECK(d->options().vocab_size() == 60);
  CHECK(d->embed_tokens_->weight.size(0) == 60);
  CHECK(torch::equal(d->embed_tokens_->weight.narrow(0, 0, 50), old));
  auto fresh = d->embed_tokens_->weight.narrow(0, 50, 10);
  CHECK(fresh.std().item<double>() > 0.01);
  CHECK(fresh.std().item<double>() < 0.04);
  DecoderInput in;
  in.input_ids = torch::full({1, 3}, 59, torch::kLong);
  CHECK(d->forward(in).logits.size(2) == 60);
  d->resize_token_embeddings(40);
  CHECK(torch::equal(d->embed_tokens_->weight, old.narrow(0, 0, 40)));
}

TEST_CASE("decoder: dropout is active in training and off in eval", "[nn][decoder]") {
  torch::manual_seed(8);
  Decoder d(small_options(true, 0).dropout(0.5));
  DecoderInput in;
  in.input_ids = torch::randint(50, {1, 6}, torch::kLong);
  d->train();
  CHECK_FALSE(torch::allclose(d->forward(in).logits, d->forward(in).logits));
  d->eval();
  CHECK(torch::equal(d->forward(in).logits, d->forward(in).logits));
}

TEST_CASE("decoder: clone copies parameters", "[nn][decoder]") {
  Decoder d(small_options(true, 16));
  auto c = std::dynamic_pointer_cast<DecoderImpl>(d->clone());
  REQUIRE(c);
  auto a = d->named_parameters(), b = c->named_parameters();
  REQUIRE(a.size() == b.size());
  for (const auto& p : a) CHECK(torch::equal(p.value(), b[p.key()]));
}

TEST_CASE("decoder: cached decoding with per-sample masks and positions equals the full masked forward",
          "[nn][decoder][cache][mask]") {
  torch::manual_seed(9);
  Decoder d(small_options(false, 16));
  d->eval();
  torch::NoGradGuard ng;
  const int64_t B = 3, T = 8;
  // A random subset of the causal mask (diagonal kept), e.g. left padding or block structure.
  auto mask = (torch::rand({B, T, T}) < 0.7).logical_and(torch::ones({T, T}, torch::kBool).tril());
  mask = mask.logical_or(torch::eye(T, torch::kBool));
  auto pos = torch::randint(0, 60, {B, T}, torch::kLong);
  DecoderInput full;
  full.input_ids = torch::randint(50, {B, T}, torch::kLong);
  full.attention_mask = mask;
  full.position_ids = pos;
  auto ref = d->forward(full).logits;
  KVCache cache;
  DecoderInput first;
  first.input_ids = full.input_ids.narrow(1, 0, 3);
  first.attention_mask = mask.narrow(1, 0, 3).narrow(2, 0, 3);
  first.position_ids = pos.narrow(1, 0, 3);
  std::vector<torch::Tensor> parts{d->forward(first, &cache).logits};
  for (int64_t t = 3; t < T; ++t) {
    DecoderInput step;
    step.input_ids = full.input_ids.narrow(1, t, 1);
    step.attention_mask = mask.narrow(1, t, 1).narrow(2, 0, t + 1);
    step.position_ids = pos.narrow(1, t, 1);
    parts.push_back(d->forward(step, &cache).logits);
  }
  CHECK(torch::allclose(torch::cat(parts, 1), ref, 1e-4, 1e-5));
  // A mask of the wrong key length for the cache is rejected.
  DecoderInput bad;
  bad.input_ids = full.input_ids.narrow(1, 0, 1);
  bad.attention_mask = torch::ones({B, 1, 1}, torch::kBool);
  CHECK_THROWS_WITH(d->forward(bad, &cache), Catch::Contains("attention_mask must be [3, 1, 9]"));
}

TEST_CASE("decoder: a clone computes the same logits and owns its own weights", "[nn][decoder]") {
  torch::manual_seed(3);
  Decoder d(DecoderOptions(50, 16, 2, 2).dropout(0));
  d->eval();
  auto copy = std::dynamic_pointer_cast<DecoderImpl>(d->clone());
  REQUIRE(copy);
  copy->eval();
  DecoderInput in;
  in.input_ids = torch::randint(50, {2, 6}, torch::kLong);
  auto a = d->forward(in).logits;
  auto b = copy->forward(in).logits;
  CHECK(torch::allclose(a, b));
  // The clone's layers are its own: changing them leaves the original alone.
  {
    torch::NoGradGuard no_grad;
    copy->layer_modules[0]->fc1->weight.add_(1.0);
  }
  CHECK(torch::allclose(d->forward(in).logits, a));
  CHECK_FALSE(torch::allclose(copy->forward(in).logits, a));
}
