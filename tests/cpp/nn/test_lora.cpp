// LoRA: freezing, zero-init identity, merge/unmerge, save/load of adapters alone.
#include <catch2/catch.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/nn/lora.hpp>
#include <lamia/nn/safetensors.hpp>

#include <torch/torch.h>

#include <filesystem>
#include <unistd.h>  // getpid

using namespace lamia;
namespace fs = std::filesystem;

namespace {
Decoder tiny(uint64_t seed) {
  torch::manual_seed(seed);
  Decoder d(DecoderOptions(40, 32, 2, 4).ffn_dim(64).max_position_embeddings(32).dropout(0.0));
  d->eval();
  return d;
}
torch::Tensor logits(Decoder& d, const torch::Tensor& ids) {
  DecoderInput in;
  in.input_ids = ids;
  return d->forward(in).logits;
}
void randomize_adapters(Decoder& d) {
  torch::NoGradGuard ng;
  for (auto& p : d->named_parameters())
    if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0.0, 0.1);
}
}  // namespace

TEST_CASE("lora: base weights frozen, adapters trainable and only adapters get gradients", "[nn][lora]") {
  auto d = tiny(0);
  apply_lora(*d, LoraOptions(4).alpha(8).target_modules({"q", "k", "v", "out", "fc1", "fc2"}));
  int adapters = 0;
  for (auto& p : d->named_parameters()) {
    const bool is_lora = p.key().find("lora_") != std::string::npos;
    INFO(p.key());
    CHECK(p.value().requires_grad() == is_lora);
    adapters += is_lora;
  }
  CHECK(adapters == 2 * 6 * 2);
  auto ids = torch::randint(40, {2, 5}, torch::kLong);
  logits(d, ids).pow(2).mean().backward();
  for (auto& p : d->named_parameters()) {
    if (p.key().find("lora_") == std::string::npos) {
      CHECK_FALSE(p.value().grad().defined());
    } else if (p.key().find("lora_A") != std::string::npos) {
      CHECK(p.value().grad().defined());  // zero (B = 0) but defined
    } else {
      REQUIRE(p.value().grad().defined());
      CHECK(p.value().grad().abs().sum().item<double>() > 0);  // B gets a gradient through A x
    }
  }
  CHECK(d->named_parameters()["layers.0.self_attn.q_proj.lora_A"].sizes() == torch::IntArrayRef({4, 32}));
  CHECK(d->named_parameters()["layers.1.fc2.lora_B"].sizes() == torch::IntArrayRef({32, 4}));
}

TEST_CASE("lora: a fresh adapter leaves the logits unchanged (B = 0)", "[nn][lora]") {
  auto d = tiny(1);
  auto ids = torch::randint(40, {2, 6}, torch::kLong);
  auto before = logits(d, ids).detach();
  apply_lora(*d, LoraOptions(8));
  CHECK(torch::equal(logits(d, ids).detach(), before));
  auto a = d->named_parameters()["layers.0.self_attn.v_proj.lora_A"];
  CHECK(a.abs().max().item<double>() <= 1.0 / std::sqrt(32.0) + 1e-7);
  CHECK(a.abs().max().item<double>() > 0);
}

TEST_CASE("lora: merge and unmerge are exact within float tolerance", "[nn][lora]") {
  auto d = tiny(2);
  auto ids = torch::randint(40, {2, 6}, torch::kLong);
  auto base = logits(d, ids).detach();
  auto w0 = d->layer_modules[0]->self_attn->q_proj->weight.detach().clone();
  apply_lora(*d, LoraOptions(4).alpha(16).target_modules({"q_proj", "v", "fc1"}));
  randomize_adapters(d);
  auto adapted = logits(d, ids).detach();
  CHECK_FALSE(torch::allclose(adapted, base, 1e-4, 1e-4));
  merge_lora(*d);
  CHECK(d->layer_modules[0]->self_attn->q_proj->merged());
  CHECK(torch::allclose(logits(d, ids).detach(), adapted, 1e-5, 1e-5));
  CHECK_FALSE(torch::allclose(d->layer_modules[0]->self_attn->q_proj->weight, w0));
  merge_lora(*d);  // idempotent
  CHECK(torch::allclose(logits(d, ids).detach(), adapted, 1e-5, 1e-5));
  unmerge_lora(*d);
  CHECK(torch::allclose(d->layer_modules[0]->self_attn->q_proj->weight, w0, 1e-6, 1e-7));
  CHECK(torch::allclose(logits(d, ids).detach(), adapted, 1e-5, 1e-5));
}

TEST_CASE("lora: adapters saved alone load into a fresh copy of the base model", "[nn][lora]") {
  auto d = tiny(3);
  apply_lora(*d, LoraOptions(2).alpha(4).target_modules({"k", "out"}));
  randomize_adapters(d);
  auto ids = torch::randint(40, {1, 5}, torch::kLong);
  auto want = logits(d, ids).detach();
  auto path = fs::temp_directory_path() / ("lamia_lora_" + std::to_string(::getpid()) + ".safetensors");
  save_lora(*d, path);
  std::map<std::string, std::string> meta;
  auto stored = load_safetensors(path, &meta);
  CHECK(stored.size() == 2 * 2 * 2);
  CHECK(stored.count("base_model.model.model.decoder.layers.1.self_attn.out_proj.lora_B.weight"));
  CHECK(meta.at("lora_rank") == "2");
  auto e = tiny(3);  // same base weights
  load_lora(*e, path);
  CHECK(has_lora(*e));
  CHECK(lora_options(*e).alpha() == 4.0);
  CHECK(torch::allclose(logits(e, ids).detach(), want, 1e-6, 1e-6));
  // A decoder with other targets is rejected, naming the missing tensor.
  auto f = tiny(3);
  apply_lora(*f, LoraOptions(2).target_modules({"q"}));
  CHECK_THROWS_WITH(load_lora(*f, path), Catch::Contains("missing LoRA tensor base_model.model.model.decoder.layers.0.self_attn.q_proj.lora_A.weight"));
  fs::remove(path);
}

TEST_CASE("lora: bad options are rejected", "[nn][lora]") {
  auto d = tiny(4);
  CHECK_THROWS_AS(apply_lora(*d, LoraOptions(4).target_modules({"gate"})), ValueError);
  CHECK_THROWS_AS(apply_lora(*d, LoraOptions(0)), ValueError);
  CHECK_THROWS_AS(merge_lora(*d), ValueError);
  apply_lora(*d, LoraOptions(4));
  CHECK_THROWS_AS(apply_lora(*d, LoraOptions(4)), ValueError);
}
