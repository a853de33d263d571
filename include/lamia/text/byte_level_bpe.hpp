#pragma once
// ByteLevelBpeTokenizer: GPT-2's byte-level BPE (also OPT, RoBERTa, BART).
//
// encode(text): GPT-2 pre-tokenization (lamia/text/pretokenizer.hpp), each
// piece's UTF-8 bytes as byte tokens, then merges applied lowest rank first
// (leftmost first among equal ranks), as Hugging Face tokenizers does. No
// special token is added; OPT's Hugging Face tokenizer prepends </s> (bos),
// which encode_with_special_tokens() does when add_bos_token() is true
// (tokenizer_config.json "add_bos_token", or a TemplateProcessing
// post-processor in tokenizer.json).
//
// Tokens are stored in GPT-2's byte-to-unicode spelling ("Ġthe" for " the");
// token_to_id/id_to_token use that spelling; added tokens use their text.
// Piece encodings are cached (bounded), so encode is fastest on repetitive text;
// encode/decode are safe to call from several threads at once.
#include <lamia/text/tokenizer.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lamia {

/// GPT-2's bytes_to_unicode(): the printable code point that stands for each byte.
const std::array<char32_t, 256>& byte_to_unicode() noexcept;
/// The byte-level spelling of raw bytes ("\xC4\xA0" for " ", i.e. "Ġ").
std::string bytes_to_token(std::string_view bytes);
/// The raw bytes of a byte-level spelling, or nullopt when a character is not
/// one of the 256 byte characters.
std::optional<std::string> token_to_bytes(std::string_view token);

/// Hugging Face extras that change encode_with_special_tokens() or pre-tokenization.
struct ByteLevelBpeOptions {
  /// Prepend a space to text that does not start with one (RoBERTa-style
  /// "add_prefix_space"). GPT-2 and OPT: false.
  bool add_prefix_space = false;
  /// encode_with_special_tokens() prepends bos (OPT: true).
  bool add_bos_token = false;
  /// encode_with_special_tokens() appends eos.
  bool add_eos_token = false;
  /// Take a piece that is itself a vocabulary token whole, without merging
  /// (tokenizer.json "ignore_merges"; GPT-2/OPT: false).
  bool ignore_merges = false;
};

class ByteLevelBpeTokenizer : public Tokenizer {
 public:
  /// vocab maps byte-level spellings to ids (ids unique and >= 0, gaps
  /// allowed); merges are pairs of spellings in rank order, each pair and its
  /// concatenation must be in vocab. Every byte must have a token, unless
  /// unk_token names one used in its place. Throws ValueError naming the
  /// offending entry (source names the file in messages).
  ByteLevelBpeTokenizer(const std::vector<std::pair<std::string, TokenId>>& vocab,
                        const std::vector<std::pair<std::string, std::string>>& merges,
                        ByteLevelBpeOptions options = {}, const std::string& source = "vocab");

  /// GPT-2 files: vocab.json (encoder.json) and merges.txt (vocab.bpe).
  /// Throws IOError / ParseError naming the file and line.
  static std::unique_ptr<ByteLevelBpeTokenizer> from_files(const std::filesystem::path& vocab_json,
                                                           const std::filesystem::path& merges_txt);
  /// A Hugging Face tokenizer.json whose model is byte-level BPE (added tokens included).
  static std::unique_ptr<ByteLevelBpeTokenizer> from_tokenizer_json(const std::filesystem::path& path);
  /// A Hugging Face folder (see load_tokenizer()).
  static std::unique_ptr<ByteLevelBpeTokenizer> from_pretrained(const std::filesystem::path& dir);

  using Tokenizer::encode;
  std::vector<TokenId> encode(std::string_view text) const override;
  std::vector<TokenId> encode(std::string_view text, bool parse_special) const override;
  /// Appends the ids of text to out (encode(text) without the allocation).
  void encode_into(std::string_view text, std::vector<TokenId>& out) const;
  std::string decode(const std::vector<TokenId>& ids) const override;
  std::size_t vocab_size() const override { return tokens_.size(); }
  TokenId add_special_token(const std::string& token) override;
  std::optional<TokenId> token_to_id(std::string_view token) const override;
  std::string id_to_token(TokenId id) const override;
  SpecialTokenIds special_tokens() const override { return special_; }
  /// Writes vocab.json, merges.txt, added_tokens.json (ids past the base
  /// vocabulary), special_tokens_map.json and tokenizer_config.json, each atomically.
  void save(const std::filesystem::path& dir) const override;
  std::vector<std::string> added_tokens() const override;
  bool add_bos_token() const override { return options_.add_bos_token; }
  bool add_eos_token() const override { return options_.add_eos_token; }

  /// Gives a role to a token: registers it with add_special_token() and returns its id.
  TokenId set_bos_token(const std::string& token);
  TokenId set_eos_token(const std::string& token);
  TokenId set_pad_token(const std::string& token);
  TokenId set_unk_token(const std::string& token);

  const ByteLevelBpeOptions& options() const noexcept { return options_; }
  void set_options(const ByteLevelBpeOptions& options);
  /// Ids below this come from the vocabulary file; the rest were added.
  std::size_t base_vocab_size() const noexcept { return base_size_; }
  std::size_t num_merges() const noexcept { return merges_.size(); }
  /// Merge of rank r as (left id, right id, merged id).
  std::array<TokenId, 3> merge(std::size_t rank) const;
  /// The raw bytes a token stands for (its text for added tokens).
  const std::string& token_bytes(TokenId id) const;
  /// Whether a token is registered as special (matched by encode(text, true)).
  bool is_special(TokenId id) const;

 private:
  struct Token {
    std::string spelling;  // vocab.json form, or the text of an added token
    std::string bytes;     // what decode() emits
    bool present = false;  // false for gaps in the id range
    bool special = false;
  };
  struct MergeInfo {
    std::int32_t rank;
    TokenId merged;
  };
  struct Cache;
  struct SpecialTrie;

  void bpe_piece(std::string_view piece, std::vector<TokenId>& out) const;
  void encode_plain(std::string_view text, std::vector<TokenId>& out) const;
  void check_id(TokenId id) const;
  void rebuild_special_trie();

  std::vector<Token> tokens_;
  std::size_t base_size_ = 0;
  std::unordered_map<std::string, TokenId> by_spelling_;
  std::unordered_map<std::uint64_t, MergeInfo> merge_map_;  // (left << 32 | right) -> rank, merged
  std::vector<std::array<TokenId, 3>> merges_;
  std::array<TokenId, 256> byte_ids_{};
  SpecialTokenIds special_;
  ByteLevelBpeOptions options_;
  std::shared_ptr<const SpecialTrie> special_trie_;
  std::unique_ptr<Cache> cache_;

 public:
  ~ByteLevelBpeTokenizer() override;
  ByteLevelBpeTokenizer(const ByteLevelBpeTokenizer& other);
  ByteLevelBpeTokenizer& operator=(const ByteLevelBpeTokenizer& other);
  ByteLevelBpeTokenizer(ByteLevelBpeTokenizer&&) noexcept;
  ByteLevelBpeTokenizer& operator=(ByteLevelBpeTokenizer&&) noexcept;
};

}  // namespace lamia
