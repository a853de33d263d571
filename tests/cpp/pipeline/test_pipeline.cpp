#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/palette/palette_file.hpp>
#include <lamia/core/version.hpp>
#include <lamia/pipeline/metrics_table.hpp>
#include <lamia/pipeline/pipeline.hpp>
#include <lamia/ids/semantic_id_table.hpp>

#include "tiny_pipeline_config.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace lamia;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("lamia_pipeline_" + name);
  fs::remove_all(dir);
  return dir;
}

PipelineConfig tiny_config() { return testing::tiny_pipeline_config(); }

}  // namespace

TEST_CASE("config JSON keeps defaults for missing keys and round-trips") {
  PipelineConfig c;
  from_json(nlohmann::json::parse(
                R"({"palette": {"encoder": {"palette_size": 6, "losses": {"contrastive": "intra"}}},
                    "quantize": {"lamia": {"kmeans": {"num_codes": 32}}}})"),
            c);
  REQUIRE(c.palette.encoder.palette_size() == 6);
  REQUIRE(c.palette.encoder.losses().contrastive() == ContrastiveMode::kIntraOnly);
  REQUIRE(c.quantize.lamia.kmeans.num_codes == 32);
  REQUIRE(c.quantize.residual_kmeans.kmeans.num_codes == 64);
  REQUIRE(c.model.scratch.hidden_size == PipelineConfig{}.model.scratch.hidden_size);
  nlohmann::json j;
  to_json(j, c);
  PipelineConfig back;
  from_json(j, back);
  nlohmann::json j2;
  to_json(j2, back);
  REQUIRE(j == j2);
}

TEST_CASE("config defaults are the pipeline's, not the library structs' (the paper's)") {
  const PipelineConfig c;
  REQUIRE(c.quantize.lamia.pca_dim == 32);
  REQUIRE(c.quantize.lamia.kmeans.num_codes == 64);
  REQUIRE(c.quantize.lamia.kmeans.seed == 2024);
  REQUIRE(c.quantize.rq_vae.num_codes() == 64);
  REQUIRE(c.quantize.rq_vae_train.max_epochs == 200);
  REQUIRE(c.palette.trainer.loop().learning_rate() == 1e-3);
  REQUIRE(c.palette.trainer.batch_size() == 64);
  REQUIRE(c.palette.trainer.loop().epochs() == 3);
  REQUIRE(c.palette.trainer.validation_fraction() == 0.05);
  REQUIRE(c.palette.trainer.seed() == 2024);
  REQUIRE(c.palette.encoder.attribute_token_budget() == 48);
  REQUIRE(c.model.scratch.hidden_size == 128);
  REQUIRE(c.model.scratch.num_layers == 2);
  REQUIRE(c.model.scratch.ffn_dim == 512);
  REQUIRE(c.model.scratch.max_position_embeddings == 512);
  REQUIRE(c.model.scratch.dropout == 0.0);
  REQUIRE(c.model.scratch.seed == 2024);
  REQUIRE(c.recommend.model.hidden_size == 64);
  // The palette method: routing + batch-centred intra + decorrelation 0.003 (docs/research.md, "Seeds");
  // the library's own options keep the paper's method.
  REQUIRE(c.palette.encoder.task_routing() == TaskRouting::kOnePosition);
  REQUIRE(c.palette.encoder.num_content_attributes() == 1);
  REQUIRE(c.palette.encoder.losses().intra_centring() == IntraCentring::kBatch);
  REQUIRE(c.palette.encoder.losses().decorrelation_weight() == 0.003);
  REQUIRE(c.palette.encoder.losses().gamma() == 0.1);
  REQUIRE(PaletteLossOptions().intra_centring() == IntraCentring::kNone);
  REQUIRE(PaletteLossOptions().decorrelation_weight() == 0.0);
}

TEST_CASE("the paper's method stays one config away from the default") {
  for (const char* name : {"paper-method.json", "amazon-office-cpu.json", "cpu/amazon-cds.json", "cpu/hm.json",
                           "cpu/mind.json", "cpu/movielens.json"}) {
    INFO(name);
    const auto c = load_pipeline_config(fs::path(LAMIA_SOURCE_DIR) / "configs" / name);
    REQUIRE(c.palette.encoder.task_routing() == TaskRouting::kAll);
    REQUIRE(c.palette.encoder.losses().intra_centring() == IntraCentring::kNone);
    REQUIRE(c.palette.encoder.losses().decorrelation_weight() == 0.0);
  }
}

