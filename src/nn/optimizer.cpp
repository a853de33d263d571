#include <lamia/nn/optimizer.hpp>

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>

namespace lamia {

namespace {

// The key of a parameter's state in torch::optim::Optimizer::state_: the TensorImpl's address,
// printed (LibTorch 1.x) or as a pointer (2.x), whichever this build's map takes.
template <class Key>
Key state_key(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;
    os << static_cast<const void*>(p.unsafeGetTensorImpl());
    return os.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

// The tensors of one multi-tensor update: same device, dtype and step count.
struct Bucket {
  std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs;
};

}  // namespace

torch::Tensor MultiTensorAdam::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  using Key = typename std::decay_t<decltype(state_)>::key_type;
  for (auto& group : param_groups_) {
    auto& options = static_cast<torch::optim::AdamOptions&>(group.options());
    const auto [beta1, beta2] = options.betas();
    std::map<std::tuple<std::string, int, std::int64_t>, Bucket> buckets;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      TORCH_CHECK(!p.grad().is_sparse(), "MultiTensorAdam does not support sparse gradients");
      const auto key = state_key<Key>(p);
      auto found = state_.find(key);
      if (found == state_.end()) {  // as torch's Adam initialises it
        auto state = std::make_unique<torch::optim::AdamParamState>();
        state->step(0);
        state->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        state->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        if (options.amsgrad()) state->max_exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        found = state_.emplace(key, std::move(state)).first;
      }
      auto& state = static_cast<torch::optim::AdamParamState&>(*found->second);
      state.step(state.step() + 1);
      auto grad = p.grad();
      if (options.weight_decay() != 0) grad = grad.add(p, options.weight_decay());
      if (options.amsgrad()) {  // torch's formula, one tensor at a time
        const double bc1 = 1 - std::pow(beta1, state.step()), bc2 = 1 - std::pow(beta2, state.step());
        state.exp_avg().mul_(beta1).add_(grad, 1 - beta1);
        state.exp_avg_sq().mul_(beta2).addcmul_(grad, grad, 1 - beta2);
        auto& max_sq = state.max_exp_avg_sq();
        torch::max_out(max_sq, state.exp_avg_sq(), max_sq);
        auto denom = (max_sq.sqrt() / std::sqrt(bc2)).add_(options.eps());
        p.addcdiv_(state.exp_avg(), denom, -options.lr() / bc1);
        continue;
      }
      auto& b = buckets[{p.device().str(), static_cast<int>(p.scalar_type()), state.step()}];
      b.params.push_back(p);
      b.grads.push_back(grad);
      b.exp_avgs.push_back(state.exp_avg());
      b.exp_avg_sqs.push_back(state.exp_avg_sq());
    }
    for (auto& [key, b] : buckets) {
      const auto step = std::get<2>(key);
      const double bc1 = 1 - std::pow(beta1, step), bc2 = 1 - std::pow(beta2, step);
      at::_foreach_mul_(b.exp_avgs, beta1);
      at::_foreach_add_(b.exp_avgs, b.grads, 1 - beta1);
      at::_foreach_mul_(b.exp_avg_sqs, beta2);
      at::_foreach_addcmul_(b.exp_avg_sqs, b.grads, b.grads, 1 - beta2);
      auto denom = at::_foreach_sqrt(b.exp_avg_sqs);
      at::_foreach_div_(denom, std::sqrt(bc2));
      at::_foreach_add_(denom, options.eps());
      at::_foreach_addcdiv_(b.params, b.exp_avgs, denom, -options.lr() / bc1);
    }
  }
  return loss;
}

double clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  auto norms = at::_foreach_norm(grads, 2);
  auto total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
  // The coefficient in the gradients' dtype, as torch computes it; read once, with the norm.
  auto coef = torch::clamp_max(max_norm / (total + 1e-6), 1.0);
  auto both = torch::stack({total.to(torch::kDouble), coef.to(torch::kDouble)}).cpu();
  const double total_norm = both[0].item<double>(), scale = both[1].item<double>();
  if (scale < 1.0) at::_foreach_mul_(grads, scale);
  return total_norm;
}

}  // namespace lamia
