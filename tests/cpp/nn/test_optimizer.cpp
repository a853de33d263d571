// MultiTensorAdam and clip_grad_norm against torch's own Adam and clip_grad_norm_: on the CPU the
// multi-tensor ops run torch's per-tensor kernels, so the parameters must agree bit for bit, step
// after step, and the state must travel through save/load between the two optimizers.
#include <lamia/nn/optimizer.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <sstream>
#include <vector>

using namespace lamia;

namespace {

std::vector<torch::Tensor> make_params(std::uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> ps;
  for (auto shape : std::vector<std::vector<std::int64_t>>{{5, 3}, {7}, {2, 2, 3}, {1}})
    ps.push_back(torch::randn(shape, torch::kFloat).requires_grad_(true));
  ps.push_back(torch::randn({4}, torch::kDouble).requires_grad_(true));  // another dtype: its own bucket
  return ps;
}

std::vector<torch::Tensor> copies(const std::vector<torch::Tensor>& ps) {
  std::vector<torch::Tensor> out;
  for (const auto& p : ps) out.push_back(p.detach().clone().requires_grad_(true));
  return out;
}

// The same pseudo-random gradients for both sets; parameter `skip` gets none at this step (its step
// count falls behind the others', so the buckets must split by step).
void set_grads(std::vector<torch::Tensor>& a, std::vector<torch::Tensor>& b, int step, int skip) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (static_cast<int>(i) == skip) {
      a[i].mutable_grad() = torch::Tensor();
      b[i].mutable_grad() = torch::Tensor();
      continue;
    }
    torch::manual_seed(100 + step * 10 + i);
    auto g = torch::randn(a[i].sizes(), a[i].options().requires_grad(false)) * (1 + step);
    a[i].mutable_grad() = g.clone();
    b[i].mutable_grad() = g.clone();
  }
}

}  // namespace

TEST_CASE("MultiTensorAdam takes torch's Adam steps bit for bit, and their archives are interchangeable",
          "[nn][optimizer]") {
  const double wd = GENERATE(0.0, 0.01);
  const bool amsgrad = GENERATE(false, true);
  INFO("weight_decay " << wd << ", amsgrad " << amsgrad);
  auto mine = make_params(1);
  auto theirs = copies(mine);
  auto opts = torch::optim::AdamOptions(3e-3).weight_decay(wd).amsgrad(amsgrad).betas({0.8, 0.95});
  MultiTensorAdam a(mine, opts);
  torch::optim::Adam b(theirs, opts);
  for (int step = 0; step < 6; ++step) {
    set_grads(mine, theirs, step, step == 2 ? 1 : -1);
    a.step();
    b.step();
    for (std::size_t i = 0; i < mine.size(); ++i) {
      INFO("step " << step << ", parameter " << i);
      REQUIRE(torch::equal(mine[i], theirs[i]));
    }
  }
  // Mine saved, loaded into torch's, and on: the state (steps, moments) is the same.
  std::stringstream archive;
  {
    torch::serialize::OutputArchive out;
    a.save(out);
    out.save_to(archive);
  }
  auto again = copies(mine);
  torch::optim::Adam c(again, opts);
  {
    torch::serialize::InputArchive in;
    in.load_from(archive);
    c.load(in);
  }
  set_grads(mine, again, 9, -1);
  a.step();
  c.step();
  for (std::size_t i = 0; i < mine.size(); ++i) CHECK(torch::equal(mine[i], again[i]));
}

TEST_CASE("clip_grad_norm returns and clips as torch's clip_grad_norm_", "[nn][optimizer]") {
  const double max_norm = GENERATE(0.5, 1e6);  // clipping, and a bound far above the norm
  auto mine = make_params(2);
  mine.pop_back();  // torch stacks the norms: one dtype
  auto theirs = copies(mine);
  set_grads(mine, theirs, 1, 2);  // one parameter without a gradient
  const double got = clip_grad_norm(mine, max_norm);
  const double want = torch::nn::utils::clip_grad_norm_(theirs, max_norm);
  CHECK(got == Approx(want).epsilon(1e-6));
  for (std::size_t i = 0; i < mine.size(); ++i) {
    if (!theirs[i].grad().defined()) {
      CHECK(!mine[i].grad().defined());
      continue;
    }
    CHECK(torch::allclose(mine[i].grad(), theirs[i].grad(), 1e-6, 0));
  }
  double norm = 0;
  for (const auto& p : mine)
    if (p.grad().defined()) norm += p.grad().pow(2).sum().item<double>();
  CHECK(std::sqrt(norm) == Approx(std::min(want, max_norm)).epsilon(1e-5));
  std::vector<torch::Tensor> none = {torch::zeros({3}, torch::requires_grad())};
  CHECK(clip_grad_norm(none, 1.0) == 0.0);
}
