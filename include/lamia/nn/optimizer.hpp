#pragma once
// The training step's optimizer and gradient clipping in multi-tensor form. On a GPU a step of
// torch::optim::Adam launches about ten kernels per parameter tensor, and clip_grad_norm_ two; for
// a small model those launches, not the arithmetic, set the step's time. The at::_foreach_* ops used
// here do the same arithmetic on every tensor of a list at once (a few kernels in all on CUDA; the
// same per-tensor kernels on the CPU, so the CPU gives the same bits as torch's).

#include <torch/optim/adam.h>

#include <vector>

namespace lamia {

/// torch::optim::Adam whose step() runs on all parameters of a group together. The state (step,
/// exp_avg, exp_avg_sq per parameter) is torch's own, so save() and load() read and write the same
/// archives as torch::optim::Adam. Parameters whose state would need another path (sparse gradients,
/// amsgrad, tensors of differing device or dtype, differing step counts) fall back to one call per
/// tensor of the same formula.
class MultiTensorAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

/// torch::nn::utils::clip_grad_norm_ (2-norm) with the per-tensor norms and the scaling as
/// multi-tensor ops: scales every gradient by max_norm / (total + 1e-6) where that is below 1, and
/// returns the total norm of the gradients before clipping (one device synchronisation, as torch's).
double clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm);

}  // namespace lamia
