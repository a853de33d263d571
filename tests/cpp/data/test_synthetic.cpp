#include <lamia/core/errors.hpp>
#include <lamia/data/sequences.hpp>
#include <lamia/data/synthetic.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <unordered_map>

using namespace lamia;

namespace {

SyntheticOptions small_options(std::uint64_t seed = 1) {
  SyntheticOptions o;
  o.seed = seed;
  o.num_items = 600;
  o.num_users = 300;
  return o;
}

// Pearson's chi-square statistic of the contingency table of two aspects over all items.
double chi_square(const SyntheticCatalog& s, const std::function<int(ItemIndex)>& x, int kx,
                  const std::function<int(ItemIndex)>& y, int ky) {
  const auto n = ItemIndex(s.dataset.catalog.size());
  std::vector<double> table(std::size_t(kx * ky), 0.0), rows(std::size_t(kx), 0.0), cols(std::size_t(ky), 0.0);
  for (ItemIndex i = 0; i < n; ++i) {
    table[std::size_t(x(i) * ky + y(i))] += 1;
    rows[std::size_t(x(i))] += 1;
    cols[std::size_t(y(i))] += 1;
  }
  double chi = 0;
  for (int a = 0; a < kx; ++a)
    for (int b = 0; b < ky; ++b) {
      double expected = rows[std::size_t(a)] * cols[std::size_t(b)] / double(n);
      if (expected > 0) chi += std::pow(table[std::size_t(a * ky + b)] - expected, 2) / expected;
    }
  return chi;
}

// Upper quantile of chi-square with df degrees of freedom at normal score z (Wilson-Hilferty).
double chi_square_quantile(double df, double z) {
  double c = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - c + z * std::sqrt(c), 3.0);
}

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> words;
  std::string w;
  for (char ch : text + " ") {
    if (std::isalpha(static_cast<unsigned char>(ch))) {
      w += char(std::tolower(static_cast<unsigned char>(ch)));
    } else if (!w.empty()) {
      words.push_back(w);
      w.clear();
    }
  }
  return words;
}

// The aspects an attribute's text reveals, found from the data alone: a word "indicates" value v
// of aspect a when >= 95% of the items whose attribute contains it have value v; the attribute
// reveals aspect a when >= 90% of the items contain an indicating word of their own value.
std::set<std::string> revealed_aspects(const SyntheticCatalog& s, std::size_t attribute) {
  const auto& catalog = s.dataset.catalog;
  std::vector<std::vector<std::string>> words(catalog.size());
  for (std::size_t i = 0; i < catalog.size(); ++i) words[i] = words_of(catalog.value(ItemIndex(i), attribute));
  std::set<std::string> revealed;
  for (std::size_t a = 0; a < s.num_aspects(); ++a) {
    std::unordered_map<std::string, std::map<int, int>> counts;
    for (std::size_t i = 0; i < catalog.size(); ++i) {
      std::set<std::string> unique(words[i].begin(), words[i].end());
      for (const auto& w : unique) counts[w][s.aspect(ItemIndex(i), a)] += 1;
    }
    std::unordered_map<std::string, int> indicates;
    for (const auto& [w, by_value] : counts) {
      int total = 0, best = 0, best_value = -1;
      for (auto [v, c] : by_value) {
        total += c;
        if (c > best) best = c, best_value = v;
      }
      if (total >= 5 && best >= 0.95 * total) indicates[w] = best_value;
    }
    std::size_t hits = 0;
    for (std::size_t i = 0; i < catalog.size(); ++i)
      for (const auto& w : words[i]) {
        auto it = indicates.find(w);
        if (it != indicates.end() && it->second == s.aspect(ItemIndex(i), a)) {
          ++hits;
          break;
        }
      }
    if (double(hits) >= 0.9 * double(catalog.size())) revealed.insert(s.aspect_names[a]);
  }
  return revealed;
}

