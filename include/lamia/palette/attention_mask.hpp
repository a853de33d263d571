#pragma once
// The hierarchical attention mask of the palette encoder (DESIGN.md, "Palette encoder"), a pure
// function of the block layout. Query row q may attend key column k when:
//   | query \ key | content | LaP    | LdP    | task   |
//   | content     | causal  | -      | -      | -      |
//   | LaP         | all     | causal | -      | -      |
//   | LdP         | -       | -      | causal | -      |
//   | task        | -       | -      | all    | causal |
// "causal" is k <= q within the block; padding rows and columns attend / are attended by nothing.
//
// TaskRouting::kOnePosition (the positive control of issue 11, not the paper's) changes two cells:
// a task row of task i reads only LdP_(i mod L) of the LdP block, and each LdP row reads only itself
// (else LdP_j's hidden states would carry palettes 1..j-1 into the column the task reads).
#include <lamia/palette/blocks.hpp>

#include <torch/types.h>

#include <array>
#include <utility>

namespace lamia {

/// Which LdP vectors a task reads.
enum class TaskRouting {
  /// Every task reads all L LdP vectors (the paper).
  kAll,
  /// Task i reads only LdP_(i mod L); the LdP block attends diagonally (each position to itself).
  kOnePosition,
};
constexpr auto enum_names(TaskRouting) {
  return std::array{std::pair{TaskRouting::kAll, "all"}, std::pair{TaskRouting::kOnePosition, "one_position"}};
}

/// block_types: [B, T] (or [T]) int64 Block values, blocks contiguous within a row (any subset,
/// e.g. only [content; LaP] or [LdP; task]). Returns a bool mask [B, T, T] (or [T, T]),
/// true where query row may attend key column, on block_types' device.
/// Example: auto mask = palette_attention_mask(batch.full.block_types);
torch::Tensor palette_attention_mask(const torch::Tensor& block_types);

/// The mask under a task routing. sample_tasks: [B] (or 0-d for [T]) int64, the 0-based task of
/// each row; needed by kOnePosition only (ValueError when missing or of the wrong size). L of a row
/// is its number of LdP columns.
/// Example: palette_attention_mask(batch.decode.block_types, TaskRouting::kOnePosition, tasks);
torch::Tensor palette_attention_mask(const torch::Tensor& block_types, TaskRouting routing,
                                     const torch::Tensor& sample_tasks);

/// The table above for one cell: may a query in block q at column qi attend a key in block k at
/// column ki (same row)? For tests and documentation (TaskRouting::kAll).
bool palette_may_attend(Block query, std::int64_t query_column, Block key, std::int64_t key_column);

}  // namespace lamia
