// The decoder on CUDA ([cuda]): the same function as on the CPU (logits, every hidden state,
// gradients, with and without masks), KV-cache decoding, float16 / bfloat16, HF folders loaded
// onto the GPU, LoRA. Without CUDA each case is a passing no-op that warns "CUDA not available".
#include "cuda_guard.hpp"

#include <lamia/nn/checkpoint.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/nn/kernel_policy.hpp>
#include <lamia/nn/lora.hpp>
#include <lamia/nn/optimizer.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>
#include <unistd.h>  // getpid

using namespace lamia;
using lamia::testing::norm_error;
using lamia::testing::on_test_device;
using lamia::testing::relative_error;
namespace fs = std::filesystem;

namespace {

const torch::Device kCuda = lamia::testing::cuda_test_device();

DecoderOptions cuda_options(bool pre_ln, int64_t proj_dim, bool tie = true) {
  return DecoderOptions(97, 64, 3, 4).ffn_dim(96).max_position_embeddings(64).word_embed_proj_dim(proj_dim)
      .do_layer_norm_before(pre_ln).dropout(0.0).tie_word_embeddings(tie);
}

// A decoder whose every parameter (biases and layer norms included) is away from its init, so that
// a wrong bias, norm or projection shows. Deterministic in seed (CPU generator).
Decoder make_decoder(const DecoderOptions& o, uint64_t seed, int64_t lora_rank = 0) {
  torch::manual_seed(seed);
  Decoder d(o);
  if (lora_rank > 0) apply_lora(*d, LoraOptions(lora_rank).target_modules({"q", "v", "fc1"}));
  torch::NoGradGuard ng;
  for (auto& p : d->parameters()) p.add_(torch::randn(p.sizes()) * 0.1);
  return d;
}

// Left padding: sample b has pads[b] padding tokens first. Returns the [B,T,T] mask (causal and
// not a padding key; padding rows attend nothing) and positions counted over the real tokens.
std::pair<torch::Tensor, torch::Tensor> left_padding(int64_t T, const std::vector<int64_t>& pads) {
  const auto B = static_cast<int64_t>(pads.size());
  auto valid = torch::ones({B, T}, torch::kBool);
  for (int64_t b = 0; b < B; ++b) valid[b].narrow(0, 0, pads[b]).fill_(false);
  auto causal = torch::ones({T, T}, torch::kBool).tril();
  auto mask = causal.unsqueeze(0).logical_and(valid.unsqueeze(1));
  auto pos = (valid.to(torch::kLong).cumsum(1) - 1).clamp_min(0);
  return {mask, pos};
}

DecoderInput to_device(DecoderInput in, const torch::Device& dev) {
  auto mv = [&](torch::Tensor& t) {
    if (t.defined()) t = t.to(dev);
  };
  mv(in.input_ids);
  mv(in.position_ids);
  mv(in.attention_mask);
  mv(in.inputs_embeds);
  mv(in.embeds_mask);
  return in;
}

}  // namespace

