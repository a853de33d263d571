#pragma once
// The tokenizer targets: the fuzzer's bytes become the files of a Hugging Face tokenizer folder,
// loaded with lamia::load_tokenizer(); a tokenizer that loads is then used: encode and decode
// (fixed text and the input's first bytes), every id's token, and a save + reload that must give
// the same tokenizer.
#include "fuzz_util.hpp"

#include <lamia/text/byte_level_bpe.hpp>
#include <lamia/text/tokenizer.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace lamia::fuzz {

/// One file of a tokenizer folder and the content it gets when the input does not give it
/// (nullptr: left out).
struct TokenizerFile {
  const char* name;
  const char* fallback;
};

inline void use_tokenizer(const Tokenizer& tok, std::string_view input) {
  const std::string texts[] = {"Hello world, it's 2024!  New\tline\r\n \u00e9t\u00e9 \xf0\x9f\x98\x80 <s></s><pad>",
                               std::string(input.substr(0, 256))};
  const bool every_byte = !tok.special_tokens().unk;  // without unk every byte has a token
  for (const auto& text : texts) {
    const auto ids = tok.encode(text);
    for (TokenId id : ids)
      if (id < 0 || std::size_t(id) >= tok.vocab_size()) fail("encode gave an id outside the vocabulary");
    const std::string back = tok.decode(ids);
    if (every_byte && back != text) fail("decode(encode(text)) != text for a tokenizer without unk");
    (void)tok.encode(text, /*parse_special=*/true);
    (void)tok.encode_with_special_tokens(text);
  }
  const std::size_t n = std::min<std::size_t>(tok.vocab_size(), 4096);
  for (std::size_t id = 0; id < n; ++id) {
    expect_clean([&] { (void)tok.id_to_token(TokenId(id)); });  // ids in gaps are an IndexError
  }
}

/// Writes the parts of data as the files (see split()), loads the folder and uses the tokenizer.
inline void fuzz_tokenizer_folder(const std::vector<TokenizerFile>& files, const std::uint8_t* data, std::size_t size) {
  const auto parts = split(data, size, files.size());
  const auto dir = scratch().fresh_dir();
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (i < parts.size())
      write_file(dir / files[i].name, parts[i]);
    else if (files[i].fallback)
      write_file(dir / files[i].name, files[i].fallback);
  }
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<Tokenizer> tok;
  expect_clean([&] { tok = load_tokenizer(dir); });
  if (!tok) return;
  use_tokenizer(*tok, input);
  // What lamia loaded it can save, and what it saved loads as the same tokenizer.
  const auto saved = scratch().fresh_dir("saved");
  tok->save(saved);
  const auto again = load_tokenizer(saved);
  if (again->vocab_size() != tok->vocab_size()) fail("save + load changed vocab_size()");
  const std::string sample = "Hello world, it's 2024! " + std::string(input.substr(0, 64));
  if (again->encode(sample, true) != tok->encode(sample, true)) fail("save + load changed encode()");
  if (again->encode_with_special_tokens(sample) != tok->encode_with_special_tokens(sample))
    fail("save + load changed encode_with_special_tokens()");
}

}  // namespace lamia::fuzz
