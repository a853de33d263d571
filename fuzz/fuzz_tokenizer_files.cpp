// libFuzzer target: a GPT-2 / OPT tokenizer folder (vocab.json, merges.txt, added_tokens.json,
// special_tokens_map.json, tokenizer_config.json; parts after the file separator are the next
// files). Without a merges.txt part the folder gets an empty one; the others are left out.
#include "fuzz_tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lamia::fuzz::fuzz_tokenizer_folder({{"vocab.json", nullptr},
                                      {"merges.txt", "#version: 0.2\n"},
                                      {"special_tokens_map.json", nullptr},
                                      {"tokenizer_config.json", nullptr},
                                      {"added_tokens.json", nullptr}},
                                     data, size);
  return 0;
}