// Per aspect: how far users' interactions lean to their preferred values, from 0 (chance) to 1
// (only preferred values): (share - chance) / (1 - chance).
std::vector<double> preference_lift(const SyntheticCatalog& s) {
  const std::size_t A = s.num_aspects();
  const auto P = std::size_t(s.options.preferred_values);
  std::vector<double> hits(A, 0.0);
  double total = 0;
  const auto& in = s.dataset.interactions;
  for (std::size_t u = 0; u < in.num_users(); ++u)
    for (const auto& e : in.sequence(UserIndex(u))) {
      total += 1;
      for (std::size_t a = 0; a < A; ++a)
        for (std::size_t k = 0; k < P; ++k)
          if (s.user_preferences[(u * A + a) * P + k] == s.aspect(e.item, a)) hits[a] += 1;
    }
  std::vector<double> lift(A);
  for (std::size_t a = 0; a < A; ++a) {
    double chance = std::min(1.0, double(P) / double(s.aspect_sizes[a]));
    lift[a] = (hits[a] / total - chance) / (1.0 - chance);
  }
  return lift;
}

void require_same(const SyntheticCatalog& a, const SyntheticCatalog& b) {
  REQUIRE(a.item_aspects == b.item_aspects);
  REQUIRE(a.user_preferences == b.user_preferences);
  REQUIRE(a.dataset.catalog.size() == b.dataset.catalog.size());
  for (std::size_t i = 0; i < a.dataset.catalog.size(); ++i)
    REQUIRE(a.dataset.catalog.values(ItemIndex(i)) == b.dataset.catalog.values(ItemIndex(i)));
  REQUIRE(a.dataset.interactions.num_users() == b.dataset.interactions.num_users());
  for (std::size_t u = 0; u < a.dataset.interactions.num_users(); ++u) {
    const auto& x = a.dataset.interactions.sequence(UserIndex(u));
    const auto& y = b.dataset.interactions.sequence(UserIndex(u));
    REQUIRE(x.size() == y.size());
    for (std::size_t k = 0; k < x.size(); ++k) {
      REQUIRE(x[k].item == y[k].item);
      REQUIRE(x[k].timestamp == y[k].timestamp);
      REQUIRE(x[k].rating == y[k].rating);
    }
  }
}

}  // namespace

TEST_CASE("the default synthetic dataset has the documented shape") {
  auto s = generate_synthetic();
  REQUIRE(s.dataset.name == "synthetic");
  REQUIRE(s.dataset.catalog.size() == 2000);
  REQUIRE(s.dataset.interactions.num_users() == 3000);
  REQUIRE(s.dataset.catalog.attribute_names() == std::vector<std::string>{"title", "description", "tags", "category"});
  REQUIRE(s.aspect_names == std::vector<std::string>{"topic", "region", "tone", "format"});
  REQUIRE(s.aspect_sizes == std::vector<std::int64_t>{12, 8, 6, 5});
  REQUIRE(s.item_aspects.size() == 2000 * 4);
  REQUIRE(s.user_preferences.size() == 3000 * 4 * 2);
  REQUIRE(s.dataset.catalog.id(7) == "i7");
  REQUIRE(s.dataset.interactions.user_id(9) == "u9");
  // After the evaluation protocol's cleaning nearly every user still has a usable sequence.
  auto seqs = build_sequences(s.dataset);
  REQUIRE(seqs.users.size() >= 2900);
  REQUIRE(seqs.num_interactions() >= 10 * seqs.users.size());
}

TEST_CASE("synthetic generation is deterministic for a seed and seeds differ") {
  auto a = generate_synthetic(small_options(5));
  auto b = generate_synthetic(small_options(5));
  require_same(a, b);
  auto c = generate_synthetic(small_options(6));
  REQUIRE(a.item_aspects != c.item_aspects);
  REQUIRE(a.dataset.catalog.values(0) != c.dataset.catalog.values(0));
  REQUIRE(a.user_preferences != c.user_preferences);
  REQUIRE(a.vocabulary != c.vocabulary);
}

TEST_CASE("a smaller synthetic catalog is a prefix of a larger one with the same seed") {
  auto big = small_options(3);
  big.num_items = 900;
  auto small = small_options(3);
  small.num_items = 300;
  auto b = generate_synthetic(big);
  auto s = generate_synthetic(small);
  for (ItemIndex i = 0; i < 300; ++i) REQUIRE(s.dataset.catalog.values(i) == b.dataset.catalog.values(i));
  REQUIRE(std::equal(s.item_aspects.begin(), s.item_aspects.end(), b.item_aspects.begin()));
}

