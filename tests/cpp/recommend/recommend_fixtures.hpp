#pragma once
// Shared data of the recommend tests.
#include <lamia/data/sequences.hpp>
#include <lamia/ids/semantic_id_table.hpp>

#include <cstdint>
#include <vector>

namespace lamia::test {

// A catalog of n items whose codes are (i % 8, i / 8) and users whose next item is (prev + 1) % n;
// every fifth user validates.
struct Cyclic {
  SemanticIdTable table;
  std::vector<SequenceExample> train, valid;
};

inline Cyclic cyclic(std::int64_t n, std::int64_t users, std::int64_t length) {
  Cyclic c;
  std::vector<std::int32_t> codes;
  for (std::int64_t i = 0; i < n; ++i) {
    codes.push_back(std::int32_t(i % 8));
    codes.push_back(std::int32_t(i / 8));
  }
  c.table = SemanticIdTable::from_codes(codes.data(), n, 2, {8, (n + 7) / 8});
  for (std::int64_t u = 0; u < users; ++u) {
    SequenceExample e;
    e.user = UserIndex(u);
    const auto start = (u * 7) % n;
    for (std::int64_t t = 0; t < length; ++t) e.history.push_back(ItemIndex((start + t) % n));
    e.target = ItemIndex((start + length) % n);
    (u % 5 == 0 ? c.valid : c.train).push_back(e);
  }
  return c;
}

}  // namespace lamia::test
