#include <lamia/core/errors.hpp>
#include <lamia/data/catalog.hpp>
#include <lamia/data/interactions.hpp>

#include <catch2/catch.hpp>

using namespace lamia;

TEST_CASE("catalog keeps items in insertion order with named attributes") {
  Catalog c({"title", "brand"});
  auto a = c.add("x1", {"Pen", "Bic"});
  auto b = c.add("x2", {"Paper", ""});
  REQUIRE(a == 0);
  REQUIRE(b == 1);
  REQUIRE(c.size() == 2);
  REQUIRE(c.value(1, "title") == "Paper");
  REQUIRE(c.value(1, 1).empty());
  REQUIRE(c.index_of("x2") == 1);
  REQUIRE_FALSE(c.find("nope").has_value());
  REQUIRE(c.has_text(1));
  auto sel = c.select_attributes({"brand"});
  REQUIRE(sel.num_attributes() == 1);
  REQUIRE(sel.value(0, 0) == "Bic");
}

TEST_CASE("catalog rejects duplicate ids, wrong value counts and unknown names") {
  Catalog c({"title"});
  c.add("x1", {"Pen"});
  REQUIRE_THROWS_AS(c.add("x1", {"Other"}), ValueError);
  REQUIRE_THROWS_AS(c.add("x2", {"a", "b"}), ValueError);
  REQUIRE_THROWS_AS(c.add("", {"a"}), ValueError);
  REQUIRE_THROWS_AS(c.index_of("zz"), IndexError);
  REQUIRE_THROWS_AS(c.attribute_index("brand"), IndexError);
  REQUIRE_THROWS_AS(c.value(5, 0), IndexError);
  REQUIRE_THROWS_AS(Catalog({"a", "a"}), ValueError);
}

TEST_CASE("interactions count events per user and overall") {
  Interactions in;
  auto u = in.user("u1");
  in.append(u, {0, 10, 5.0f});
  in.append(u, {1});
  REQUIRE(in.user("u1") == u);
  REQUIRE(in.size() == 2);
  REQUIRE(in.has_timestamps());
  REQUIRE(in.has_ratings());
  in.set_sequence(u, {Interaction{2}});
  REQUIRE(in.size() == 1);
  REQUIRE_THROWS_AS(in.sequence(3), IndexError);
}
