#pragma once
// The token layout of a generative recommender over semantic IDs, and histories encoded in it.
//
// Code tokens are position-specific (DESIGN.md, "Generative recommender"): level l of an ID (the L
// codes, then the index token as level L) owns a contiguous run of codebook_sizes[l] tokens, so
//   token(l, code) = kFirstCodeToken + offset(l) + code,   offset(l) = sum of the sizes before l.
// Token 0 pads, token 1 starts every history (BOS). A history of n known items is
// [BOS, id(item_1)..., id(item_n)...], 1 + n (L+1) tokens; the next item's L+1 tokens follow it.
// The language-model backbone's layout (after_text) puts a text vocabulary of t tokens first, with its
// own BOS and pad among them, and the code tokens after it: token(l, code) = t + offset(l) + code.
//
//   auto vocab = lamia::CodeVocabulary::for_table(table);
//   auto batch = lamia::encode_histories(table, vocab, {{3, 17, 5}, {8}}, 20);  // left-padded
#include <lamia/data/catalog.hpp>
#include <lamia/ids/semantic_id_table.hpp>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace lamia {

class CodeVocabulary {
 public:
  static constexpr std::int64_t kPad = 0;
  static constexpr std::int64_t kBos = 1;
  static constexpr std::int64_t kFirstCodeToken = 2;

  CodeVocabulary() = default;
  /// level_sizes: one entry per ID level (L codes and the index token), each >= 1.
  explicit CodeVocabulary(std::vector<std::int64_t> level_sizes);
  /// The layout of a table's IDs (its codebook_sizes(), index token included).
  static CodeVocabulary for_table(const SemanticIdTable& table);
  /// The layout after a text vocabulary of text_vocab_size tokens (ids 0 .. text_vocab_size - 1):
  /// the code tokens start at text_vocab_size; bos and pad are text tokens (ValueError otherwise).
  static CodeVocabulary after_text(std::vector<std::int64_t> level_sizes, std::int64_t text_vocab_size,
                                   std::int64_t bos, std::int64_t pad);

  /// Tokens before the code tokens that belong to a text vocabulary (0: the codes-only layout).
  std::int64_t text_vocab_size() const noexcept { return text_size_; }
  /// The first code token: kFirstCodeToken, or text_vocab_size() after a text vocabulary.
  std::int64_t first_code_token() const noexcept { return text_size_ > 0 ? text_size_ : kFirstCodeToken; }
  /// The token that starts every history (kBos, or the text vocabulary's).
  std::int64_t bos() const noexcept { return bos_; }
  /// The padding token (kPad, or the text vocabulary's).
  std::int64_t pad() const noexcept { return pad_; }

  /// L + 1.
  std::int64_t num_levels() const noexcept { return std::int64_t(sizes_.size()); }
  /// Every token, specials included: the decoder's vocabulary size.
  std::int64_t size() const noexcept { return first_code_token() + (offsets_.empty() ? 0 : offsets_.back()); }
  const std::vector<std::int64_t>& level_sizes() const noexcept { return sizes_; }
  /// First token of a level.
  std::int64_t level_begin(std::int64_t level) const;
  /// The token of `code` at `level`; throws IndexError when either is out of range.
  std::int64_t token(std::int64_t level, std::int64_t code) const;
  /// (level, code) of a code token; throws IndexError for a special or unknown token.
  std::pair<std::int64_t, std::int64_t> code_of(std::int64_t token) const;
  /// The L+1 tokens of an item's ID written to out.
  void item_tokens(const SemanticIdTable& table, ItemIndex item, std::int64_t* out) const;
  /// n x (L+1) int64: every item's tokens (row i = item i).
  torch::Tensor all_item_tokens(const SemanticIdTable& table) const;
  /// Throws ValueError, naming both layouts, unless table's IDs have exactly this layout.
  void check_table(const SemanticIdTable& table, const char* what = "recommender") const;

  bool operator==(const CodeVocabulary& other) const {
    return sizes_ == other.sizes_ && text_size_ == other.text_size_ && bos_ == other.bos_ && pad_ == other.pad_;
  }
  bool operator!=(const CodeVocabulary& other) const { return !(*this == other); }

 private:
  std::vector<std::int64_t> sizes_;
  std::vector<std::int64_t> offsets_;  // num_levels + 1 prefix sums
  std::int64_t text_size_ = 0;
  std::int64_t bos_ = kBos;
  std::int64_t pad_ = kPad;
};

/// {"level_sizes": [...]}, plus "text_vocab_size", "bos", "pad" after a text vocabulary.
void to_json(nlohmann::json& j, const CodeVocabulary& vocab);
void from_json(const nlohmann::json& j, CodeVocabulary& vocab);

/// A batch of histories in the code-token layout, left-padded so that every row ends at the last
/// column (the next token is predicted from the last position of every row at once).
struct EncodedHistories {
  torch::Tensor tokens;        ///< [B, T] int64, the vocabulary's pad on the left of shorter rows
  torch::Tensor lengths;       ///< [B] int64: real tokens per row (1 + items * (L+1))
  torch::Tensor position_ids;  ///< [B, T] int64: 0.. over the real tokens, 0 on padding
  torch::Tensor key_mask;      ///< [B, T] bool: true on real tokens
  /// History items that the table does not know (index < 0 or >= num_items), skipped, over the batch.
  std::int64_t skipped_unknown = 0;
  /// Rows whose history held no known item: they are only [BOS] (the model then predicts from
  /// nothing but the start token, i.e. a popularity-like prior).
  std::int64_t empty_rows = 0;
};

/// Encodes each history (oldest first), keeping its last max_items known items (0: all).
/// The [B, T, T] attention mask of the first forward pass is causal_padded_mask(key_mask).
EncodedHistories encode_histories(const SemanticIdTable& table, const CodeVocabulary& vocab,
                                  const std::vector<std::vector<ItemIndex>>& histories, std::int64_t max_items = 20);

/// [B, T, T] bool: row i may attend key j iff j <= i and key_mask[j] (left-padded rows: the pad
/// rows attend nothing, which the decoder turns into zeros, never NaN).
torch::Tensor causal_padded_mask(const torch::Tensor& key_mask);

}  // namespace lamia
