#pragma once
// The whole semantic-tokenizer pipeline as `lamia run` runs it:
//   dataset -> BPE tokenizer trained on the catalog -> decoder trained from
//   scratch as a palette encoder -> palettes of all items -> LAMIA quantizer,
//   plus RQ-VAE and residual K-Means on mean-pooled embeddings of the same
//   model -> diagnostics of the three, compared.
// Everything it writes goes under one output folder (see docs/pipeline.md):
//   config.json, dataset.json, tokenizer/, palette_encoder/, palettes.bin,
//   embeddings.bin, semantic_ids/<tokenizer>.{bin,txt}, diagnostics.json.
#include <lamia/pipeline/pipeline_config.hpp>
#include <lamia/pipeline/tokenizer_comparison.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <iosfwd>
#include <vector>

namespace lamia {

struct PipelineResult {
  nlohmann::json dataset;      ///< statistics of the dataset (dataset.json)
  nlohmann::json training;     ///< palette-encoder training summary
  nlohmann::json diagnostics;  ///< what diagnostics.json holds
  std::vector<TokenizerResult> tokenizers;
};

/// Runs every step into out_dir (created if needed; files are written atomically).
/// Progress goes to log (e.g. std::cerr) when config.progress is set.
PipelineResult run_pipeline(const PipelineConfig& config, const std::filesystem::path& out_dir, std::ostream& log);

}  // namespace lamia
