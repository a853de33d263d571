// Stage "dataset": loads the dataset (or generates the synthetic catalog) and writes its statistics.
#include "../context.hpp"

#include <lamia/data/statistics.hpp>
#include <lamia/pipeline/stage.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <system_error>

namespace lamia {
namespace fs = std::filesystem;
namespace {

// The source files as they are now (name, size, modification time), so that a changed file reruns
// the stage; the synthetic catalog has none (its options are the whole input).
nlohmann::json source_fingerprint(const PipelineDatasetConfig& dc) {
  nlohmann::json files = nlohmann::json::array();
  if (dc.format == "synthetic" || dc.path.empty()) return files;
  std::error_code ec;
  std::vector<fs::path> paths;
  if (fs::is_directory(dc.path, ec)) {
    for (auto it = fs::recursive_directory_iterator(dc.path, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_regular_file(ec)) paths.push_back(it->path());
    }
  } else {
    paths.push_back(dc.path);
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    const auto size = fs::file_size(p, ec);
    const auto mtime = fs::last_write_time(p, ec).time_since_epoch().count();
    files.push_back({p.generic_string(), ec ? 0 : size, ec ? 0 : mtime});
  }
  return files;
}

class DatasetStage : public Stage {
 public:
  std::string name() const override { return "dataset"; }
  std::vector<std::string> inputs(const PipelineConfig&) const override { return {}; }
  nlohmann::json config_section(const PipelineConfig& config) const override {
    nlohmann::json j;
    to_json(j, config);
    return {{"dataset", j.at("dataset")}, {"source", source_fingerprint(config.dataset)}};
  }
  std::vector<ArtifactSpec> run(PipelineContext& ctx) override {
    const auto t0 = std::chrono::steady_clock::now();
    auto& data = ctx.dataset();
    auto stats = compute_statistics(data.dataset).to_json();
    std::string dropped;
    if (ctx.config.dataset.drop_items_without_text) {
      stats["dropped_without_text"] = {{"items", data.items_without_text},
                                       {"interactions", data.interactions_without_text}};
      dropped = fmt::format(" after dropping {} items without text and their {} interactions", data.items_without_text,
                            data.interactions_without_text);
    }
    ctx.write_json("dataset.json", stats);
    ctx.say(fmt::format("dataset '{}': {} items, {} users, {} interactions{} ({:.1f}s)", ctx.config.dataset.format,
                        data.dataset.catalog.size(), data.dataset.interactions.num_users(),
                        data.dataset.interactions.size(), dropped,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
    return {{"dataset", "dataset.json", 1}};
  }
};

}  // namespace

std::unique_ptr<Stage> make_dataset_stage() { return std::make_unique<DatasetStage>(); }

}  // namespace lamia
