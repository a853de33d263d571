// lamia/core/options.hpp: one field list drives JSON write, checked read and the field table.
#include <lamia/core/errors.hpp>
#include <lamia/core/options.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lamia {

enum class TestColour { kRed, kDeepBlue };
constexpr auto enum_names(TestColour) {
  return std::array{std::pair{TestColour::kRed, "red"}, std::pair{TestColour::kDeepBlue, "deep-blue"}};
}

struct TestInnerOptions {
  std::int64_t k = 256;
  std::uint64_t seed = 0;
  TestColour colour = TestColour::kRed;
};
template <class V>
void visit_fields(TestInnerOptions& o, V&& v) {
  v.field("k", o.k, "codes", options::at_least(1));
  v.field("seed", o.seed, "seed");
  v.field("colour", o.colour, "a colour");
}

struct TestOuterOptions {
  int small = 3;
  double rate = 0.5;
  float weight = 1.0f;
  bool flag = false;
  std::string name = "x";
  std::filesystem::path dir = "out/run";
  std::optional<float> threshold = 4.0f;
  std::vector<std::int64_t> sizes = {12, 8};
  std::map<std::string, std::size_t> counts;
  TestInnerOptions inner;
  std::vector<TestInnerOptions> list;
};
template <class V>
void visit_fields(TestOuterOptions& o, V&& v) {
  v.field("small", o.small, "an int");
  v.field("rate", o.rate, "a fraction", options::from_to_excluded(0, 1));
  v.field("weight", o.weight, "a float");
  v.field("flag", o.flag, "a bool");
  v.field("name", o.name, "a string");
  v.field("dir", o.dir, "a path");
  v.field("threshold", o.threshold, "optional");
  v.field("sizes", o.sizes, "sizes", options::at_least(1));
  v.field("counts", o.counts, "counts");
  v.field("inner", o.inner, "nested options");
  v.field("list", o.list, "nested options in a list");
}

}  // namespace lamia

using namespace lamia;
using nlohmann::json;

namespace {
TestOuterOptions parse(const std::string& text) { return json::parse(text).get<TestOuterOptions>(); }
}  // namespace

TEST_CASE("options: every field type round-trips through JSON") {
  TestOuterOptions o;
  o.small = -7;
  o.rate = 0.25;
  o.weight = 2.5f;
  o.flag = true;
  o.name = "palette";
  o.dir = "/tmp/a b";
  o.threshold = std::nullopt;
  o.sizes = {1, 2, 3};
  o.counts = {{"rows", 5}};
  o.inner.k = 8;
  o.inner.seed = std::numeric_limits<std::uint64_t>::max();
  o.inner.colour = TestColour::kDeepBlue;
  o.list = {TestInnerOptions{}, o.inner};
  const json j = o;
  CHECK(j["threshold"].is_null());
  CHECK(j["inner"]["colour"] == "deep-blue");
  CHECK(j["dir"] == "/tmp/a b");
  const TestOuterOptions back = j.get<TestOuterOptions>();
  CHECK(options::equal(o, back));
  CHECK(back.inner.seed == std::numeric_limits<std::uint64_t>::max());
  CHECK(back.list.size() == 2);
  CHECK(back.list[1].colour == TestColour::kDeepBlue);
  CHECK(json(back) == j);
}

TEST_CASE("options: missing keys keep their values, and a failed read changes nothing") {
  TestOuterOptions o;
  o.small = 11;
  options::from_json(json::parse(R"({"rate": 0.75})"), o);
  CHECK(o.small == 11);
  CHECK(o.rate == 0.75);
  CHECK_THROWS_AS(options::from_json(json::parse(R"({"name": "y", "small": "z"})"), o), ValueError);
  CHECK(o.name == "x");
  CHECK(parse("{}").inner.k == 256);
}

TEST_CASE("options: an unknown key is named with the known keys, also in a nested object") {
  REQUIRE_THROWS_WITH(parse(R"({"smal": 1})"), Catch::Contains("TestOuterOptions: unknown key 'smal'") &&
                                                   Catch::Contains("small, rate, weight"));
  REQUIRE_THROWS_WITH(parse(R"({"inner": {"kk": 1}})"),
                      Catch::Contains("unknown key 'inner.kk'") && Catch::Contains("known keys of 'inner': k, seed, colour"));
  REQUIRE_THROWS_WITH(parse(R"({"list": [{}, {"x": 1}]})"), Catch::Contains("unknown key 'list[1].x'"));
}