TEST_CASE("the streaming generator yields exactly what generate_synthetic holds") {
  auto o = small_options(8);
  auto full = generate_synthetic(o);
  SyntheticGenerator gen(o);
  SyntheticItem item;
  for (std::int64_t i : {0, 17, 599}) {
    gen.item(i, item);
    REQUIRE(item.values == full.dataset.catalog.values(ItemIndex(i)));
    REQUIRE(item.aspects[2] == full.aspect(ItemIndex(i), 2));
  }
  SyntheticUser user, user_cached;
  for (std::int64_t u : {0, 123, 299}) {
    gen.user(u, user);
    gen.user(u, user_cached, full.item_aspects.data());
    REQUIRE(user.events.size() == full.dataset.interactions.sequence(UserIndex(u)).size());
    REQUIRE(user.events.size() == user_cached.events.size());
    for (std::size_t k = 0; k < user.events.size(); ++k) {
      REQUIRE(user.events[k].item == full.dataset.interactions.sequence(UserIndex(u))[k].item);
      REQUIRE(user.events[k].item == user_cached.events[k].item);
    }
  }
  REQUIRE_THROWS_AS(gen.item(600, item), IndexError);
  REQUIRE_THROWS_AS(gen.user(-1, user), IndexError);
}

TEST_CASE("aspects are drawn independently of each other and uniformly") {
  auto o = small_options(11);
  o.num_items = 6000;
  o.num_users = 0;
  auto s = generate_synthetic(o);
  const std::size_t A = s.num_aspects();
  for (std::size_t a = 0; a < A; ++a) {
    for (std::size_t b = a + 1; b < A; ++b) {
      int ka = int(s.aspect_sizes[a]), kb = int(s.aspect_sizes[b]);
      double chi = chi_square(s, [&](ItemIndex i) { return s.aspect(i, a); }, ka,
                              [&](ItemIndex i) { return s.aspect(i, b); }, kb);
      double limit = chi_square_quantile(double((ka - 1) * (kb - 1)), 3.5);
      CAPTURE(a, b, chi, limit);
      REQUIRE(chi < limit);
    }
    // Goodness of fit against the uniform distribution.
    std::vector<double> counts(std::size_t(s.aspect_sizes[a]), 0.0);
    for (ItemIndex i = 0; i < ItemIndex(o.num_items); ++i) counts[std::size_t(s.aspect(i, a))] += 1;
    double expected = double(o.num_items) / double(counts.size()), chi = 0;
    for (double c : counts) chi += (c - expected) * (c - expected) / expected;
    CAPTURE(a, chi);
    REQUIRE(chi < chi_square_quantile(double(counts.size() - 1), 3.5));
  }
  // The statistic has the power to see a dependence: topic against (topic mod 8).
  double dependent = chi_square(s, [&](ItemIndex i) { return s.aspect(i, 0); }, 12,
                                [&](ItemIndex i) { return s.aspect(i, 0) % 8; }, 8);
  REQUIRE(dependent > 10 * chi_square_quantile(77.0, 3.5));
}

TEST_CASE("each attribute's text reveals the two or more aspects it mixes, and no other") {
  auto o = small_options(4);
  o.num_items = 3000;
  o.num_users = 0;
  auto s = generate_synthetic(o);
  for (std::size_t t = 0; t < o.attributes.size(); ++t) {
    auto revealed = revealed_aspects(s, t);
    std::set<std::string> configured(o.attributes[t].aspects.begin(), o.attributes[t].aspects.end());
    CAPTURE(o.attributes[t].name, revealed);
    REQUIRE(revealed.size() >= 2);
    REQUIRE(revealed == configured);
  }
}

TEST_CASE("users' interactions concentrate on their preferred aspect values well above chance") {
  auto o = small_options(2);
  o.num_items = 2000;
  o.num_users = 500;
  auto lift = preference_lift(generate_synthetic(o));
  for (double l : lift) {
    CAPTURE(lift);
    REQUIRE(l > 0.25);
  }
  // Negative control: with preferences switched off the same measure sits at chance.
  o.noise = 1.0;
  auto flat = preference_lift(generate_synthetic(o));
  for (double l : flat) {
    CAPTURE(flat);
    REQUIRE(std::abs(l) < 0.05);
  }
}