TEST_CASE("cuda: the decoder computes on CUDA what it computes on the CPU (logits, hidden states, gradients)",
          "[nn][cuda]") {
  LAMIA_REQUIRE_CUDA();
  const bool pre = GENERATE(true, false);
  const int64_t proj = GENERATE(0, 32);
  const bool masked = GENERATE(false, true);      // false: the causal path (fused SDPA on LibTorch 2.x)
  const bool inputs_on_cuda = GENERATE(true, false);  // false: the decoder moves CPU inputs itself
  INFO("pre_ln " << pre << ", word_embed_proj_dim " << proj << ", masked " << masked << ", inputs on CUDA "
                 << inputs_on_cuda);
  auto cpu = make_decoder(cuda_options(pre, proj), 11);
  auto gpu = std::dynamic_pointer_cast<DecoderImpl>(cpu->clone(kCuda));
  REQUIRE(gpu);
  REQUIRE(gpu->device().type() == kCuda.type());
  const int64_t E = cpu->options().resolved_embed_dim(), T = 10;

  torch::manual_seed(12);
  DecoderInput in;
  in.input_ids = torch::randint(97, {3, T}, torch::kLong);
  in.output_hidden_states = true;
  if (masked) std::tie(in.attention_mask, in.position_ids) = left_padding(T, {0, 3, 5});
  in.inputs_embeds = torch::randn({3, T, E}, torch::requires_grad());
  in.embeds_mask = torch::zeros({3, T}, torch::kBool);
  in.embeds_mask.select(1, 6).fill_(true);
  auto in_gpu = inputs_on_cuda ? to_device(in, kCuda) : in;
  // A leaf of its own for the CUDA model's inputs_embeds (on the CPU: the gradient crosses devices).
  auto embeds = in.inputs_embeds.detach().clone();
  in_gpu.inputs_embeds = (inputs_on_cuda ? embeds.to(kCuda) : embeds).requires_grad_(true);

  auto a = cpu->forward(in);
  auto b = gpu->forward(in_gpu);
  REQUIRE(on_test_device(b.logits));
  REQUIRE(torch::isfinite(b.logits).all().item<bool>());
  CHECK(relative_error(b.logits, a.logits) < 1e-4);
  CHECK(relative_error(b.last_hidden_state, a.last_hidden_state) < 1e-4);
  REQUIRE(b.hidden_states.size() == a.hidden_states.size());
  for (size_t i = 0; i < a.hidden_states.size(); ++i) {
    INFO("hidden state " << i << ": relative error " << relative_error(b.hidden_states[i], a.hidden_states[i]));
    CHECK(relative_error(b.hidden_states[i], a.hidden_states[i]) < 1e-4);
  }

  auto w = torch::randn(a.logits.sizes());
  (a.logits * w).sum().backward();
  (b.logits * w.to(kCuda)).sum().backward();
  auto pa = cpu->named_parameters();
  auto pb = gpu->named_parameters();
  REQUIRE(pa.size() == pb.size());
  double scale = 0;
  for (const auto& p : pa) scale = std::max(scale, p.value().grad().abs().max().item<double>());
  for (const auto& p : pa) {
    const auto& g = pb[p.key()].grad();
    REQUIRE(p.value().grad().defined());
    REQUIRE(g.defined());
    INFO("gradient of " << p.key() << ": relative error " << relative_error(g, p.value().grad()));
    CHECK(on_test_device(g));
    if (lamia::testing::is_key_bias(p.key())) {
      CHECK(g.abs().max().item<double>() < 1e-4 * scale);
    } else {
      CHECK(relative_error(g, p.value().grad()) < 1e-3);
    }
  }
  REQUIRE(in_gpu.inputs_embeds.grad().defined());
  CHECK(relative_error(in_gpu.inputs_embeds.grad(), in.inputs_embeds.grad()) < 1e-3);
}

TEST_CASE("cuda: a fully masked attention row is zero with finite gradients on CUDA", "[nn][cuda]") {
  LAMIA_REQUIRE_CUDA();
  const auto dtype = GENERATE(torch::kFloat, torch::kHalf, torch::kBFloat16);
  INFO("dtype " << c10::toString(dtype));
  if (lamia::testing::skip_half(dtype)) return;
  torch::manual_seed(3);
  auto opts = torch::TensorOptions().device(kCuda).dtype(dtype);
  auto q = torch::randn({2, 2, 4, 8}, opts).requires_grad_(true);
  auto k = torch::randn({2, 2, 4, 8}, opts).requires_grad_(true);
  auto v = torch::randn({2, 2, 4, 8}, opts).requires_grad_(true);
  auto mask = torch::ones({2, 4, 4}, torch::TensorOptions().dtype(torch::kBool).device(kCuda)).tril();
  mask[0][2].fill_(false);
  mask[1].fill_(false);
  auto out = functional::masked_attention(q, k, v, mask);
  CHECK(out.scalar_type() == dtype);
  CHECK(out[0].select(1, 2).abs().max().item<double>() == 0.0);
  CHECK(out[1].abs().max().item<double>() == 0.0);
  out.to(torch::kFloat).sum().backward();
  for (auto* t : {&q, &k, &v}) CHECK(torch::isfinite(t->grad()).all().item<bool>());
  // Rows that attend something agree with the CPU in float32.
  auto cpu = functional::masked_attention(q.detach().cpu().to(torch::kFloat), k.detach().cpu().to(torch::kFloat),
                                          v.detach().cpu().to(torch::kFloat), mask.cpu());
  const double tol = dtype == torch::kFloat ? 1e-5 : 3e-2;
  CHECK(norm_error(out.detach()[0].select(1, 3), cpu[0].select(1, 3)) < tol);
}

