// The loaders on the real samples in ../shared/data: the exact counts of each PROVENANCE.md
// and spot checks of field values. Skipped (with a warning) where the folder is absent.
#include <lamia/data/loaders.hpp>
#include <lamia/data/statistics.hpp>

#include <catch2/catch.hpp>

#include <filesystem>

using namespace lamia;
namespace fs = std::filesystem;

namespace {
// The folder, or an empty path (after a WARN) when the shared data is not there.
fs::path shared(const std::string& name) {
  fs::path p = fs::path(LAMIA_SHARED_DATA_DIR) / name;
  if (!fs::is_directory(p)) {
    WARN("skipped: " << p.string() << " is absent (the real datasets live in ../shared/data)");
    return {};
  }
  return p;
}

std::vector<std::string> first_items(const Dataset& ds, const std::string& user, std::size_t n) {
  std::vector<std::string> out;
  const auto& seq = ds.interactions.sequence(*ds.interactions.find_user(user));
  for (std::size_t i = 0; i < n && i < seq.size(); ++i) out.push_back(ds.catalog.id(seq[i].item));
  return out;
}
}  // namespace

TEST_CASE("real amazon-office (LC-Rec): 2,420 items, 4,905 users, 53,258 interactions") {
  auto dir = shared("amazon-office");
  if (dir.empty()) return;
  LoadReport report;
  auto ds = load_dataset("amazon-lcrec", dir, {}, report);
  auto s = compute_statistics(ds);
  CHECK(s.items == 2420);
  CHECK(s.users == 4905);
  CHECK(s.interactions == 53258);
  CHECK(s.min_user_length == 5);
  CHECK(s.items_with_text == 2420);
  CHECK(s.interacted_items == 2420);
  CHECK(s.items - s.attribute_non_empty[1] == 639);  // PROVENANCE: 639 empty descriptions
  CHECK_FALSE(s.has_timestamps);
  CHECK(report.num_warnings() == 0);
  CHECK(ds.catalog.value(0, "title") == "VTECH CS6114 DECT 6.0 Cordless Phone, White/Grey, 1 Handset");
  CHECK(ds.catalog.value(0, "brand") == "VTech");
  CHECK(ds.catalog.value(0, "categories") == "Office Electronics, Telephones & Accessories, Cordless Telephones");
  CHECK(ds.catalog.value(2, "title") == "AT&amp;T 210 Corded Phone, Black, 1 Handset");
  CHECK(first_items(ds, "0", 5) == std::vector<std::string>{"0", "1", "2", "3", "4"});
  CHECK(first_items(ds, "1", 3) == std::vector<std::string>{"5", "6", "7"});
}

TEST_CASE("real movielens-latest-small: 9,742 movies, 610 users, 100,836 ratings, tags on 1,572") {
  auto dir = shared("movielens-latest-small");
  if (dir.empty()) return;
  auto ds = load_dataset("movielens", dir);
  auto s = compute_statistics(ds);
  CHECK(s.items == 9742);
  CHECK(s.users == 610);
  CHECK(s.interactions == 100836);
  CHECK(s.interacted_items == 9724);
  CHECK(s.attribute_non_empty[2] == 1572);
  CHECK(*s.first_timestamp == 828124615);   // 1996-03-29
  CHECK(*s.last_timestamp == 1537799250);   // 2018-09-24
  CHECK(ds.catalog.value(0, "title") == "Toy Story (1995)");
  CHECK(ds.catalog.value(0, "genres") == "Adventure|Animation|Children|Comedy|Fantasy");
  auto movie = ds.catalog.index_of("60756");
  CHECK(ds.catalog.value(movie, "tags").rfind("funny|Highly quotable", 0) == 0);
  // Each user's ratings in time order.
  for (UserIndex u = 0; u < UserIndex(ds.interactions.num_users()); ++u) {
    const auto& seq = ds.interactions.sequence(u);
    for (std::size_t i = 1; i < seq.size(); ++i) REQUIRE(seq[i - 1].timestamp <= seq[i].timestamp);
  }
}

TEST_CASE("real hm-sample: 4,903 articles, 2,954 customers, 10,000 transactions") {
  auto dir = shared("hm-sample");
  if (dir.empty()) return;
  auto ds = load_dataset("hm", dir);
  auto s = compute_statistics(ds);
  CHECK(s.items == 4903);
  CHECK(s.users == 2954);
  CHECK(s.interactions == 10000);
  CHECK(s.max_user_length == 39);
  CHECK(s.users_with_at_least_5 == 656);
  CHECK(ds.catalog.num_attributes() == 13);
  CHECK(ds.catalog.attribute_names()[0] == "detail_desc");
  auto strap = ds.catalog.index_of("0108775015");
  CHECK(ds.catalog.value(strap, "prod_name") == "Strap top");
  CHECK(ds.catalog.value(strap, "detail_desc") == "Jersey top with narrow shoulder straps.");
  CHECK(ds.catalog.value(strap, "index_name") == "Ladieswear");
  auto first = first_items(ds, "000058a12d5b43e67d225668fa1f8d618c13dc232df0cad8ffe7ad4a1091e318", 2);
  CHECK(first == std::vector<std::string>{"0663713001", "0541518023"});
}

TEST_CASE("real mind-small-subset: 2,000 news with text, 4,637 users, every click counted") {
  auto dir = shared("mind-small-subset");
  if (dir.empty()) return;
  LoadReport report;
  auto ds = load_dataset("mind", dir, {}, report);
  auto s = compute_statistics(ds);
  CHECK(s.items_with_text == 2000);
  CHECK(s.users == 4637);
  CHECK(report.counts["rows:behaviors.tsv"] == 5000);
  CHECK(report.counts["history_entries"] == 159802);
  CHECK(report.counts["clicked_impressions"] == 7542);
  CHECK(s.attribute_non_empty[1] == 1901);  // 99 empty abstracts
  // History once per user (138,932 entries) plus every clicked impression.
  CHECK(s.interactions == 138932 + 7542);
  CHECK(*s.first_timestamp >= 1573257600);  // 2019-11-09
  CHECK(*s.last_timestamp < 1573776000);    // before 2019-11-15
  CHECK(ds.catalog.id(0) == "N34700");
  CHECK(ds.catalog.value(0, "category") == "news");
  CHECK(ds.catalog.value(0, "subcategory") == "newspolitics");
  CHECK(ds.catalog.value(1, "title") == "Silver Spring Man Nabs Title At Soggy Marine Corps Marathon");
  CHECK(first_items(ds, "U81994", 3) == std::vector<std::string>{"N138", "N64727", "N138"});

  LoadOptions skip;
  skip.unknown_items = UnknownItems::kSkip;
  auto known = load_dataset("mind", dir, skip);
  CHECK(known.catalog.size() == 2000);
  CHECK(compute_statistics(known).interacted_items == 638);  // 638 of the clicked/history news have text
}
