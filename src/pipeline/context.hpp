#pragma once
// What the stages of `lamia run` share: the configuration, the run folder, the log, and the
// in-memory results of earlier stages. Each getter builds its object on first use, from memory
// when the stage that makes it ran in this process, else from that stage's artifacts on disk
// (or, for the dataset and the split, by loading them again: both are deterministic).
#include <lamia/data/sequences.hpp>
#include <lamia/palette/setup.hpp>
#include <lamia/pipeline/pipeline_config.hpp>
#include <lamia/ids/semantic_id_table.hpp>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace lamia {

/// The dataset and, for the synthetic catalog, its ground-truth aspects.
struct LoadedDataset {
  Dataset dataset;
  torch::Tensor labels;  // n x A int64, or undefined
  std::vector<std::string> label_names;
  /// What dataset.drop_items_without_text removed.
  std::size_t items_without_text = 0;
  std::size_t interactions_without_text = 0;
};

/// Whether a recommend.baselines entry is a trained model (SASRec), saved under baselines/<name>;
/// popularity and transition are counted at evaluation.
inline bool is_trained_baseline(const std::string& name) { return name == "sasrec-ce" || name == "sasrec-bce"; }

class PipelineContext {
 public:
  PipelineContext(const PipelineConfig& config, std::filesystem::path out_dir, std::ostream& log)
      : config(config), out_dir(std::move(out_dir)), log(log) {}

  const PipelineConfig& config;
  const std::filesystem::path out_dir;
  std::ostream& log;

  /// A progress line "[lamia run] ..." when config.progress.
  void say(const std::string& line) const;
  std::filesystem::path path(const std::string& relative) const { return out_dir / relative; }
  void write_json(const std::string& relative, const nlohmann::json& j) const;
  nlohmann::json read_json(const std::string& relative) const;

  LoadedDataset& dataset();
  /// The interaction sequences and the split of the config's protocol (over dataset().catalog).
  const ProcessedSequences& sequences();
  const SplitDataset& split();
  /// The palette encoder's setup: the catalog's tokenizer (tokenizer/), the model built from the
  /// config's seed, the catalog tokenized. Weights as built (untrained) until the palette stage ran
  /// or load_trained_palette_encoder() put the trained ones in.
  PaletteSetup& palette_setup();
  void load_trained_palette_encoder();
  bool palette_encoder_trained = false;
  /// A semantic-ID table of the quantize stage (semantic_ids/<name>.bin), or one made in memory.
  const SemanticIdTable& table(const std::string& name);
  void set_table(const std::string& name, SemanticIdTable table) { tables_[name] = std::move(table); }

 private:
  std::optional<LoadedDataset> dataset_;
  std::optional<ProcessedSequences> sequences_;
  std::optional<SplitDataset> split_;
  std::optional<PaletteSetup> setup_;
  std::map<std::string, SemanticIdTable> tables_;
};

}  // namespace lamia