TEST_CASE("synthetic users have sorted distinct preferences, ordered timestamps and 1-5 ratings") {
  auto o = small_options(9);
  o.aspect_sizes = {12, 8, 6, 1};  // an aspect with fewer values than preferred_values
  auto s = generate_synthetic(o);
  const std::size_t A = 4, P = 2;
  for (std::size_t u = 0; u < std::size_t(o.num_users); ++u) {
    for (std::size_t a = 0; a < 3; ++a) {
      auto first = s.user_preferences[(u * A + a) * P], second = s.user_preferences[(u * A + a) * P + 1];
      REQUIRE(first < second);
      REQUIRE(second < s.aspect_sizes[a]);
    }
    REQUIRE(s.user_preferences[(u * A + 3) * P] == 0);
    REQUIRE(s.user_preferences[(u * A + 3) * P + 1] == -1);
    const auto& events = s.dataset.interactions.sequence(UserIndex(u));
    REQUIRE(std::int64_t(events.size()) >= o.min_sequence_length);
    REQUIRE(std::int64_t(events.size()) <= o.max_sequence_length);
    for (std::size_t k = 0; k < events.size(); ++k) {
      REQUIRE(events[k].rating >= 1.0f);
      REQUIRE(events[k].rating <= 5.0f);
      REQUIRE(events[k].rating == std::floor(events[k].rating));
      REQUIRE(events[k].item < ItemIndex(o.num_items));
      REQUIRE(events[k].timestamp >= o.start_timestamp);
      if (k) REQUIRE(events[k].timestamp >= events[k - 1].timestamp);
    }
  }
}

TEST_CASE("synthetic options round-trip through JSON and bad JSON names the key") {
  SyntheticOptions o;
  o.seed = 99;
  o.num_items = 1234;
  o.aspect_names = {"genre", "mood"};
  o.aspect_sizes = {7, 3};
  o.attributes = {{"name", AttributeStyle::phrase, {"mood", "genre"}}, {"about", AttributeStyle::sentences, {"genre"}}};
  o.noise = 0.5;
  nlohmann::json j = o;
  auto back = j.get<SyntheticOptions>();
  REQUIRE(nlohmann::json(back) == j);
  REQUIRE(back.attributes[1].style == AttributeStyle::sentences);
  REQUIRE(back.aspect_sizes == std::vector<std::int64_t>{7, 3});

  auto partial = nlohmann::json::parse(R"({"num_items": 50, "seed": 3})").get<SyntheticOptions>();
  REQUIRE(partial.num_items == 50);
  REQUIRE(partial.num_users == SyntheticOptions{}.num_users);

  auto parse = [](const char* text) { return nlohmann::json::parse(text).get<SyntheticOptions>(); };
  REQUIRE_THROWS_WITH(parse(R"({"num_itemz": 5})"), Catch::Contains("unknown key 'num_itemz'") && Catch::Contains("num_items"));
  REQUIRE_THROWS_WITH(parse(R"({"num_items": "many"})"), Catch::Contains("'num_items'") && Catch::Contains("integer"));
  REQUIRE_THROWS_WITH(parse(R"({"noise": [1]})"), Catch::Contains("'noise'") && Catch::Contains("number"));
  REQUIRE_THROWS_WITH(parse(R"({"attributes": [{"name": "t", "style": "poem"}]})"),
                      Catch::Contains("attributes[0].style") && Catch::Contains("'poem'"));
  REQUIRE_THROWS_AS(parse(R"({"seed": -1})"), ValueError);
}

TEST_CASE("invalid synthetic options are rejected naming the field") {
  auto expect = [](SyntheticOptions o, const std::string& what) {
    CAPTURE(what);
    REQUIRE_THROWS_AS(generate_synthetic(o), ValueError);
    REQUIRE_THROWS_WITH(generate_synthetic(o), Catch::Contains(what));
  };
  auto o = small_options();
  o.aspect_sizes = {3, 3};
  expect(o, "aspect_sizes: expected one size per aspect name (4), got 2 sizes");
  o = small_options();
  o.attributes[0].aspects = {"topic", "colour"};
  expect(o, "'colour'");
  o = small_options();
  o.noise = 1.5;
  expect(o, "noise");
  o = small_options();
  o.num_items = 0;
  expect(o, "num_items");
  o = small_options();
  o.max_sequence_length = 3;
  expect(o, "max_sequence_length");
  o = small_options();
  o.aspect_names = {"topic", "topic", "tone", "format"};
  expect(o, "'topic' twice");
}
