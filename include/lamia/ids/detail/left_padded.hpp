#pragma once
// The left-padded [B, T] layout of EncodedHistories, written once for the codes-only encoder
// (encode_histories, ids) and the recommender's histories with item text prompts (recommend).
#include <lamia/ids/code_vocabulary.hpp>

#include <cstdint>
#include <functional>
#include <vector>

namespace lamia::detail {

/// B rows, row(b) its tokens (BOS first), each right-aligned in [B, T] (T: the longest row) with pad
/// on the left: tokens, lengths, position_ids 0.. over the real tokens (0 on padding) and key_mask.
/// skipped_unknown and empty_rows are left at 0 for the caller.
EncodedHistories left_padded_histories(std::int64_t B, const std::function<const std::vector<std::int64_t>&(std::int64_t)>& row,
                                       std::int64_t pad);

}  // namespace lamia::detail
