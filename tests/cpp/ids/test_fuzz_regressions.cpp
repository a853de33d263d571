// Inputs found by the fuzz targets (fuzz/, docs/fuzzing.md) against the semantic-ID table file,
// reduced to what each one needs.
#include <lamia/core/binary_io.hpp>
#include <lamia/ids/semantic_id_table.hpp>

#include <catch2/catch.hpp>

#include "../temp_dir.hpp"

#include <string>

using namespace lamia;

TEST_CASE("fuzz: an empty table (0 items, as save() writes it) loads", "[table][fuzz]") {
  // fuzz_semantic_id_table, on its first seed: reading the 0 ids passed an empty vector's null
  // data() to memcpy, undefined behaviour (UBSan: "null pointer passed as argument 1") however few
  // the bytes. BinaryReader copies nothing for 0 bytes.
  const lamia::testing::TempDir d;
  const auto path = d.path / "table.bin";
  const auto empty = SemanticIdTable::from_codes(torch::zeros({0, 2}, torch::kInt64), {4, 4});
  empty.save(path);
  const auto loaded = SemanticIdTable::load(path);
  CHECK(loaded == empty);
  CHECK(loaded.num_items() == 0);
  CHECK(loaded.id_length() == 3);
  CHECK(loaded.items_with_prefix({}).empty());

  // The reader itself, on the same kind of field: an empty array from an empty rest.
  lamia::detail::BinaryWriter w;
  w.put<std::uint32_t>(7);
  lamia::detail::BinaryReader r(w.bytes(), "bytes");
  CHECK(r.get<std::uint32_t>("x") == 7);
  CHECK(r.get_vector<std::int32_t>(0, "ids").empty());
  r.expect_end();
}
