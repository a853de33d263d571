// libFuzzer target: the MIND loader (news.tsv, then behaviors.tsv after the file separator).
#include "fuzz_dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lamia::fuzz::fuzz_dataset("mind", {{"news.tsv", "mind/ok/news.tsv"}, {"behaviors.tsv", "mind/ok/behaviors.tsv"}},
                            data, size);
  return 0;
}
