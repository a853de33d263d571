// libFuzzer target: the generic CSV/TSV loader with the default field mapping (items, then
// interactions after the file separator). When the first line of the input holds a tab the files
// are items.tsv / interactions.tsv (tab-separated), otherwise items.csv / interactions.csv.
#include "fuzz_dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto first_line = text.substr(0, text.find('\n'));
  if (first_line.find('\t') != std::string_view::npos)
    lamia::fuzz::fuzz_dataset(
        "csv", {{"items.tsv", "csv/ok/items.tsv"}, {"interactions.tsv", "csv/ok/interactions.tsv"}}, data, size);
  else
    lamia::fuzz::fuzz_dataset(
        "csv", {{"items.csv", "csv/unknown_item/items.csv"}, {"interactions.csv", "csv/unknown_item/interactions.csv"}},
        data, size);
  return 0;
}
