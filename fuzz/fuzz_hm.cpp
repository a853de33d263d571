// libFuzzer target: the H&M loader (articles.csv, then transactions_train.csv after the file
// separator).
#include "fuzz_dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lamia::fuzz::fuzz_dataset("hm",
                            {{"articles.csv", "hm/ok/articles.csv"},
                             {"transactions_train.csv", "hm/ok/transactions_train.csv"}},
                            data, size);
  return 0;
}
