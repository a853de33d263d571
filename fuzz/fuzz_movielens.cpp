// libFuzzer target: the MovieLens loader. An input whose first byte is a digit is ml-100k
// (u.item, u.data, u.genre; u.item is latin-1), any other is ml-latest (movies.csv, ratings.csv,
// tags.csv): real movies.csv files start with their header, u.item with a movie id. Parts after
// the file separator are the next files; a missing u.genre or tags.csv is left out.
#include "fuzz_dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bool ml100k = size > 0 && data[0] >= '0' && data[0] <= '9';
  if (ml100k)
    lamia::fuzz::fuzz_dataset(
        "movielens", {{"u.item", "movielens/ml100k_ok/u.item"}, {"u.data", "movielens/ml100k_ok/u.data"}, {"u.genre", ""}},
        data, size);
  else
    lamia::fuzz::fuzz_dataset(
        "movielens",
        {{"movies.csv", "movielens/ok/movies.csv"}, {"ratings.csv", "movielens/ok/ratings.csv"}, {"tags.csv", ""}},
        data, size);
  return 0;
}