TEST_CASE("the configuration block of docs/pipeline.md is the default config") {
  const std::string doc = read_file(fs::path(LAMIA_SOURCE_DIR) / "docs" / "pipeline.md");
  const auto section = doc.find("## Configuration");
  REQUIRE(section != std::string::npos);
  const auto begin = doc.find("```json\n", section);
  REQUIRE(begin != std::string::npos);
  const auto end = doc.find("```", begin + 8);
  REQUIRE(end != std::string::npos);
  const auto documented = nlohmann::json::parse(doc.substr(begin + 8, end - begin - 8));
  nlohmann::json actual;
  to_json(actual, PipelineConfig{});
  INFO("regenerate the block from pylamia.default_pipeline_config() or `to_json(PipelineConfig{})`");
  REQUIRE(documented == actual);
}

TEST_CASE("config errors name the key path and the file") {
  PipelineConfig c;
  auto bad_key = nlohmann::json::parse(R"({"palette": {"trainer": {"batchsize": 3}}})");
  REQUIRE_THROWS_WITH(from_json(bad_key, c), Catch::Contains("palette.trainer.batchsize") && Catch::Contains("batch_size"));
  auto bad_type = nlohmann::json::parse(R"({"model": {"scratch": {"num_layers": "two"}}})");
  REQUIRE_THROWS_WITH(from_json(bad_type, c), Catch::Contains("model.scratch.num_layers") && Catch::Contains("integer"));
  auto bad_range = nlohmann::json::parse(R"({"quantize": {"lamia": {"kmeans": {"num_codes": 0}}}})");
  REQUIRE_THROWS_WITH(from_json(bad_range, c), Catch::Contains("quantize.lamia.kmeans.num_codes") && Catch::Contains(">= 1"));
  auto bad_enum = nlohmann::json::parse(R"({"palette": {"encoder": {"losses": {"contrastive": "both!"}}}})");
  REQUIRE_THROWS_WITH(from_json(bad_enum, c), Catch::Contains("palette.encoder.losses.contrastive") && Catch::Contains("'intra'"));
  auto bad_name = nlohmann::json::parse(R"({"recommend": {"tokenizers": ["lamia", "tiger"]}})");
  REQUIRE_THROWS_WITH(from_json(bad_name, c), Catch::Contains("recommend.tokenizers") && Catch::Contains("tiger"));
  auto bad_checkpoint = nlohmann::json::parse(R"({"palette": {"trainer": {"checkpoint_path": "x.ckpt"}}})");
  REQUIRE_THROWS_WITH(from_json(bad_checkpoint, c), Catch::Contains("palette.trainer.checkpoint_path"));
  auto bad_heads = nlohmann::json::parse(R"({"recommend": {"model": {"hidden_size": 30, "num_heads": 4}}})");
  REQUIRE_THROWS_WITH(from_json(bad_heads, c), Catch::Contains("recommend.model") && Catch::Contains("num_heads"));
  auto bad_synthetic = nlohmann::json::parse(R"({"dataset": {"synthetic": {"num_itemz": 3}}})");
  REQUIRE_THROWS_WITH(from_json(bad_synthetic, c), Catch::Contains("dataset.synthetic") && Catch::Contains("num_itemz"));
  REQUIRE(c.palette.trainer.batch_size() == 64);  // a failed read changes nothing

  auto dir = scratch("config");
  write_text_atomically(dir / "broken.json", "{\"palette\": {");
  REQUIRE_THROWS_AS(load_pipeline_config(dir / "broken.json"), ParseError);
  REQUIRE_THROWS_WITH(load_pipeline_config(dir / "broken.json"), Catch::Contains("broken.json"));
  write_text_atomically(dir / "unknown.json", R"({"qantize": {}})");
  REQUIRE_THROWS_WITH(load_pipeline_config(dir / "unknown.json"), Catch::Contains("unknown.json") && Catch::Contains("qantize"));
  write_text_atomically(dir / "range.json", R"({"palette": {"trainer": {"validation_fraction": 1.5}}})");
  REQUIRE_THROWS_WITH(load_pipeline_config(dir / "range.json"),
                      Catch::Contains("range.json") && Catch::Contains("palette.trainer.validation_fraction"));
}

