// compute_statistics: the paper's Table 2 numbers and the extra facts, on hand-made datasets.
#include <lamia/data/statistics.hpp>

#include <catch2/catch.hpp>

using namespace lamia;

namespace {
Dataset tiny() {
  Dataset ds;
  ds.name = "tiny";
  ds.catalog = Catalog({"title", "brand"});
  ds.catalog.add("a", {"A", ""});
  ds.catalog.add("b", {"", ""});
  ds.catalog.add("c", {"C", "Cb"});
  ds.catalog.add("d", {"", "Db"});  // never interacted with
  auto u = ds.interactions.user("u");
  ds.interactions.append(u, {0, 100, 5.0f});
  ds.interactions.append(u, {1, 50});
  ds.interactions.append(u, {0});
  auto v = ds.interactions.user("v");
  ds.interactions.append(v, {2});
  return ds;
}
}  // namespace

TEST_CASE("statistics count items, users, interactions and their ratios") {
  auto s = compute_statistics(tiny());
  CHECK(s.name == "tiny");
  CHECK(s.items == 4);
  CHECK(s.items_with_text == 3);
  CHECK(s.interacted_items == 3);
  CHECK(s.users == 2);
  CHECK(s.interactions == 4);
  CHECK(s.avg_user_length == Approx(2.0));
  CHECK(s.avg_item_appearances == Approx(4.0 / 3.0));
  CHECK(s.density == Approx(4.0 / 6.0));
  CHECK(s.min_user_length == 1);
  CHECK(s.max_user_length == 3);
  CHECK(s.median_user_length == 3);
  CHECK(s.users_with_at_least_5 == 0);
  CHECK(s.has_timestamps);
  CHECK(s.has_ratings);
  CHECK(*s.first_timestamp == 50);
  CHECK(*s.last_timestamp == 100);
  CHECK(s.attribute_non_empty == std::vector<std::size_t>{2, 2});
}

TEST_CASE("statistics to_json carries every field, null timestamps when untimed") {
  auto ds = tiny();
  auto j = compute_statistics(ds).to_json();
  for (const char* key : {"items", "users", "interactions", "avg_user_length", "avg_item_appearances",
                          "items_with_text", "interacted_items", "has_timestamps", "attributes"})
    CHECK(j.contains(key));
  CHECK(j["items"] == 4);
  CHECK(j["attributes"]["brand"] == 2);

  Dataset empty;
  empty.catalog = Catalog({"title"});
  auto e = compute_statistics(empty);
  CHECK(e.users == 0);
  CHECK(e.avg_user_length == 0.0);
  CHECK(e.avg_item_appearances == 0.0);
  auto ej = e.to_json();
  CHECK(ej["first_timestamp"].is_null());
  CHECK_FALSE(ej["has_timestamps"].get<bool>());
}
