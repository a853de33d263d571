#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/palette/palette_file.hpp>
#include <lamia/pipeline/pipeline.hpp>
#include <lamia/quantize/semantic_id_table.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>

using namespace lamia;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("lamia_pipeline_" + name);
  fs::remove_all(dir);
  return dir;
}

/// A pipeline small enough for a test: a few hundred items, a one-layer model, a few steps.
PipelineConfig tiny_config() {
  PipelineConfig c;
  c.dataset.synthetic.num_items = 300;
  c.dataset.synthetic.num_users = 50;
  c.tokenizer.vocab_size = 400;
  c.model.hidden_size = 32;
  c.model.num_layers = 1;
  c.model.num_heads = 2;
  c.model.ffn_dim = 64;
  c.palette.batch_size = 32;
  c.palette.epochs = 1;
  c.palette.max_steps = 8;
  c.palette.attribute_token_budget = 16;
  c.palette.answer_token_budget = 8;
  c.quantize.pca_dim = 8;
  c.quantize.num_codes = 16;
  c.quantize.rqvae_max_epochs = 5;
  c.progress = false;
  return c;
}

}  // namespace

TEST_CASE("config JSON keeps defaults for missing keys and round-trips") {
  PipelineConfig c;
  from_json(nlohmann::json::parse(R"({"palette": {"palette_size": 6}, "quantize": {"num_codes": 32}})"), c);
  REQUIRE(c.palette.palette_size == 6);
  REQUIRE(c.quantize.num_codes == 32);
  REQUIRE(c.model.hidden_size == PipelineConfig{}.model.hidden_size);
  nlohmann::json j;
  to_json(j, c);
  PipelineConfig back;
  from_json(j, back);
  nlohmann::json j2;
  to_json(j2, back);
  REQUIRE(j == j2);
}

TEST_CASE("config errors name the key path and the file") {
  PipelineConfig c;
  auto bad_key = nlohmann::json::parse(R"({"palette": {"batchsize": 3}})");
  REQUIRE_THROWS_WITH(from_json(bad_key, c), Catch::Contains("palette.batchsize"));
  auto bad_type = nlohmann::json::parse(R"({"model": {"num_layers": "two"}})");
  REQUIRE_THROWS_WITH(from_json(bad_type, c), Catch::Contains("model.num_layers") && Catch::Contains("integer"));
  auto bad_synthetic = nlohmann::json::parse(R"({"dataset": {"synthetic": {"num_itemz": 3}}})");
  REQUIRE_THROWS_WITH(from_json(bad_synthetic, c), Catch::Contains("dataset.synthetic") && Catch::Contains("num_itemz"));

  auto dir = scratch("config");
  write_text_atomically(dir / "broken.json", "{\"palette\": {");
  REQUIRE_THROWS_AS(load_pipeline_config(dir / "broken.json"), ParseError);
  REQUIRE_THROWS_WITH(load_pipeline_config(dir / "broken.json"), Catch::Contains("broken.json"));
  write_text_atomically(dir / "unknown.json", R"({"qantize": {}})");
  REQUIRE_THROWS_WITH(load_pipeline_config(dir / "unknown.json"), Catch::Contains("unknown.json") && Catch::Contains("qantize"));
}

TEST_CASE("the pipeline writes every artifact, and the artifacts agree with each other") {
  auto dir = scratch("run");
  std::ostringstream log;
  auto result = run_pipeline(tiny_config(), dir, log);

  for (const char* f : {"config.json", "dataset.json", "palettes.bin", "embeddings.bin", "diagnostics.json"})
    REQUIRE(fs::exists(dir / f));
  REQUIRE(fs::exists(dir / "tokenizer" / "vocab.json"));

  auto diagnostics = nlohmann::json::parse(read_file(dir / "diagnostics.json"));
  REQUIRE(diagnostics["tokenizers"].size() == 3);
  for (const char* name : {"lamia", "rq-vae", "residual-kmeans"}) {
    INFO(name);
    const auto& d = diagnostics["tokenizers"][name];
    REQUIRE(d["table"]["num_items"] == 300);
    REQUIRE(d.contains("nmi_with_labels"));  // the synthetic aspects are the labels
    auto table = SemanticIdTable::load(dir / "semantic_ids" / (std::string(name) + ".bin"));
    REQUIRE(table.num_items() == 300);
    // Every item has a unique ID (the index token resolves collisions).
    for (ItemIndex i = 0; i < 300; ++i) REQUIRE(table.item(table.id(i)) == i);
  }
  auto palettes = load_palettes(dir / "palettes.bin");
  REQUIRE(palettes.palettes.size(0) == 300);
  REQUIRE(palettes.palettes.size(1) == 4);
  REQUIRE(palettes.item_ids.front() == "i0");
  REQUIRE(diagnostics["tokenizers"]["lamia"]["positions"].size() == 4);
  REQUIRE(diagnostics["dataset"]["items"] == 300);

  std::ostringstream table;
  print_comparison(table, result.tokenizers);
  REQUIRE_THAT(table.str(), Catch::Contains("lamia") && Catch::Contains("rq-vae") && Catch::Contains("residual-kmeans"));
}
