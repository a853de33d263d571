// configs/research/*.json: their palette and synthetic sections parse into the library's options
// (unknown keys and bad values are errors there) and say what the experiments need.
#include <lamia/core/options.hpp>
#include <lamia/data/synthetic.hpp>
#include <lamia/palette.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

using namespace lamia;

namespace {

struct ResearchConfig {
  SyntheticOptions synthetic;
  PaletteEncoderOptions encoder = options::Defaults<PaletteEncoderOptions>::make();
};

ResearchConfig read_research_config(const std::string& name) {
  const auto path = std::filesystem::path(LAMIA_SOURCE_DIR) / "configs" / "research" / name;
  std::ifstream in(path);
  REQUIRE(in.good());
  const auto j = nlohmann::json::parse(in);
  ResearchConfig c;
  CHECK(j.at("dataset").at("format") == "synthetic");
  options::from_json(j.at("dataset").at("synthetic"), c.synthetic);
  options::from_json(j.at("palette").at("encoder"), c.encoder);
  c.synthetic.validate();
  return c;
}

}  // namespace

TEST_CASE("research configs parse and select the experiment's options", "[palette][configs]") {
  SECTION("E2: one attribute per aspect, prose content, the paper's method") {
    auto c = read_research_config("e2-aspect-attributes.json");
    CHECK(c.synthetic.attribute_layout == SyntheticAttributeLayout::aspect_per_attribute);
    CHECK(c.encoder.num_content_attributes() == 1);
    CHECK(c.encoder.task_routing() == TaskRouting::kAll);
    CHECK(c.encoder.losses().decorrelation_weight() == 0.0);
    CHECK(c.encoder.losses().intra_centring() == IntraCentring::kNone);
  }
  SECTION("E3: the positive control routes task i to LdP_(i mod L), one position per attribute") {
    auto c = read_research_config("e3-positive-control.json");
    CHECK(c.encoder.task_routing() == TaskRouting::kOnePosition);
    CHECK(c.encoder.palette_size() == static_cast<std::int64_t>(c.synthetic.effective_attributes().size()));
  }
  SECTION("method: batch-centred intra loss and the decorrelation penalty") {
    auto c = read_research_config("method-decorrelation.json");
    CHECK(c.encoder.losses().intra_centring() == IntraCentring::kBatch);
    CHECK(c.encoder.losses().decorrelation_weight() > 0);
    CHECK(c.encoder.task_routing() == TaskRouting::kAll);
  }
}

TEST_CASE("the new options' names are checked when read", "[palette][configs]") {
  auto enc = options::Defaults<PaletteEncoderOptions>::make();
  CHECK_THROWS_WITH(options::from_json(nlohmann::json{{"task_routing", "one"}}, enc), Catch::Contains("task_routing"));
  CHECK_THROWS_WITH(options::from_json(nlohmann::json{{"losses", {{"intra_centring", "mean"}}}}, enc),
                    Catch::Contains("intra_centring"));
  CHECK_THROWS_WITH(options::from_json(nlohmann::json{{"losses", {{"decorrelation_weight", -1}}}}, enc),
                    Catch::Contains("decorrelation_weight"));
  SyntheticOptions s;
  CHECK_THROWS_WITH(options::from_json(nlohmann::json{{"attribute_layout", "aspects"}}, s),
                    Catch::Contains("attribute_layout"));
}
