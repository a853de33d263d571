#pragma once
// Training a byte-level BPE vocabulary from texts (the tokenizer of models
// trained from scratch: the built-in default and all CPU runs).
//
// Texts are split with the GPT-2 pre-tokenizer (lamia/text/pretokenizer.hpp),
// so the trained tokenizer encodes exactly as a Hugging Face GPT-2 tokenizer
// with the same vocab.json and merges.txt would.
//
// Vocabulary layout: the special tokens first (ids 0 .. s-1, in the order
// given), then the 256 byte tokens in GPT-2's order (so a trained vocabulary
// without special tokens starts like GPT-2's), then one token per merge.
//
// Each step merges the most frequent adjacent pair (counts weighted by piece
// frequency); ties go to the pair whose (left id, right id) is smallest, so
// training is deterministic. Pair counts are updated incrementally.
//
// Example:
//   BpeTrainerOptions options;
//   options.vocab_size = 4096;
//   ByteLevelBpeTokenizer tok = train_bpe(texts, options);
#include <lamia/core/options.hpp>
#include <lamia/text/byte_level_bpe.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lamia {

class Catalog;

struct BpeTrainerOptions {
  /// Size of the trained vocabulary: special tokens + 256 bytes + merges.
  /// Must be at least 256 + special tokens. Training stops earlier when no pair
  /// reaches min_frequency.
  std::size_t vocab_size = 4096;
  /// A pair must occur at least this often (>= 1) to be merged.
  std::size_t min_frequency = 2;
  /// Special tokens, at the start of the vocabulary in this order (duplicates
  /// are ignored). The role tokens below are added here when missing.
  std::vector<std::string> special_tokens = {"<s>", "<pad>", "</s>", "<unk>"};
  /// Role tokens (empty: no such role). Defaults follow OPT's layout: <s> 0, <pad> 1, </s> 2, <unk> 3.
  std::string bos_token = "<s>";
  std::string eos_token = "</s>";
  std::string pad_token = "<pad>";
  std::string unk_token = "<unk>";
  /// encode_with_special_tokens() of the trained tokenizer prepends bos / appends eos.
  bool add_bos_token = false;
  bool add_eos_token = false;
};

/// The fields of BpeTrainerOptions (JSON, Python).
template <class V>
void visit_fields(BpeTrainerOptions& o, V&& v) {
  v.field("vocab_size", o.vocab_size, "special tokens + 256 bytes + merges (>= 256 + special tokens)",
          options::at_least(256));
  v.field("min_frequency", o.min_frequency, "a pair must occur this often to be merged", options::at_least(1));
  v.field("special_tokens", o.special_tokens, "special tokens at the start of the vocabulary, in this order");
  v.field("bos_token", o.bos_token, "beginning-of-sequence token ('' for none)");
  v.field("eos_token", o.eos_token, "end-of-sequence token ('' for none)");
  v.field("pad_token", o.pad_token, "padding token ('' for none)");
  v.field("unk_token", o.unk_token, "unknown token ('' for none)");
  v.field("add_bos_token", o.add_bos_token, "encode_with_special_tokens() prepends bos");
  v.field("add_eos_token", o.add_eos_token, "encode_with_special_tokens() appends eos");
}

/// What training did (the faiss habit: the algorithm reports, it does not print).
struct BpeTrainerReport {
  std::size_t num_texts = 0;
  std::size_t num_bytes = 0;
  std::size_t num_pieces = 0;         ///< pre-tokenized pieces, with repeats
  std::size_t num_unique_pieces = 0;  ///< distinct pieces
  std::size_t num_merges = 0;
  /// Count of each merge when it was made (non-increasing up to ties).
  std::vector<std::size_t> merge_counts;
  /// "vocab_size reached" or "no pair reaches min_frequency".
  std::string stop_reason;
  double seconds = 0.0;
};

/// Trains on texts. Throws ValueError for an impossible vocab_size or
/// min_frequency == 0, naming the value received.
ByteLevelBpeTokenizer train_bpe(const std::vector<std::string>& texts, const BpeTrainerOptions& options = {},
                                BpeTrainerReport* report = nullptr);
ByteLevelBpeTokenizer train_bpe(const std::vector<std::string_view>& texts, const BpeTrainerOptions& options = {},
                                BpeTrainerReport* report = nullptr);

/// The training texts of a catalog: every non-empty attribute value, rendered
/// "name: value" when with_attribute_names (as the palette encoder's content
/// does), otherwise the bare value. One text per item and attribute.
std::vector<std::string> catalog_texts(const Catalog& catalog, bool with_attribute_names = true);

/// train_bpe(catalog_texts(catalog, with_attribute_names), options, report).
ByteLevelBpeTokenizer train_bpe(const Catalog& catalog, const BpeTrainerOptions& options = {},
                                BpeTrainerReport* report = nullptr, bool with_attribute_names = true);

}  // namespace lamia
