#pragma once
// The authors' (RecBench's) "prod" score, for comparison with numbers produced that way. It is NOT
// an item ranking: one teacher-forced pass over history + the target's L+1 tokens; at each ID level
// l the target's token gets its rank r_l among that level's tokens (1 + the number of tokens of the
// level with a strictly higher logit), and the user's "prod rank" is r_0 * r_1 * ... * r_L. A hit@K
// is prod rank <= K. Other items never compete as whole IDs, a prefix that is not a real item can
// outrank the target, and ranks of different items are not comparable, so lamia reports it under
// its own name beside the item-level metrics (DESIGN.md, "Evaluation protocol").
//
//   auto ranks = lamia::prod_ranks(*model, table, test);   // one per example
//   lamia::RankingMetrics m;  for (auto r : ranks) m.add(r);
#include <lamia/data/sequences.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/ids/semantic_id_table.hpp>
#include <lamia/recommend/generative_recommender.hpp>

#include <cstdint>
#include <vector>

namespace lamia {

/// The prod rank of each example's target (saturating at INT64_MAX), in eval mode without gradient.
/// Unknown history items are skipped, as in training; ValueError when the model's vocabulary does
/// not match the table's layout.
std::vector<std::int64_t> prod_ranks(DecoderImpl& model, const SemanticIdTable& table,
                                     const std::vector<SequenceExample>& examples, std::int64_t max_history_items = 20,
                                     std::int64_t batch_size = 256);
/// The same in vocab's layout (the LM backbone's: per position the rank among that level's code
/// tokens, text tokens not counted), with item text prompts when item_text is non-null
/// (make_recommender_batch).
std::vector<std::int64_t> prod_ranks(DecoderImpl& model, const SemanticIdTable& table, const CodeVocabulary& vocab,
                                     const std::vector<SequenceExample>& examples, std::int64_t max_history_items = 20,
                                     std::int64_t batch_size = 256, const ItemTextTokens* item_text = nullptr,
                                     std::int64_t item_text_tokens = 0);

}  // namespace lamia
