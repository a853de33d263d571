#pragma once
// The hierarchical attention mask of the palette encoder (DESIGN.md, "Palette encoder"), a pure
// function of the block layout. Query row q may attend key column k when:
//   | query \ key | content | LaP    | LdP    | task   |
//   | content     | causal  | -      | -      | -      |
//   | LaP         | all     | causal | -      | -      |
//   | LdP         | -       | -      | causal | -      |
//   | task        | -       | -      | all    | causal |
// "causal" is k <= q within the block; padding rows and columns attend / are attended by nothing.
#include <lamia/palette/blocks.hpp>

#include <torch/types.h>

namespace lamia {

/// block_types: [B, T] (or [T]) int64 Block values, blocks contiguous within a row (any subset,
/// e.g. only [content; LaP] or [LdP; task]). Returns a bool mask [B, T, T] (or [T, T]),
/// true where query row may attend key column, on block_types' device.
/// Example: auto mask = palette_attention_mask(batch.full.block_types);
torch::Tensor palette_attention_mask(const torch::Tensor& block_types);

/// The table above for one cell: may a query in block q at column qi attend a key in block k at
/// column ki (same row)? For tests and documentation.
bool palette_may_attend(Block query, std::int64_t query_column, Block key, std::int64_t key_column);

}  // namespace lamia