TEST_CASE("the pipeline writes every artifact, and the artifacts agree with each other") {
  auto dir = scratch("run");
  std::ostringstream log;
  auto result = run_pipeline(tiny_config(), dir, log);

  for (const char* f : {"config.json", "dataset.json", "palettes.bin", "embeddings.bin", "diagnostics.json",
                        "metrics.json", "manifest.json"})
    REQUIRE(fs::exists(dir / f));
  REQUIRE(fs::exists(dir / "tokenizer" / "vocab.json"));

  auto diagnostics = nlohmann::json::parse(read_file(dir / "diagnostics.json"));
  REQUIRE(diagnostics["tokenizers"].size() == 3);
  for (const char* name : {"lamia", "rq-vae", "residual-kmeans"}) {
    INFO(name);
    const auto& d = diagnostics["tokenizers"][name];
    REQUIRE(d["table"]["num_items"] == 300);
    REQUIRE(d.contains("nmi_with_labels"));  // the synthetic aspects are the labels
    REQUIRE(d["ami_with_labels"].size() == d["nmi_with_labels"].size());
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
  // The float palettes' own diagnostics, probed against the synthetic aspects.
  REQUIRE(diagnostics["palettes"]["positions"].size() == 4);
  REQUIRE(diagnostics["palettes"]["cross_position_r2"].size() == 4);
  REQUIRE(diagnostics["palettes"]["linear_probe"]["accuracy"][0].size() == diagnostics["labels"].size());

  std::ostringstream table;
  print_comparison(table, result.tokenizers);
  REQUIRE_THAT(table.str(), Catch::Contains("lamia") && Catch::Contains("rq-vae") && Catch::Contains("residual-kmeans"));
}

namespace {

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE("metrics.json: every method on the same test users, beam lists of real items") {
  auto dir = scratch("metrics");
  std::ostringstream log;
  auto result = run_pipeline(tiny_config(), dir, log);
  const auto& m = result.metrics;
  REQUIRE(m["test_users"] == 20);
  for (const char* name : {"lamia", "oracle", "popularity", "transition", "sasrec-ce"}) {
    INFO(name);
    REQUIRE(m["methods"].contains(name));
    // ID-based methods rank every test user fully; generative ones exactly on the first exact_users
    REQUIRE(m["methods"][name]["exact"]["users"] == (std::string(name) == "lamia" || std::string(name) == "oracle" ? 15 : 20));
    const double r10 = m["methods"][name]["exact"]["recall@10"];
    REQUIRE(r10 >= 0.0);
    REQUIRE(r10 <= 1.0);
  }
  REQUIRE(m["methods"]["lamia"]["beam"]["users"] == 20);
  REQUIRE(m["methods"]["lamia"].contains("beam_exact_agreement"));
  REQUIRE(m["exact_users"] == 15);
  std::ostringstream table;
  print_metrics(table, m);
  REQUIRE_THAT(table.str(), Catch::Contains("sasrec-ce") && Catch::Contains("R@10"));
}

TEST_CASE("manifest: a rerun skips what is up to date and reruns exactly the stages a change affects") {
  auto dir = scratch("manifest");
  std::ostringstream log;
  auto config = tiny_config();
  auto first = run_pipeline(config, dir, log);
  const std::vector<std::string> all = {"dataset", "tokenizer", "palette", "export", "quantize", "recommend", "evaluate"};
  REQUIRE(first.stages_run == all);
  const auto diagnostics = read_file(dir / "diagnostics.json");

  auto again = run_pipeline(config, dir, log);
  REQUIRE(again.stages_run.empty());
  REQUIRE(again.stages_skipped == all);
  REQUIRE(read_file(dir / "diagnostics.json") == diagnostics);

  config.evaluate.top_k = 5;  // only the evaluation reads it
  REQUIRE(run_pipeline(config, dir, log).stages_run == std::vector<std::string>{"evaluate"});

  config.recommend.epochs = 2;
  REQUIRE(run_pipeline(config, dir, log).stages_run == std::vector<std::string>{"recommend", "evaluate"});

  config.quantize.lamia.kmeans.num_codes = 12;
  REQUIRE(run_pipeline(config, dir, log).stages_run == std::vector<std::string>{"quantize", "recommend", "evaluate"});

  fs::remove(dir / "metrics.json");  // a deleted artifact is recomputed, nothing else
  REQUIRE(run_pipeline(config, dir, log).stages_run == std::vector<std::string>{"evaluate"});

  // --only: exactly the named stages run, on the artifacts as they are, whatever else changed.
  PipelineRunOptions only;
  only.only = {"evaluate"};
  auto changed = config;
  changed.tokenizer.vocab_size += 7;  // would rerun everything without --only
  changed.evaluate.top_k = 3;
  auto r = run_pipeline(changed, dir, log, only);
  REQUIRE(r.stages_run == std::vector<std::string>{"evaluate"});
  REQUIRE(r.metrics["top_k"] == 3);
  only.only = {"evalute"};
  REQUIRE_THROWS_WITH(run_pipeline(config, dir, log, only), Catch::Contains("unknown stage 'evalute'"));
  only.only = {"evaluate"};
  REQUIRE_THROWS_WITH(run_pipeline(config, scratch("only_fresh"), log, only),
                      Catch::Contains("stage 'dataset' has not completed"));

  // --until: the stages up to it, skipped when up to date as usual, and nothing after it.
  PipelineRunOptions until;
  until.until = "quantize";
  auto later = config;
  later.recommend.epochs = 3;  // would rerun recommend and evaluate without --until
  auto u = run_pipeline(later, dir, log, until);
  REQUIRE(u.stages_run.empty());
  REQUIRE(u.stages_skipped == std::vector<std::string>{"dataset", "tokenizer", "palette", "export", "quantize"});
  REQUIRE(u.tokenizers.size() == first.tokenizers.size());
  until.until = "quantise";
  REQUIRE_THROWS_WITH(run_pipeline(config, dir, log, until), Catch::Contains("unknown stage 'quantise'"));

  // The manifest records every artifact with its size and checksum.
  auto manifest = nlohmann::json::parse(read_file(dir / "manifest.json"));
  std::vector<std::string> names;
  for (const auto& [name, a] : manifest["artifacts"].items()) {
    names.push_back(name);
    REQUIRE(a["lamia_version"] == "0.1.0");
    REQUIRE(a["checksum"].get<std::string>().rfind("crc32:", 0) == 0);
  }
  REQUIRE(sorted(names) == sorted({"dataset", "tokenizer", "palette_encoder", "palette_training", "palettes",
                                   "embeddings", "semantic_ids", "diagnostics", "recommenders", "baselines",
                                   "metrics"}));
}

TEST_CASE("manifest: a folder whose artifact was changed is refused with one line naming it") {
  auto dir = scratch("corrupt");
  std::ostringstream log;
  auto config = tiny_config();
  config.recommend.tokenizers = {"lamia"};
  config.recommend.baselines = {"popularity"};
  run_pipeline(config, dir, log);
  {
    std::ofstream out(dir / "palettes.bin", std::ios::binary | std::ios::app);
    out << 'x';
  }
  REQUIRE_THROWS_WITH(run_pipeline(config, dir, log),
                      Catch::Contains("artifact 'palettes'") && Catch::Contains("does not match") &&
                          Catch::Contains("palettes.bin"));
  // A broken manifest is a parse error naming the file.
  write_text_atomically(dir / "manifest.json", "{\"format\": 3}");
  REQUIRE_THROWS_WITH(run_pipeline(config, dir, log), Catch::Contains("manifest.json"));
}

TEST_CASE("a codebook larger than the catalog is cut to the items, and said so") {
  auto dir = scratch("cut_k");
  std::ostringstream log;
  auto config = tiny_config();
  config.progress = true;
  config.quantize.lamia.kmeans.num_codes = 1000;  // 300 items
  PipelineRunOptions until;
  until.until = "quantize";
  run_pipeline(config, dir, log, until);
  const auto d = nlohmann::json::parse(read_file(dir / "diagnostics.json"));
  REQUIRE(d.contains("adjustments"));
  REQUIRE(d["adjustments"].dump().find("quantize.lamia.kmeans.num_codes = 1000 is more than the 300 items") !=
          std::string::npos);
  REQUIRE(log.str().find("quantize.lamia.kmeans.num_codes = 1000") != std::string::npos);
  config.quantize.lamia.reduce_k_when_few_items = false;  // then it is an error naming the option
  REQUIRE_THROWS_WITH(run_pipeline(config, dir, log, until), Catch::Contains("reduce_k_when_few_items"));
}

TEST_CASE("the library version matches the CMake project version") {
  const auto cmake = read_file(fs::path(LAMIA_SOURCE_DIR) / "CMakeLists.txt");
  REQUIRE_THAT(cmake, Catch::Contains(std::string("project(lamia VERSION ") + kLamiaVersion));
}
