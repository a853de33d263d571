// libFuzzer target: the Amazon LC-Rec loader (Fuzz.item.json, then Fuzz.inter.json after the file
// separator).
#include "fuzz_dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lamia::fuzz::fuzz_dataset("amazon-lcrec",
                            {{"Fuzz.item.json", "amazon-lcrec/ok/Tiny.item.json"},
                             {"Fuzz.inter.json", "amazon-lcrec/ok/Tiny.inter.json"}},
                            data, size);
  return 0;
}
