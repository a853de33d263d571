#pragma once
// Backbone (2) of the generative recommender: the language model of lamia/nn with the code tokens
// after its text vocabulary (CodeVocabulary::after_text), and the text-token alignment task of the
// paper's Figure 5 (an item's text tokens -> its L+1 code tokens, loss on the code tokens only).
//
// From scratch: a decoder of RecommenderModelOptions' size over text + code tokens. From a Hugging
// Face OPT folder (options.pretrained): its weights, the token embedding (and an untied head) grown
// by the code tokens, whose new rows start at the checkpoint's mean embedding plus small seeded
// noise; with options.lora_rank > 0 LoRA adapters on the checkpoint's weights, which stay frozen,
// while the code tokens' embedding rows train (a gradient hook zeroes the text rows' gradient, so
// with Adam and no weight decay they stay bit-identical).
//
//   auto tok = lamia::load_tokenizer("opt-125m");                 // lamia/text
//   auto vocab = lamia::CodeVocabulary::after_text(table.codebook_sizes(), 50272, /*bos*/ 2, /*pad*/ 1);
//   lamia::RecommenderModelOptions o;
//   o.backbone = lamia::RecommenderBackbone::lm;
//   o.pretrained = "opt-125m";
//   o.lora_rank = 8;
//   auto model = lamia::make_recommender(vocab, o, /*seed*/ 0);  // dispatches to make_lm_recommender
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/ids/semantic_id_table.hpp>
#include <lamia/recommend/generative_recommender.hpp>

#include <cstdint>
#include <vector>

namespace lamia {

/// The LM backbone (see the file comment). ValueError when a checkpoint's vocabulary is not
/// vocab.text_vocab_size() tokens, when its position table is too short for the options' sequences,
/// or when vocab has no text part.
Decoder make_lm_recommender(const CodeVocabulary& vocab, const RecommenderModelOptions& options, std::uint64_t seed = 0);

/// Grows model's token embedding (and an untied LM head) to new_vocab_size rows: the old rows are
/// kept bit for bit, each new row is the old rows' mean plus N(0, s^2) noise, s = 0.1 x the old
/// rows' root-mean-square distance to that mean per dimension, drawn after torch::manual_seed(seed).
/// ValueError when new_vocab_size is smaller than the current vocabulary.
void grow_token_embeddings(DecoderImpl& model, std::int64_t new_vocab_size, std::uint64_t seed);

/// Makes the token embedding (and an untied head) trainable for the rows from first_row on only:
/// requires_grad, and a gradient hook that zeroes the rows before first_row.
void train_new_embedding_rows_only(DecoderImpl& model, std::int64_t first_row);

/// Positions a sequence of the LM backbone needs: [BOS] + max_history_items items (their text
/// prompts when item_text_tokens > 0) + the target's L+1 codes, and for the alignment task
/// [BOS] + align_text_tokens + L+1 codes.
std::int64_t lm_positions_needed(const CodeVocabulary& vocab, const RecommenderModelOptions& options);

/// One text-token alignment batch (paper Figure 5): per item [BOS, its first max_text_tokens text
/// tokens, its L+1 code tokens], left-padded as make_recommender_batch; labels (next token) only at
/// the positions that predict a code token, -100 elsewhere. IndexError for an item outside the
/// table or the texts; ValueError when vocab has no text part or a text token is outside it.
RecommenderBatch make_alignment_batch(const SemanticIdTable& table, const CodeVocabulary& vocab,
                                      const ItemTextTokens& item_text, const std::vector<ItemIndex>& items,
                                      std::int64_t max_text_tokens);

}  // namespace lamia
