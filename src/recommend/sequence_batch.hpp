#pragma once
// Token sequences with per-token label flags, turned into the left-padded batches of the generative
// recommender (recommendation and text-token alignment examples alike, mixed in one batch).
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/ids/semantic_id_table.hpp>
#include <lamia/recommend/generative_recommender.hpp>

#include <cstdint>
#include <vector>

namespace lamia::detail {

struct LabelledSequence {
  std::vector<std::int64_t> tokens;
  std::vector<char> labelled;  ///< labelled[t]: tokens[t] is predicted in the loss (from position t - 1)

  void push(std::int64_t token, bool label) {
    tokens.push_back(token);
    labelled.push_back(char(label));
  }
};

/// Appends item's text prompt (its first text_budget tokens of item_text, when item_text is non-null
/// and text_budget > 0; never labelled) and its L+1 code tokens (labelled when label_codes).
void append_item(LabelledSequence& s, const SemanticIdTable& table, const CodeVocabulary& vocab, ItemIndex item,
                 const ItemTextTokens* item_text, std::int64_t text_budget, bool label_codes);

/// The batch of sequences: inputs are each sequence but its last token, left-padded with pad, positions
/// 0.. over the real tokens; the label of input position t is tokens[t + 1] where labelled[t + 1].
RecommenderBatch batch_of_sequences(const std::vector<LabelledSequence>& seqs, std::int64_t pad);

/// The text tokens of item (IndexError naming it when item_text does not cover it).
const std::vector<std::int64_t>& item_text_of(const ItemTextTokens& item_text, ItemIndex item, const char* what);

}  // namespace lamia::detail
