// libFuzzer target: a semantic-ID table (SemanticIdTable::save's binary file, read by
// SemanticIdTable::load). The input is the file; it is read once as it is and once with its trailing
// crc32 made right (the checksum is checked before the ids are read). A table that loads must keep
// its invariants: every token below its level's codebook size, every item found by its own ID and
// by its prefixes, and save + load gives the same table.
#include "fuzz_torch.hpp"

#include <lamia/ids/semantic_id_table.hpp>

#include <optional>

namespace {

using namespace lamia::fuzz;
using lamia::SemanticIdTable;

void check_table(const SemanticIdTable& t) {
  const auto n = t.num_items(), W = t.id_length();
  if (W != t.num_levels() + 1 || std::int64_t(t.codebook_sizes().size()) != W) fail("inconsistent id length");
  for (std::int64_t i = 0; i < n; ++i) {
    const auto id = t.id(lamia::ItemIndex(i));
    for (std::int64_t l = 0; l < W; ++l)
      if (id[l] < 0 || id[l] >= t.codebook_sizes()[l]) fail("a token outside its codebook");
    if (t.item(id) != i) fail("an item is not found by its own ID");
    const std::vector<SemanticIdTable::Token> prefix(id.begin(), id.end() - 1);
    const auto group = t.items_with_prefix(prefix);
    if (std::find(group.begin(), group.end(), lamia::ItemIndex(i)) == group.end())
      fail("an item is not below its own codes");
    const auto next = t.allowed_next(prefix);
    if (std::find(next.begin(), next.end(), id.back()) == next.end()) fail("an index token is not allowed after its codes");
  }
  if (t.num_unique_codes() > n || t.num_colliding_items() > n) fail("collision counts above the item count");
  if (n > 0 && t.ids().sizes() != torch::IntArrayRef({n, W})) fail("ids() is not [n, L + 1]");
  (void)t.dump();
  (void)lamia::table_checksum(t);
}

void read_all(const fs::path& path) {
  std::optional<SemanticIdTable> t;
  expect_clean([&] { t = SemanticIdTable::load(path); });
  if (!t) return;
  check_table(*t);
  const auto saved = scratch().fresh_dir("saved") / "table.bin";
  t->save(saved);
  if (!(SemanticIdTable::load(saved) == *t)) fail("save + load changed the table");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  init_torch_target([](SeedWriter& seeds, const fs::path& dir) {
    const auto path = dir / "table.bin";
    auto add = [&](const SemanticIdTable& t) {
      t.save(path);
      seeds.add({file_bytes(path)});
    };
    add(SemanticIdTable::from_codes(torch::zeros({0, 2}, torch::kInt64), {4, 4}));
    add(SemanticIdTable::from_codes(torch::tensor({{0, 1}, {2, 3}, {0, 1}}), {4, 4}));  // a collision
    add(SemanticIdTable::from_codes(torch::tensor({{1}, {0}, {1}, {1}}), {}, lamia::IndexTokenOrder::item_order));
    add(SemanticIdTable::from_codes(torch::tensor({{0, 1, 2}, {1, 1, 2}, {2, 0, 0}, {0, 1, 0}}), {3, 2, 3}));
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // the crc32 covers every byte before it
  read_with_and_without_crc(data, size, scratch().fresh_dir() / "table.bin", 0, read_all);
  return 0;
}
