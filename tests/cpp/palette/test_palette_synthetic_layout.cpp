// The synthetic catalog's aspect_per_attribute layout (issue 11, E2): one predicted attribute per
// aspect, the content a prose description, as the palette stage reads it (r = 1).
#include <lamia/data/synthetic.hpp>
#include <lamia/palette.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <sstream>

using namespace lamia;

namespace {

SyntheticOptions small_options() {
  SyntheticOptions o;
  o.num_items = 40;
  o.num_users = 0;
  return o;
}

}  // namespace

TEST_CASE("the default layout keeps the listed attributes", "[palette][synthetic]") {
  SyntheticOptions o;
  CHECK(o.attribute_layout == SyntheticAttributeLayout::listed);
  const auto effective = o.effective_attributes();
  REQUIRE(effective.size() == 4);
  CHECK(effective[0].name == "title");
  auto small = small_options();
  auto listed = generate_synthetic(small);
  CHECK(listed.dataset.catalog.attribute_names() == std::vector<std::string>{"title", "description", "tags", "category"});
}

TEST_CASE("aspect_per_attribute: description prose of all aspects, then one exact attribute per aspect",
          "[palette][synthetic]") {
  auto o = small_options();
  o.attribute_layout = SyntheticAttributeLayout::aspect_per_attribute;
  o.attributes = {};  // not read by this layout
  auto synth = generate_synthetic(o);
  const auto& catalog = synth.dataset.catalog;
  REQUIRE(catalog.attribute_names() ==
          std::vector<std::string>{"description", "topic_text", "region_text", "tone_text", "format_text"});
  // The same items (aspect values) as the listed layout: only the text differs.
  CHECK(synth.item_aspects == generate_synthetic(small_options()).item_aspects);
  for (ItemIndex i = 0; i < static_cast<ItemIndex>(catalog.size()); ++i) {
    std::set<std::string> words;
    std::istringstream in(catalog.value(i, 0));
    for (std::string w; in >> w;) {
      while (!w.empty() && !std::isalpha(static_cast<unsigned char>(w.back()))) w.pop_back();
      if (!w.empty()) w[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(w[0])));
      words.insert(w);
    }
    for (std::size_t a = 0; a < synth.num_aspects(); ++a) {
      const auto value = synth.aspect(i, a);
      // The aspect's attribute is its value name, nothing else.
      CHECK(catalog.value(i, 1 + a) == synth.value_names[a][value]);
      // The description names every aspect through one of the value's words.
      bool found = false;
      for (const auto& w : synth.vocabulary[a][value]) found = found || words.count(w) > 0;
      INFO("item " << i << " aspect " << synth.aspect_names[a] << ": " << catalog.value(i, 0));
      CHECK(found);
    }
  }
  // With r = 1 the palette encoder's content is the description alone.
  BlockLayoutOptions layout;
  layout.num_content_attributes = 1;
  std::vector<std::string> pieces;
  auto tokenized = tokenize_catalog(
      catalog,
      [&](std::string_view s) {
        pieces.emplace_back(s);
        return std::vector<PaletteTokenId>(1, 7);
      },
      layout);
  CHECK(pieces.at(0) == "description: " + catalog.value(0, 0));
  CHECK(tokenized.num_attributes() == 5);
}

TEST_CASE("aspect_per_attribute follows aspect_names and is validated", "[palette][synthetic]") {
  auto o = small_options();
  o.attribute_layout = SyntheticAttributeLayout::aspect_per_attribute;
  o.aspect_names = {"colour", "size"};
  o.aspect_sizes = {3, 2};
  auto attrs = o.effective_attributes();
  REQUIRE(attrs.size() == 3);
  CHECK(attrs[1].name == "colour_text");
  CHECK(attrs[1].aspects == std::vector<std::string>{"colour"});
  CHECK(attrs[0].aspects == std::vector<std::string>{"colour", "size"});
  CHECK_NOTHROW(o.validate());
  auto json = options::to_json(o);
  CHECK(json.at("attribute_layout") == "aspect_per_attribute");
  SyntheticOptions back;
  options::from_json(json, back);
  CHECK(back.attribute_layout == SyntheticAttributeLayout::aspect_per_attribute);
}
