#include <lamia/palette/attention_mask.hpp>

#include <torch/torch.h>

namespace lamia {

torch::Tensor palette_attention_mask(const torch::Tensor& block_types) {
  return palette_attention_mask(block_types, TaskRouting::kAll, torch::Tensor());
}

torch::Tensor palette_attention_mask(const torch::Tensor& block_types, TaskRouting routing,
                                     const torch::Tensor& sample_tasks) {
  TORCH_CHECK_VALUE(block_types.defined(), "palette_attention_mask: block_types is undefined");
  TORCH_CHECK_VALUE(block_types.dim() == 1 || block_types.dim() == 2,
                    "palette_attention_mask: block_types must be [T] or [B, T], got ", block_types.sizes());
  TORCH_CHECK_VALUE(block_types.scalar_type() == torch::kInt64,
                    "palette_attention_mask: block_types must be int64, got ", block_types.scalar_type());
  if (block_types.dim() == 1) {
    auto tasks = sample_tasks.defined() ? sample_tasks.reshape({1}) : sample_tasks;
    return palette_attention_mask(block_types.unsqueeze(0), routing, tasks).squeeze(0);
  }
  const auto T = block_types.size(1);
  auto q = block_types.unsqueeze(2);  // [B, T, 1]
  auto k = block_types.unsqueeze(1);  // [B, 1, T]
  auto idx = torch::arange(T, block_types.options());
  auto causal = (idx.unsqueeze(1) >= idx.unsqueeze(0)).unsqueeze(0);  // [1, T(q), T(k)]
  auto is = [](const torch::Tensor& t, Block b) { return t == static_cast<std::int64_t>(b); };
  auto same_block = (q == k) & causal & (q != static_cast<std::int64_t>(Block::kPad));
  auto lap_reads_content = is(q, Block::kLaP) & is(k, Block::kContent);
  auto task_reads_ldp = is(q, Block::kTask) & is(k, Block::kLdP);
  if (routing == TaskRouting::kAll) return same_block | lap_reads_content | task_reads_ldp;
  const auto B = block_types.size(0);
  TORCH_CHECK_VALUE(sample_tasks.defined() && sample_tasks.dim() == 1 && sample_tasks.size(0) == B,
                    "palette_attention_mask: task_routing 'one_position' needs sample_tasks [B] = [", B, "], got ",
                    sample_tasks.defined() ? sample_tasks.sizes() : torch::IntArrayRef{});
  auto ldp = block_types == static_cast<std::int64_t>(Block::kLdP);           // [B, T]
  auto ldp_position = ldp.to(torch::kInt64).cumsum(1) - 1;                     // j of LdP_j (0-based)
  auto L = ldp.sum(1).clamp_min(1);                                            // [B]
  auto routed = sample_tasks.to(block_types.device()).to(torch::kInt64).remainder(L);  // [B]
  auto routed_key = (ldp & (ldp_position == routed.unsqueeze(1))).unsqueeze(1);  // [B, 1, T]
  auto diagonal = (idx.unsqueeze(1) == idx.unsqueeze(0)).unsqueeze(0);
  auto ldp_off_diagonal = is(q, Block::kLdP) & ~diagonal;
  return (same_block & ~ldp_off_diagonal) | lap_reads_content | (is(q, Block::kTask) & routed_key);
}

bool palette_may_attend(Block query, std::int64_t query_column, Block key, std::int64_t key_column) {
  if (query == Block::kPad || key == Block::kPad) return false;
  if (query == key) return key_column <= query_column;
  if (query == Block::kLaP && key == Block::kContent) return true;
  if (query == Block::kTask && key == Block::kLdP) return true;
  return false;
}

}  // namespace lamia
