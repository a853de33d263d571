#include "sequence_batch.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/nn/checkpoint.hpp>
#include <lamia/nn/lora.hpp>
#include <lamia/recommend/lm_backbone.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <tuple>
#include <utility>

namespace lamia {

std::int64_t lm_positions_needed(const CodeVocabulary& vocab, const RecommenderModelOptions& options) {
  const auto W = vocab.num_levels();
  const auto recommendation = 1 + options.max_history_items * (W + options.item_text_tokens) + W;
  const auto alignment = 1 + options.align_text_tokens + W;
  return std::max(recommendation, alignment);
}

void grow_token_embeddings(DecoderImpl& model, std::int64_t new_vocab_size, std::uint64_t seed) {
  const auto old = model.options().vocab_size();
  if (new_vocab_size < old) {
    throw ValueError(fmt::format("grow_token_embeddings: the model has {} tokens, cannot grow to {}", old,
                                 new_vocab_size));
  }
  if (new_vocab_size == old) return;
  torch::NoGradGuard no_grad;
  // Mean and spread of the old rows, before the resize.
  auto stats = [](const torch::Tensor& w) {
    auto mean = w.mean(0);
    auto spread = 0.1 * (w - mean).pow(2).mean().sqrt();
    return std::pair{mean, spread};
  };
  auto [embed_mean, embed_spread] = stats(model.embed_tokens_->weight);
  torch::Tensor head_mean, head_spread;
  if (model.lm_head) std::tie(head_mean, head_spread) = stats(model.lm_head->weight);
  model.resize_token_embeddings(new_vocab_size);
  torch::manual_seed(seed);
  const auto added = new_vocab_size - old;
  auto fill = [&](torch::Tensor& w, const torch::Tensor& mean, const torch::Tensor& spread) {
    auto noise = torch::randn({added, w.size(1)}, w.options().requires_grad(false));
    w.narrow(0, old, added).copy_(mean.unsqueeze(0) + spread * noise);
  };
  fill(model.embed_tokens_->weight, embed_mean, embed_spread);
  if (model.lm_head) fill(model.lm_head->weight, head_mean, head_spread);
}

void train_new_embedding_rows_only(DecoderImpl& model, std::int64_t first_row) {
  if (first_row < 0 || first_row > model.options().vocab_size()) {
    throw ValueError(fmt::format("train_new_embedding_rows_only: first_row must be 0 to {}, got {}",
                                 model.options().vocab_size(), first_row));
  }
  auto only_new_rows = [first_row](torch::Tensor& w) {
    w.set_requires_grad(true);
    w.register_hook([first_row](torch::Tensor grad) {
      auto g = grad.clone();
      g.narrow(0, 0, first_row).zero_();
      return g;
    });
  };
  only_new_rows(model.embed_tokens_->weight);
  if (model.lm_head) only_new_rows(model.lm_head->weight);
}

Decoder make_lm_recommender(const CodeVocabulary& vocab, const RecommenderModelOptions& options, std::uint64_t seed) {
  options.check();
  if (vocab.text_vocab_size() <= 0) {
    throw ValueError("make_lm_recommender: the vocabulary has no text part (build it with CodeVocabulary::after_text)");
  }
  const auto needed = lm_positions_needed(vocab, options);
  if (options.pretrained.empty()) {
    torch::manual_seed(seed);
    return Decoder(options.decoder_options(vocab.size())
                       .max_position_embeddings(needed)
                       .pad_token_id(vocab.pad()));
  }
  auto model = load_pretrained(options.pretrained);
  const auto& mo = model->options();
  if (mo.vocab_size() != vocab.text_vocab_size()) {
    throw ValueError(fmt::format("make_lm_recommender: the checkpoint '{}' has {} tokens, the vocabulary's text part "
                                 "{} (the code tokens must follow the checkpoint's own rows)",
                                 options.pretrained.string(), mo.vocab_size(), vocab.text_vocab_size()));
  }
  if (mo.max_position_embeddings() < needed) {
    throw ValueError(fmt::format("make_lm_recommender: the checkpoint '{}' has {} positions, the sequences need {} "
                                 "(fewer max_history_items, item_text_tokens or align_text_tokens)",
                                 options.pretrained.string(), mo.max_position_embeddings(), needed));
  }
  grow_token_embeddings(*model, vocab.size(), seed);
  if (options.lora_rank > 0) {
    apply_lora(*model, LoraOptions(options.lora_rank));
    train_new_embedding_rows_only(*model, vocab.text_vocab_size());
  }
  return model;
}

RecommenderBatch make_alignment_batch(const SemanticIdTable& table, const CodeVocabulary& vocab,
                                      const ItemTextTokens& item_text, const std::vector<ItemIndex>& items,
                                      std::int64_t max_text_tokens) {
  if (vocab.text_vocab_size() <= 0) {
    throw ValueError("make_alignment_batch: the vocabulary has no text part (the alignment task needs the LM backbone)");
  }
  if (max_text_tokens < 0) {
    throw ValueError(fmt::format("make_alignment_batch: max_text_tokens must be >= 0, got {}", max_text_tokens));
  }
  vocab.check_table(table, "make_alignment_batch");
  std::vector<detail::LabelledSequence> seqs(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto item = items[i];
    if (item < 0 || item >= table.num_items()) {
      throw IndexError(fmt::format("make_alignment_batch: item {} is not in the semantic-ID table ({} items)", item,
                                   table.num_items()));
    }
    seqs[i].push(vocab.bos(), false);
    detail::append_item(seqs[i], table, vocab, item, &item_text, max_text_tokens, /*label_codes=*/true);
  }
  return detail::batch_of_sequences(seqs, vocab.pad());
}

}  // namespace lamia
