#include <lamia/core/errors.hpp>
#include <lamia/nn/gradient_sync.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

namespace lamia {

void broadcast_parameters(torch::nn::Module& module, GradientSync& sync) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> tensors;
  for (auto& p : module.parameters()) tensors.push_back(p);
  for (auto& b : module.buffers()) tensors.push_back(b);
  sync.broadcast(tensors);
}

std::vector<torch::Tensor> GradientSync::all_gather(const torch::Tensor& tensor) {
  TORCH_CHECK_VALUE(tensor.defined(), "GradientSync::all_gather: the tensor is undefined");
  auto mine = tensor.to(torch::kCPU).contiguous();
  auto parts = gather(mine);
  std::vector<std::int64_t> shape{world_size()};
  shape.insert(shape.end(), mine.sizes().begin(), mine.sizes().end());
  auto all = rank() == 0 ? torch::stack(parts) : torch::empty(shape, mine.options());
  broadcast({all});
  return all.unbind(0);
}

void average_gradients(const std::vector<torch::Tensor>& parameters, GradientSync& sync) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  grads.reserve(parameters.size());
  for (const auto& p : parameters) {
    auto& g = p.mutable_grad();
    if (!g.defined()) g = torch::zeros_like(p);
    grads.push_back(g);
  }
  sync.all_reduce_mean(grads);
}

std::pair<std::int64_t, std::int64_t> shard_bounds(std::int64_t n, std::int64_t rank, std::int64_t world_size,
                                                   const char* what) {
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    throw ValueError(fmt::format("{}: rank must be in [0, world_size), got rank {} of {}", what, rank, world_size));
  }
  if (n < 0) throw ValueError(fmt::format("{}: the batch size must be >= 0, got {}", what, n));
  return {rank * n / world_size, (rank + 1) * n / world_size};
}

}  // namespace lamia
