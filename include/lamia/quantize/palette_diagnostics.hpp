#pragma once
// Diagnostics of the float palettes (n x L x D) before quantization, as JSON: whether the L
// positions carry different information, in the sense K-Means can see (definitions, chance levels
// and how to read them: docs/quantize.md, "Palette diagnostics").
//   positions[j]: mean_squared_norm = mean_i ||p_ij||^2, offset_share = ||mu_j||^2 / that (the part
//     of the squared norm in the per-position mean mu_j, which K-Means and PCA ignore) and
//     residual_share = mean_i ||p_ij - mu_j||^2 / that (the item-dependent part; the two sum to 1);
//   intra_cosine / centred_intra_cosine: mean over items and position pairs i < j of cos(p_i, p_j)
//     (what the paper's intra loss sees) and of cos(p_i - mu_i, p_j - mu_j); the L x L matrices
//     cosine_between_positions / centred_cosine_between_positions hold the mean of every pair;
//   cross_position_r2[i][j]: held-out R^2 of a ridge regression predicting position j's vectors
//     from position i's (chance ~0, 1 = j is a linear function of i);
//   linear_probe (with labels): accuracy[j][a], held-out accuracy of a ridge classifier
//     (sklearn's RidgeClassifier) predicting label column a from position j, beside
//     chance_accuracy[a], the share of the held-out items' most frequent class.
// Both fits use one split of the items (probe_split: a seeded shuffle, at most max_probe_items of
// them, test_fraction held out) and centre with the training means (fit_intercept=True).
// Memory: one chunk of items, the (L D) x (L D) Gram matrix of the training rows in double, and the
// L ridge solutions; time O(n L^2 D^2) for the fits.
//
// Example:
//   nlohmann::json d = lamia::diagnose_palettes(palettes, aspects, {}, {"topic", "format"});
#include <lamia/core/options.hpp>
#include <lamia/quantize/palette_source.hpp>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lamia {

struct PaletteDiagnosticsOptions {
  double ridge_alpha = 1.0;
  double test_fraction = 0.2;
  std::int64_t seed = 0;
  std::int64_t max_probe_items = 20000;
};

template <class V>
void visit_fields(PaletteDiagnosticsOptions& o, V&& v) {
  v.field("ridge_alpha", o.ridge_alpha, "L2 penalty of both ridge fits (sklearn's alpha, on sums over items)",
          options::greater_than(0));
  v.field("test_fraction", o.test_fraction, "share of the probed items held out for the scores",
          options::Range{0, 1, true, true});
  v.field("seed", o.seed, "seed of the shuffle that picks and splits the probed items");
  v.field("max_probe_items", o.max_probe_items,
          "items used by the probe and the cross-position R^2 (a seeded sample; 0 = all)", options::at_least(0));
}

/// The items of the probes: a seeded shuffle of 0..n-1, its first round(m * test_fraction) items
/// held out (at least 1, leaving at least 2 for training), the next ones trained on, m =
/// min(n, max_probe_items) in all. Both int64 index tensors in shuffle order; needs n >= 3.
struct ProbeSplit {
  torch::Tensor train, test;
};
ProbeSplit probe_split(std::int64_t n, const PaletteDiagnosticsOptions& options = {});

/// Diagnostics of palettes [n, L, D] (floating point, CPU, finite, n >= 3). labels: optional n x A
/// integer tensor (e.g. the synthetic catalog's aspects) for the linear probe, label_names optional
/// names for its columns.
nlohmann::json diagnose_palettes(const torch::Tensor& palettes, const torch::Tensor& labels = {},
                                 const PaletteDiagnosticsOptions& options = {},
                                 const std::vector<std::string>& label_names = {});
/// The same from a PaletteSource (e.g. PaletteSource::from_reader of a palette file), read in
/// chunks of 1,024 items for the means, norms and cosines (three passes) and one item at a time for
/// the probe's items: memory is one chunk plus the probe's Gram matrix. Gives the same JSON as the
/// tensor version on the same float32 palettes.
nlohmann::json diagnose_palettes(const PaletteSource& palettes, const torch::Tensor& labels = {},
                                 const PaletteDiagnosticsOptions& options = {},
                                 const std::vector<std::string>& label_names = {});

}  // namespace lamia