TEST_CASE("cuda: KV-cache greedy decoding with beam reordering equals full recompute and the CPU", "[nn][cuda]") {
  LAMIA_REQUIRE_CUDA();
  const bool pre = GENERATE(true, false);
  auto cpu = make_decoder(cuda_options(pre, 32), 21);
  auto gpu = make_decoder(cuda_options(pre, 32), 21);
  gpu->to(kCuda);
  cpu->eval();
  gpu->eval();
  torch::NoGradGuard ng;
  const int64_t B = 4, P = 6, N = 10;
  torch::manual_seed(22);
  auto prompt = torch::randint(97, {B, P}, torch::kLong);
  auto parents = torch::tensor({1, 0, 3, 3}, torch::kLong);  // on the CPU: reorder moves it

  // Cached: the prompt once, then one token per step; rows follow their parent each step.
  auto cached = [&](DecoderImpl& d, std::vector<torch::Tensor>& step_logits) {
    KVCache cache;
    DecoderInput in;
    in.input_ids = prompt.to(d.device());
    auto logits = d.forward(in, &cache).logits.select(1, P - 1);
    auto seq = in.input_ids;
    for (int64_t i = 0; i < N; ++i) {
      step_logits.push_back(logits.cpu());
      auto next = logits.argmax(-1, true);
      cache.reorder(parents);
      seq = torch::cat({seq.index_select(0, parents.to(seq.device())), next.index_select(0, parents.to(seq.device()))}, 1);
      DecoderInput step;
      step.input_ids = seq.narrow(1, seq.size(1) - 1, 1);
      logits = d.forward(step, &cache).logits.select(1, 0);
    }
    CHECK(cache.length() == P + N);
    CHECK(cache.keys[0].device() == d.device());
    return seq;
  };
  auto full = [&](DecoderImpl& d, std::vector<torch::Tensor>& step_logits) {
    auto seq = prompt.to(d.device());
    for (int64_t i = 0; i < N; ++i) {
      DecoderInput in;
      in.input_ids = seq;
      auto logits = d.forward(in).logits.select(1, seq.size(1) - 1);
      step_logits.push_back(logits.cpu());
      auto next = logits.argmax(-1, true);
      seq = torch::cat({seq, next}, 1).index_select(0, parents.to(seq.device()));
    }
    return seq;
  };
  std::vector<torch::Tensor> lc, lf, lcpu;
  auto sc = cached(*gpu, lc);
  auto sf = full(*gpu, lf);
  auto scpu = cached(*cpu, lcpu);
  CHECK(on_test_device(sc));
  REQUIRE(lc.size() == lf.size());
  for (size_t i = 0; i < lc.size(); ++i) {
    INFO("step " << i << ": cached vs full " << relative_error(lc[i], lf[i]) << ", CUDA vs CPU "
                 << relative_error(lc[i], lcpu[i]));
    CHECK(relative_error(lc[i], lf[i]) < 1e-4);
    CHECK(relative_error(lc[i], lcpu[i]) < 1e-4);
  }
  CHECK(torch::equal(sc, sf));
  CHECK(torch::equal(sc.cpu(), scpu));
}

TEST_CASE("cuda: float16 and bfloat16 on CUDA stay close to float32, with and without a cache", "[nn][cuda]") {
  LAMIA_REQUIRE_CUDA();
  const auto dtype = GENERATE(torch::kHalf, torch::kBFloat16);
  const bool pre = GENERATE(true, false);
  const bool masked = GENERATE(false, true);
  INFO("dtype " << c10::toString(dtype) << ", pre_ln " << pre << ", masked " << masked);
  if (lamia::testing::skip_half(dtype)) return;
  const double tol = dtype == torch::kHalf ? 1e-2 : 5e-2;
  auto ref = make_decoder(cuda_options(pre, 32), 31);
  auto low = make_decoder(cuda_options(pre, 32), 31);
  ref->to(kCuda);
  low->to(kCuda, dtype);
  REQUIRE(low->dtype() == dtype);
  ref->eval();
  low->eval();
  torch::manual_seed(32);
  DecoderInput in;
  in.input_ids = torch::randint(97, {3, 12}, torch::kLong);
  in.output_hidden_states = true;
  if (masked) std::tie(in.attention_mask, in.position_ids) = left_padding(12, {0, 4, 11});
  torch::Tensor a, b;
  {
    torch::NoGradGuard ng;
    a = ref->forward(in).logits;
  }
  auto out = low->forward(in);
  b = out.logits;
  CHECK(b.scalar_type() == dtype);
  REQUIRE(torch::isfinite(b).all().item<bool>());
  INFO("logits norm error " << norm_error(b, a));
  CHECK(norm_error(b, a) < tol);
  // Backward in reduced precision: finite gradients everywhere.
  b.to(torch::kFloat).pow(2).mean().backward();
  for (const auto& p : low->named_parameters()) {
    INFO(p.key());
    REQUIRE(p.value().grad().defined());
    CHECK(torch::isfinite(p.value().grad()).all().item<bool>());
  }
  // Cached decoding in reduced precision follows the full forward.
  torch::NoGradGuard ng;
  KVCache cache;
  DecoderInput first;
  first.input_ids = in.input_ids.narrow(1, 0, 8);
  if (masked) {
    first.attention_mask = in.attention_mask.narrow(1, 0, 8).narrow(2, 0, 8);
    first.position_ids = in.position_ids.narrow(1, 0, 8);
  }
  std::vector<torch::Tensor> parts{low->forward(first, &cache).logits};
  for (int64_t t = 8; t < 12; ++t) {
    DecoderInput step;
    step.input_ids = in.input_ids.narrow(1, t, 1);
    if (masked) {
      step.attention_mask = in.attention_mask.narrow(1, t, 1).narrow(2, 0, t + 1);
      step.position_ids = in.position_ids.narrow(1, t, 1);
    }
    parts.push_back(low->forward(step, &cache).logits);
  }
  CHECK(cache.keys[0].scalar_type() == dtype);
  auto inc = torch::cat(parts, 1);
  INFO("cached vs full norm error " << norm_error(inc, a));
  CHECK(norm_error(inc, a) < tol);
}

