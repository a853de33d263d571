// libFuzzer target: the pipeline config (config.json of `lamia run`, read by
// lamia::load_pipeline_config). A config that loads is written back (to_json) and read again: the
// second read must succeed and give the same JSON, as `lamia run` relies on when it reads the
// config.json it wrote into the run folder.
//
// Seeds: configs/**/*.json (fuzz/make_seeds.py) and, written by this target (LAMIA_FUZZ_WRITE_SEEDS,
// fuzz/fuzz_torch.hpp), the built-in default with every key listed, whole and by section.
#include "fuzz_torch.hpp"

#include <lamia/pipeline/pipeline_config.hpp>

#include <nlohmann/json.hpp>

#include <optional>

namespace {

using json = nlohmann::json;
using namespace lamia::fuzz;

json written(const lamia::PipelineConfig& c) {
  json j;
  lamia::to_json(j, c);
  return j;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  init_torch_target([](SeedWriter& seeds, const fs::path&) {
    const json all = written(lamia::PipelineConfig{});
    seeds.add({all.dump()});
    seeds.add({all.dump(1)});
    for (const auto& [key, value] : all.items()) seeds.add({json{{key, value}}.dump()});
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto dir = scratch().fresh_dir();
  write_file(dir / "config.json", std::string_view(reinterpret_cast<const char*>(data), size));
  std::optional<lamia::PipelineConfig> c;
  expect_clean([&] { c = lamia::load_pipeline_config(dir / "config.json"); });
  if (!c) return 0;
  const json first = written(*c);
  const auto saved = scratch().fresh_dir("saved");
  write_file(saved / "config.json", first.dump(2));
  lamia::PipelineConfig again;
  try {
    again = lamia::load_pipeline_config(saved / "config.json");
  } catch (const lamia::Error& e) {
    fail(std::string("a loaded config, written back, does not load: ") + e.what());
  }
  if (written(again) != first) fail("a loaded config, written back and read again, changed");
  return 0;
}
