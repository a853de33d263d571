// libFuzzer target: the generic JSON-lines loader with the default field mapping (items.jsonl,
// then interactions.jsonl after the file separator).
#include "fuzz_dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lamia::fuzz::fuzz_dataset("jsonl",
                            {{"items.jsonl", "jsonl/ok/items.jsonl"},
                             {"interactions.jsonl", "jsonl/ok/interactions.jsonl"}},
                            data, size);
  return 0;
}