TEST_CASE("cuda: a Hugging Face folder loads onto CUDA in float32 and float16, and saves back from CUDA",
          "[nn][cuda][checkpoint]") {
  LAMIA_REQUIRE_CUDA();
  const bool tie = GENERATE(true, false);
  const auto dir = fs::temp_directory_path() / ("lamia_nn_cuda_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto cpu = make_decoder(cuda_options(false, 32, tie), 41);
  cpu->eval();
  save_pretrained(*cpu, dir / "a", /*max_shard_bytes=*/tie ? 0 : 20000);
  auto g32 = load_pretrained(dir / "a", torch::kFloat, kCuda);
  const auto low = lamia::testing::skip_half(torch::kHalf) ? torch::kBFloat16 : torch::kHalf;
  auto g16 = load_pretrained(dir / "a", low, kCuda);
  CHECK(g32->device().type() == kCuda.type());
  CHECK(g16->dtype() == low);
  g32->eval();
  g16->eval();
  torch::NoGradGuard ng;
  torch::manual_seed(42);
  DecoderInput in;
  in.input_ids = torch::randint(97, {2, 9}, torch::kLong);
  auto ref = cpu->forward(in).logits;
  CHECK(relative_error(g32->forward(in).logits, ref) < 1e-4);
  CHECK(norm_error(g16->forward(in).logits, ref) < (low == torch::kHalf ? 1e-2 : 5e-2));
  // Saving a CUDA model writes CPU tensors; reading them back gives the same weights.
  save_pretrained(*g32, dir / "b");
  auto back = load_pretrained(dir / "b");
  CHECK(back->device() == torch::Device(torch::kCPU));
  for (const auto& p : cpu->named_parameters()) {
    INFO(p.key());
    CHECK(torch::equal(back->named_parameters()[p.key()], p.value()));
  }
  fs::remove_all(dir);
}

TEST_CASE("cuda: LoRA adapters train and merge on a CUDA decoder as on the CPU", "[nn][cuda][lora]") {
  LAMIA_REQUIRE_CUDA();
  auto cpu = make_decoder(cuda_options(true, 0), 51, /*lora_rank=*/4);
  auto gpu = make_decoder(cuda_options(true, 0), 51, /*lora_rank=*/4);
  gpu->to(kCuda);
  torch::manual_seed(52);
  DecoderInput in;
  in.input_ids = torch::randint(97, {2, 7}, torch::kLong);
  auto a = cpu->forward(in).logits;
  auto b = gpu->forward(in).logits;
  CHECK(relative_error(b, a) < 1e-4);
  a.pow(2).mean().backward();
  b.pow(2).mean().backward();
  std::int64_t adapters = 0;
  auto pb = gpu->named_parameters();
  for (const auto& p : cpu->named_parameters()) {
    const auto& q = pb[p.key()];
    CHECK(q.requires_grad() == p.value().requires_grad());
    if (!p.value().requires_grad()) continue;
    ++adapters;
    INFO(p.key());
    REQUIRE(q.grad().defined());
    CHECK(on_test_device(q.grad()));
    CHECK(relative_error(q.grad(), p.value().grad()) < 1e-3);
  }
  CHECK(adapters == 3 * 3 * 2);  // 3 layers x (q, v, fc1) x (A, B)
  torch::NoGradGuard ng;
  gpu->eval();
  auto before = gpu->forward(in).logits;
  merge_lora(*gpu);
  CHECK(relative_error(gpu->forward(in).logits, before) < 1e-4);
}

TEST_CASE("cuda: packing with a known count (stable sort, no nonzero) finds the positions nonzero finds",
          "[nn][cuda]") {
  LAMIA_REQUIRE_CUDA();
  torch::manual_seed(11);
  for (const auto& shape : std::vector<std::vector<int64_t>>{{3, 7}, {1, 1}, {64, 129}, {5, 4}}) {
    auto mask = torch::rand(shape) < 0.6;
    if (shape[0] == 5) mask.fill_(false);  // nothing real
    const auto n = mask.sum().item<int64_t>();
    PackedTokens cpu(mask), dev(mask.to(kCuda), n);
    CHECK(torch::equal(dev.index.cpu(), cpu.index));
    CHECK(torch::equal(dev.padding.cpu(), cpu.padding));
    CHECK(torch::equal(flat_positions(mask.to(kCuda), n).cpu(), flat_positions(mask)));
  }
}

TEST_CASE("cuda: every kernel policy computes on CUDA what the default computes on the CPU", "[nn][cuda]") {
  LAMIA_REQUIRE_CUDA();
  struct Restore {
    KernelPolicy before = kernel_policy();
    ~Restore() { set_kernel_policy(before); }
  } restore;
  const bool pack = GENERATE(true, false);
  const bool fused = GENERATE(false, true);
  if (fused && !fused_attention_available()) return;
  INFO("pack_padding " << pack << ", fused_attention " << fused);
  auto o = cuda_options(true, 0);
  auto cpu = make_decoder(o, 21);
  auto [mask, pos] = left_padding(9, {0, 3, 1});
  // Right-aligned real tokens; padding rows attend nothing; the last layer asked for some rows only.
  auto real = mask.any(-1);
  auto wanted = real & (torch::arange(9).unsqueeze(0).remainder(2) == 0);
  DecoderInput in;
  in.input_ids = torch::randint(97, {3, 9});
  in.position_ids = pos;
  in.attention_mask = mask;
  in.token_mask = real;
  in.output_mask = wanted;
  in.output_hidden_states = true;
  auto expected = cpu->forward(in);
  expected.logits.sum().backward();
  std::map<std::string, torch::Tensor> g_cpu;
  for (const auto& p : cpu->named_parameters()) g_cpu[p.key()] = p.value().grad().clone();

  set_kernel_policy({pack, fused});
  auto dev = std::dynamic_pointer_cast<DecoderImpl>(cpu->clone(kCuda));
  dev->zero_grad();
  auto din = to_device(in, kCuda);
  din.token_mask = real.to(kCuda);
  din.output_mask = wanted.to(kCuda);
  auto got = dev->forward(din);
  CHECK(relative_error(got.logits, expected.logits) < 1e-4);
  REQUIRE(got.hidden_states.size() == expected.hidden_states.size());
  for (std::size_t i = 0; i < got.hidden_states.size(); ++i) {
    CHECK(relative_error(got.hidden_states[i], expected.hidden_states[i]) < 1e-4);
  }
  got.logits.sum().backward();
  for (const auto& p : dev->named_parameters()) {
    INFO(p.key());
    if (lamia::testing::is_key_bias(p.key())) continue;
    CHECK(relative_error(p.value().grad(), g_cpu.at(p.key())) < 1e-3);
  }
}

TEST_CASE("cuda: MultiTensorAdam and clip_grad_norm on CUDA follow torch's Adam and clipping on the CPU",
          "[nn][cuda][optimizer]") {
  LAMIA_REQUIRE_CUDA();
  torch::manual_seed(13);
  std::vector<torch::Tensor> cpu, dev;
  for (auto shape : std::vector<std::vector<int64_t>>{{33, 17}, {129}, {4, 4, 4}}) {
    auto p = torch::randn(shape);
    cpu.push_back(p.clone().requires_grad_(true));
    dev.push_back(p.to(kCuda).requires_grad_(true));
  }
  const auto opts = torch::optim::AdamOptions(1e-2).weight_decay(0.01);
  torch::optim::Adam reference(cpu, opts);
  MultiTensorAdam mine(dev, opts);
  for (int step = 0; step < 5; ++step) {
    for (std::size_t i = 0; i < cpu.size(); ++i) {
      auto g = torch::randn(cpu[i].sizes()) * (step + 1);
      cpu[i].mutable_grad() = g.clone();
      dev[i].mutable_grad() = g.to(kCuda);
    }
    const double want = torch::nn::utils::clip_grad_norm_(cpu, 3.0);
    const double got = clip_grad_norm(dev, 3.0);
    CHECK(got == Approx(want).epsilon(1e-5));
    reference.step();
    mine.step();
  }
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    CHECK(on_test_device(dev[i]));
    CHECK(relative_error(dev[i], cpu[i]) < 1e-5);
  }
}
