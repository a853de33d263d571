#include <lamia/palette/attention_mask.hpp>

#include <torch/torch.h>

namespace lamia {

torch::Tensor palette_attention_mask(const torch::Tensor& block_types) {
  TORCH_CHECK_VALUE(block_types.defined(), "palette_attention_mask: block_types is undefined");
  TORCH_CHECK_VALUE(block_types.dim() == 1 || block_types.dim() == 2,
                    "palette_attention_mask: block_types must be [T] or [B, T], got ", block_types.sizes());
  TORCH_CHECK_VALUE(block_types.scalar_type() == torch::kInt64,
                    "palette_attention_mask: block_types must be int64, got ", block_types.scalar_type());
  if (block_types.dim() == 1) return palette_attention_mask(block_types.unsqueeze(0)).squeeze(0);
  const auto T = block_types.size(1);
  auto q = block_types.unsqueeze(2);  // [B, T, 1]
  auto k = block_types.unsqueeze(1);  // [B, 1, T]
  auto idx = torch::arange(T, block_types.options());
  auto causal = (idx.unsqueeze(1) >= idx.unsqueeze(0)).unsqueeze(0);  // [1, T(q), T(k)]
  auto is = [](const torch::Tensor& t, Block b) { return t == static_cast<std::int64_t>(b); };
  auto same_block = (q == k) & causal & (q != static_cast<std::int64_t>(Block::kPad));
  auto lap_reads_content = is(q, Block::kLaP) & is(k, Block::kContent);
  auto task_reads_ldp = is(q, Block::kTask) & is(k, Block::kLdP);
  return same_block | lap_reads_content | task_reads_ldp;
}

bool palette_may_attend(Block query, std::int64_t query_column, Block key, std::int64_t key_column) {
  if (query == Block::kPad || key == Block::kPad) return false;
  if (query == key) return key_column <= query_column;
  if (query == Block::kLaP && key == Block::kContent) return true;
  if (query == Block::kTask && key == Block::kLdP) return true;
  return false;
}

}  // namespace lamia