TEST_CASE("options: a wrong type names the key path and what was expected") {
  REQUIRE_THROWS_WITH(parse(R"({"small": "3"})"), Catch::Contains("key 'small'") && Catch::Contains("expected an integer") &&
                                                      Catch::Contains("got '3'"));
  REQUIRE_THROWS_WITH(parse(R"({"flag": 1})"), Catch::Contains("key 'flag': expected a boolean"));
  REQUIRE_THROWS_WITH(parse(R"({"name": 1})"), Catch::Contains("key 'name': expected a string"));
  REQUIRE_THROWS_WITH(parse(R"({"sizes": [1, "a"]})"), Catch::Contains("key 'sizes[1]'"));
  REQUIRE_THROWS_WITH(parse(R"({"inner": 3})"), Catch::Contains("key 'inner': expected an object"));
  REQUIRE_THROWS_WITH(parse(R"({"inner": {"colour": "blue"}})"),
                      Catch::Contains("key 'inner.colour': expected one of 'red', 'deep-blue', got 'blue'"));
  REQUIRE_THROWS_WITH(parse(R"([1])"), Catch::Contains("TestOuterOptions: expected an object"));
}

TEST_CASE("options: integers are range-checked, never wrapped") {
  REQUIRE_THROWS_WITH(parse(R"({"small": 4294967296})"), Catch::Contains("key 'small': expected an integer in [-2147483648, 2147483647]"));
  REQUIRE_THROWS_WITH(parse(R"({"inner": {"seed": -1}})"), Catch::Contains("key 'inner.seed': expected a non-negative integer"));
  REQUIRE_THROWS_WITH(parse(R"({"counts": {"a": -2}})"), Catch::Contains("key 'counts.a'"));
  REQUIRE_THROWS_WITH(parse(R"({"small": 2.5})"), Catch::Contains("key 'small'"));
  CHECK(parse(R"({"small": 2000.0})").small == 2000);  // an integral number is an integer
  CHECK(parse(R"({"inner": {"seed": 18446744073709551615}})").inner.seed == std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("options: numbers must be finite and within the field's check") {
  TestOuterOptions o;
  CHECK_THROWS_WITH(options::from_json(json{{"rate", std::numeric_limits<double>::infinity()}}, o),
                    Catch::Contains("key 'rate': expected a finite number"));
  CHECK_THROWS_WITH(options::from_json(json{{"weight", 1e300}}, o), Catch::Contains("key 'weight'"));
  REQUIRE_THROWS_WITH(parse(R"({"rate": 1.0})"), Catch::Contains("key 'rate': expected a value in [0, 1)"));
  REQUIRE_THROWS_WITH(parse(R"({"inner": {"k": 0}})"), Catch::Contains("key 'inner.k': expected a value >= 1"));
  REQUIRE_THROWS_WITH(parse(R"({"sizes": [3, 0]})"), Catch::Contains("key 'sizes[1]': expected a value >= 1"));
  CHECK(parse(R"({"threshold": null})").threshold == std::nullopt);
  CHECK(parse(R"({"threshold": 3})").threshold == 3.0f);
}

TEST_CASE("options: describe lists every field once with its type, default, doc and check") {
  const json rows = options::describe<TestOuterOptions>();
  REQUIRE(rows.size() == 11);
  CHECK(rows[0]["name"] == "small");
  CHECK(rows[0]["default"] == 3);
  CHECK(rows[1]["check"] == "in [0, 1)");
  CHECK(rows[6]["type"] == "null or a finite number");
  CHECK(rows[9]["default"]["colour"] == "red");
  const json inner = options::describe<TestInnerOptions>();
  CHECK(inner[2]["values"] == json({"red", "deep-blue"}));
  CHECK(options::field_names<TestInnerOptions>() == std::vector<std::string>{"k", "seed", "colour"});
}

TEST_CASE("options: read_field sets one field with its checks") {
  TestInnerOptions o;
  CHECK(options::read_field(o, "k", json(12), options::Where{"TestInnerOptions", ""}));
  CHECK(o.k == 12);
  CHECK_FALSE(options::read_field(o, "nope", json(1), options::Where{"TestInnerOptions", ""}));
  CHECK_THROWS_WITH(options::read_field(o, "k", json(0), options::Where{"TestInnerOptions", ""}), Catch::Contains("TestInnerOptions: key 'k'"));
  CHECK(o.k == 12);
  CHECK(options::enum_from_string<TestColour>("deep-blue", "colour") == TestColour::kDeepBlue);
  CHECK_THROWS_WITH(options::enum_from_string<TestColour>("x", "colour"), Catch::Contains("colour: expected one of 'red', 'deep-blue', got 'x'"));
}
