// The checked binary I/O of lamia's file formats (lamia/core/binary_io.hpp).
#include <lamia/core/binary_io.hpp>

#include <catch2/catch.hpp>

#include <string>

using lamia::detail::BinaryReader;
using lamia::detail::BinaryWriter;
using lamia::detail::Crc32;
using lamia::detail::crc32_of;

TEST_CASE("Crc32: the standard check value, in one piece or many") {
  const std::string check = "123456789";
  REQUIRE(crc32_of(check.data(), check.size()) == 0xCBF43926u);  // CRC-32/ISO-HDLC check value
  Crc32 running;
  for (char c : check) running.update(&c, 1);
  REQUIRE(running.value() == 0xCBF43926u);
  // Resuming from a stored value continues the same sum (how palette files check their data).
  const auto head = crc32_of(check.data(), 4);
  REQUIRE(Crc32(head).update(check.data() + 4, 5).value() == 0xCBF43926u);
  REQUIRE(crc32_of(nullptr, 0) == 0u);
}

TEST_CASE("BinaryReader: fields, checksum and truncation name the file and the field") {
  BinaryWriter w;
  w.put_bytes("LAMIAXYZ");
  w.put<std::uint32_t>(3);
  w.put<std::uint64_t>(2);
  const float values[2] = {1.5f, -2.0f};
  w.put_array(values, 2);
  w.put_checksum();

  BinaryReader r(w.bytes(), "t.bin");
  r.verify_checksum();
  REQUIRE(r.expect_header("LAMIAXYZ", "test", 3) == 3);
  REQUIRE(r.get_size("count", 1, 10) == 2);
  auto got = r.get_vector<float>(2, "values");
  REQUIRE(got == std::vector<float>{1.5f, -2.0f});
  r.expect_end();

  std::string corrupt = w.bytes();
  corrupt[13] ^= 1;
  BinaryReader bad(corrupt, "t.bin");
  REQUIRE_THROWS_WITH(bad.verify_checksum(), Catch::Contains("t.bin") && Catch::Contains("checksum mismatch"));

  BinaryReader cut(w.bytes().substr(0, 14), "cut.bin");
  REQUIRE(cut.expect_header("LAMIAXYZ", "test", 3) == 3);
  REQUIRE_THROWS_WITH(cut.get<std::uint64_t>("count"), Catch::Contains("cut.bin") && Catch::Contains("'count'"));
}
