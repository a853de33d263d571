// libFuzzer target: a Hugging Face fast-tokenizer folder (tokenizer.json, then
// tokenizer_config.json and special_tokens_map.json after the file separator).
#include "fuzz_tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lamia::fuzz::fuzz_tokenizer_folder(
      {{"tokenizer.json", nullptr}, {"tokenizer_config.json", nullptr}, {"special_tokens_map.json", nullptr}}, data,
      size);
  return 0;
}
