#pragma once
// The semantic tokenizers compared on the same items: LAMIA's per-position
// quantizer on the palettes, and the TIGER-style baselines (RQ-VAE, residual
// K-Means) on one embedding per item from the same model. The result is what
// `lamia run` writes to diagnostics.json and prints as a table.
#include <lamia/core/options.hpp>
#include <lamia/quantize/palette_quantizer.hpp>
#include <lamia/quantize/residual_kmeans.hpp>
#include <lamia/quantize/rq_vae.hpp>
#include <lamia/ids/semantic_id_table.hpp>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace lamia {

/// The three tokenizers' own options, compared on the same items. compare_tokenizers adapts them
/// to the data: lamia.pca_dim at most D, rq_vae.num_codes and rq_vae_train.batch_size at most n,
/// rq_vae.input_dim 0 is the embeddings' dimension (another value must equal it).
struct TokenizerComparisonOptions {
  /// LAMIA: per-position PCA + K-Means on the palettes.
  PaletteQuantizerOptions lamia;
  /// Residual K-Means on one embedding per item.
  ResidualKMeansOptions residual_kmeans;
  /// RQ-VAE (TIGER) on the same embeddings: the model, and its training.
  RqVaeOptions rq_vae{0};
  RqVaeTrainOptions rq_vae_train;
  /// Give both residual baselines as many levels as the palette has positions (L), so that all
  /// three IDs have the same length; their own num_levels are then not used.
  bool match_palette_size = true;
};

template <class V>
void visit_fields(TokenizerComparisonOptions& o, V&& v) {
  v.field("lamia", o.lamia, "LAMIA's quantizer (pca_dim is cut to the palette dimension D)");
  v.field("residual_kmeans", o.residual_kmeans, "residual K-Means on one embedding per item");
  v.field("rq_vae", o.rq_vae, "RQ-VAE's model (input_dim 0: the embeddings'; num_codes is cut to the items)");
  v.field("rq_vae_train", o.rq_vae_train, "RQ-VAE's training (batch_size is cut to the items)");
  v.field("match_palette_size", o.match_palette_size,
          "both residual baselines get L levels (the palette size); their own num_levels are then not used");
}

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
/// The same with the palettes read a chunk at a time (e.g. PaletteSource::from_reader of
/// palettes.bin): LAMIA's quantizer fits and codes from the source, so only one chunk of the
/// palettes is in memory. Same results as the tensor version on the same palettes.
std::vector<TokenizerResult> compare_tokenizers(const PaletteSource& palettes, const torch::Tensor& embeddings,
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
