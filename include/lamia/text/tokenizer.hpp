#pragma once
// Tokenizer: the one interface every tokenizer in lamia implements (text <->
// token ids), and load_tokenizer() for Hugging Face tokenizer folders.
//
// Conventions shared by all implementations:
//  - encode(text) never adds special tokens and never matches special-token
//    strings inside text: "<LaP_1>" in user text is ordinary text. Use
//    encode(text, /*parse_special=*/true) to map such strings to their ids, and
//    encode_with_special_tokens() to also add bos/eos as the model expects.
//  - Added (special) tokens get ids appended after the base vocabulary, in the
//    order they are added, so vocab_size() grows by one per new token.
//  - decode() returns bytes (UTF-8 when the ids came from valid UTF-8 text).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lamia {

using TokenId = std::int32_t;

/// The ids of the tokens with a role; unset when the tokenizer has none.
struct SpecialTokenIds {
  std::optional<TokenId> bos, eos, pad, unk;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  /// Token ids of text; no special tokens are added and special-token strings
  /// in text are encoded as ordinary text.
  virtual std::vector<TokenId> encode(std::string_view text) const = 0;

  /// Like encode(text), but when parse_special is true every occurrence of an
  /// added/special token string (leftmost, longest first) becomes that token's id
  /// and the text between occurrences is encoded with encode(text).
  /// The default implementation searches the strings of added_tokens().
  /// (A subclass that overrides encode(text) should add `using Tokenizer::encode;`
  /// so that this overload stays visible through the subclass.)
  virtual std::vector<TokenId> encode(std::string_view text, bool parse_special) const;

  /// encode(text, /*parse_special=*/true) with bos prepended when
  /// add_bos_token() and eos appended when add_eos_token() (what Hugging Face's
  /// tokenizer(text) returns, e.g. OPT prepends </s>).
  std::vector<TokenId> encode_with_special_tokens(std::string_view text) const;

  /// The bytes the ids stand for, concatenated. Throws IndexError for an unknown id.
  virtual std::string decode(const std::vector<TokenId>& ids) const = 0;

  /// Number of ids, including added tokens (one more than the largest id).
  virtual std::size_t vocab_size() const = 0;

  /// Registers token as special (never split, never produced by merges) and
  /// returns its id: the existing id when the string is already a token,
  /// otherwise vocab_size() before the call. Throws ValueError for an empty
  /// string or one that is not valid UTF-8.
  virtual TokenId add_special_token(const std::string& token) = 0;

  /// The id of a token given in its stored form (for byte-level BPE: the
  /// vocab.json spelling, e.g. "Ġthe"; for added tokens: their text).
  virtual std::optional<TokenId> token_to_id(std::string_view token) const = 0;

  /// The stored form of a token. Throws IndexError for an unknown id.
  virtual std::string id_to_token(TokenId id) const = 0;

  virtual SpecialTokenIds special_tokens() const = 0;

  /// Writes the tokenizer to dir (created if needed), every file atomically.
  virtual void save(const std::filesystem::path& dir) const = 0;

  /// The strings encode(text, true) matches: every token registered as special
  /// or added, in id order. Default: none.
  virtual std::vector<std::string> added_tokens() const { return {}; }

  /// Whether encode_with_special_tokens() prepends bos / appends eos. Default: no.
  virtual bool add_bos_token() const { return false; }
  virtual bool add_eos_token() const { return false; }
};

/// Loads a Hugging Face tokenizer folder: tokenizer.json (a byte-level BPE
/// model) when present, otherwise vocab.json + merges.txt (GPT-2 / OPT /
/// RoBERTa layout), plus added_tokens.json, special_tokens_map.json and
/// tokenizer_config.json when present. Throws IOError when the folder or its
/// files cannot be read, ParseError (naming file, line and field) for
/// malformed files, ValueError for models other than byte-level BPE.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir);

}  // namespace lamia
