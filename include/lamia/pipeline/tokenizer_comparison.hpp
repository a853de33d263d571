#pragma once
// The semantic tokenizers compared on the same items: LAMIA's per-position
// quantizer on the palettes, and the TIGER-style baselines (RQ-VAE, residual
// K-Means) on one embedding per item from the same model. The result is what
// `lamia run` writes to diagnostics.json and prints as a table.
#include <lamia/quantize/semantic_id_table.hpp>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace lamia {

struct TokenizerComparisonOptions {
  /// LAMIA quantizer: PCA dimension d and codes per position k.
  std::int64_t pca_dim = 64;
  std::int64_t num_codes = 256;
  int iterations = 25;
  int restarts = 1;
  /// Levels of RQ-VAE and residual K-Means (0: the palette size L), with num_codes codes each.
  std::int64_t baseline_levels = 0;
  int rqvae_max_epochs = 200;
  std::uint64_t seed = 0;
  bool progress = false;
};

/// One tokenizer's table and diagnostics.
struct TokenizerResult {
  std::string name;      ///< "lamia", "rq-vae", "residual-kmeans"
  SemanticIdTable table;
  nlohmann::json diagnostics;  ///< diagnose_table(), plus "fit" (the fit report) and "seconds"
};

/// Fits the three tokenizers. palettes: n x L x D float32; embeddings: n x E
/// float32 (one per item, e.g. mean-pooled hidden states of the same model);
/// labels: optional n x A ground truth (the synthetic aspects) with names.
std::vector<TokenizerResult> compare_tokenizers(const torch::Tensor& palettes, const torch::Tensor& embeddings,
                                                const TokenizerComparisonOptions& options,
                                                const torch::Tensor& labels = {},
                                                const std::vector<std::string>& label_names = {});

/// {"tokenizers": {name: diagnostics, ...}} ready for diagnostics.json.
nlohmann::json comparison_json(const std::vector<TokenizerResult>& results);

/// A fixed-width text table: one row per tokenizer with utilisation, perplexity,
/// collision rate, mean NMI between positions, and (with labels) the aspect each
/// position captured best.
void print_comparison(std::ostream& out, const std::vector<TokenizerResult>& results);

}  // namespace lamia
