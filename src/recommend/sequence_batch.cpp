#include "sequence_batch.hpp"

#include <lamia/core/errors.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>

namespace lamia::detail {

const std::vector<std::int64_t>& item_text_of(const ItemTextTokens& item_text, ItemIndex item, const char* what) {
  if (item < 0 || std::size_t(item) >= item_text.size()) {
    throw IndexError(fmt::format("{}: item {} has no text tokens (the item texts cover {} items)", what, item,
                                 item_text.size()));
  }
  return item_text[std::size_t(item)];
}

void append_item(LabelledSequence& s, const SemanticIdTable& table, const CodeVocabulary& vocab, ItemIndex item,
                 const ItemTextTokens* item_text, std::int64_t text_budget, bool label_codes) {
  if (item_text && text_budget > 0) {
    const auto& text = item_text_of(*item_text, item, "recommender item text");
    const auto n = std::min<std::int64_t>(text_budget, std::int64_t(text.size()));
    for (std::int64_t i = 0; i < n; ++i) {
      const auto t = text[std::size_t(i)];
      if (t < 0 || t >= vocab.text_vocab_size()) {
        throw ValueError(fmt::format("recommender item text: token {} of item {} is outside the text vocabulary "
                                     "[0, {})", t, item, vocab.text_vocab_size()));
      }
      s.push(t, false);
    }
  }
  const auto W = vocab.num_levels();
  std::vector<std::int64_t> codes(static_cast<std::size_t>(W));
  vocab.item_tokens(table, item, codes.data());
  for (auto c : codes) s.push(c, label_codes);
}

RecommenderBatch batch_of_sequences(const std::vector<LabelledSequence>& seqs, std::int64_t pad) {
  RecommenderBatch out;
  const auto B = std::int64_t(seqs.size());
  std::int64_t T = 0;
  for (const auto& s : seqs) T = std::max<std::int64_t>(T, std::int64_t(s.tokens.size()) - 1);
  out.input_ids = torch::full({B, T}, pad, torch::kInt64);
  out.position_ids = torch::zeros({B, T}, torch::kInt64);
  out.labels = torch::full({B, T}, kRecommenderIgnoreLabel, torch::kInt64);
  auto key_mask = torch::zeros({B, T}, torch::kBool);
  auto* in = out.input_ids.data_ptr<std::int64_t>();
  auto* pos = out.position_ids.data_ptr<std::int64_t>();
  auto* lab = out.labels.data_ptr<std::int64_t>();
  auto* key = key_mask.data_ptr<bool>();
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& s = seqs[std::size_t(b)];
    const auto n = std::int64_t(s.tokens.size()) - 1;  // inputs: all but the last token
    const auto start = T - n;
    for (std::int64_t t = 0; t < n; ++t) {
      in[b * T + start + t] = s.tokens[std::size_t(t)];
      pos[b * T + start + t] = t;
      key[b * T + start + t] = true;
      if (s.labelled[std::size_t(t + 1)]) {
        lab[b * T + start + t] = s.tokens[std::size_t(t + 1)];
        ++out.label_count;
      }
    }
    out.tokens += std::max<std::int64_t>(n, 0);
  }
  out.attention_mask = causal_padded_mask(key_mask);
  return out;
}

}  // namespace lamia::detail
