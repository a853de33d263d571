// libFuzzer target: the raw Amazon reviews loader (meta_Fuzz.json, then reviews_Fuzz.json after the
// file separator). Either part may be gzip (detected by its magic): the seeds hold gzipped ones.
#include "fuzz_dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lamia::fuzz::fuzz_dataset("amazon",
                            {{"meta_Fuzz.json", "amazon/ok/meta_Tiny.json"},
                             {"reviews_Fuzz.json", "amazon/ok/reviews_Tiny_5.json.gz"}},
                            data, size);
  return 0;
}
