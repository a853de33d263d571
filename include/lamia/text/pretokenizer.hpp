#pragma once
// The GPT-2 pre-tokenizer: splits text into the pieces BPE works on, with the
// rules of GPT-2's regular expression
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// implemented by hand on Unicode code points (\s is the White_Space property;
// classes from include/lamia/text/detail/unicode_tables.hpp).
//
// Invalid UTF-8: every byte that does not begin a well-formed UTF-8 sequence
// (overlong forms, surrogates, > U+10FFFF, truncated sequences, stray
// continuation bytes) is its own piece of one byte; it belongs to no class and
// counts as non-space for the (?!\S) look-ahead. Byte-level BPE then encodes it
// as its byte token, so decode(encode(bytes)) == bytes for any input.
#include <cstdint>
#include <string_view>
#include <vector>

namespace lamia {

enum class CharClass : std::uint8_t {
  kLetter,      ///< \p{L}
  kNumber,      ///< \p{N}
  kWhiteSpace,  ///< \s (White_Space)
  kOther,       ///< anything else, unassigned code points included
  kInvalid,     ///< a byte that is not part of well-formed UTF-8
};

/// The class of a Unicode scalar value (kOther above U+10FFFF).
CharClass char_class(char32_t code_point) noexcept;

/// Decodes one UTF-8 sequence at text[0..]: returns its length (1-4) and sets
/// code_point, or returns 0 when text does not start with a well-formed
/// sequence (text must not be empty).
int decode_utf8(std::string_view text, char32_t& code_point) noexcept;

/// True when text is well-formed UTF-8.
bool is_valid_utf8(std::string_view text) noexcept;

/// Appends the GPT-2 pieces of text to out (views into text, in order, covering it).
void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& out);

/// The GPT-2 pieces of text.
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

}  // namespace lamia
