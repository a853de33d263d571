#include <lamia/core/errors.hpp>
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/recommend/generative_recommender.hpp>
#include <lamia/recommend/prod_score.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <limits>

namespace lamia {

std::vector<std::int64_t> prod_ranks(DecoderImpl& model, const SemanticIdTable& table,
                                     const std::vector<SequenceExample>& examples, std::int64_t max_history_items,
                                     std::int64_t batch_size) {
  return prod_ranks(model, table, CodeVocabulary::for_table(table), examples, max_history_items, batch_size);
}

std::vector<std::int64_t> prod_ranks(DecoderImpl& model, const SemanticIdTable& table, const CodeVocabulary& vocab,
                                     const std::vector<SequenceExample>& examples, std::int64_t max_history_items,
                                     std::int64_t batch_size, const ItemTextTokens* item_text,
                                     std::int64_t item_text_tokens) {
  if (batch_size < 1) throw ValueError(fmt::format("prod_ranks: batch_size must be >= 1, got {}", batch_size));
  vocab.check_table(table, "prod_ranks");
  if (model.options().vocab_size() != vocab.size()) {
    throw ValueError(fmt::format("prod_ranks: the model has a vocabulary of {} tokens, the table's IDs need {} (a "
                                 "recommender of another table?)",
                                 model.options().vocab_size(), vocab.size()));
  }
  const auto W = vocab.num_levels();
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<std::int64_t> out;
  out.reserve(examples.size());
  for (std::size_t begin = 0; begin < examples.size(); begin += std::size_t(batch_size)) {
    const auto end = std::min(examples.size(), begin + std::size_t(batch_size));
    std::vector<const SequenceExample*> chunk;
    for (auto i = begin; i < end; ++i) chunk.push_back(&examples[i]);
    // Labels only on the target's W tokens: exactly the teacher-forced positions RecBench reads.
    auto batch = make_recommender_batch(table, vocab, chunk, max_history_items, /*loss_on_history=*/false, item_text,
                                        item_text ? item_text_tokens : 0);
    auto [logits, target] = labelled_logits(model, batch);
    const auto B = std::int64_t(chunk.size());
    TORCH_CHECK(logits.size(0) == B * W, "prod_ranks: expected ", B * W, " target tokens, got ", logits.size(0));
    auto true_logit = logits.gather(1, target.unsqueeze(1));  // [B*W, 1]
    auto ranks = torch::empty({B, W}, torch::kInt64);
    auto logits3 = logits.view({B, W, -1});
    auto true3 = true_logit.view({B, W, 1});
    for (std::int64_t l = 0; l < W; ++l) {
      auto level = logits3.select(1, l).narrow(1, vocab.level_begin(l), vocab.level_sizes()[std::size_t(l)]);
      ranks.select(1, l).copy_((level > true3.select(1, l)).sum(1).add(1).cpu());
    }
    auto* r = ranks.data_ptr<std::int64_t>();
    for (std::int64_t b = 0; b < B; ++b) {
      std::int64_t prod = 1;
      for (std::int64_t l = 0; l < W; ++l) {
        const auto x = r[b * W + l];
        prod = prod > std::numeric_limits<std::int64_t>::max() / x ? std::numeric_limits<std::int64_t>::max()
                                                                   : prod * x;
      }
      out.push_back(prod);
    }
  }
  if (was_training) model.train();
  return out;
}

}  // namespace lamia
