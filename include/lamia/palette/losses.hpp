#pragma once
// The palette encoder's losses (paper 4.2.2, DESIGN.md): pure functions in lamia::functional and
// thin modules that hold their options.
//   intra: sum_i sum_{j != k} max(0, s(B_ij, B_ik) - alpha_intra)^2   (positions of one item)
//   inter: sum_j sum_{i != k} max(0, s(B_ij, B_kj) - alpha_inter)^2   (items at one position)
//   total: L_gen + gamma (L_intra + L_inter)
// s is the cosine similarity of the L2-normalised vectors. Reduction::kMean (default) divides a
// sum by its number of ordered pairs (B L (L-1) for intra, L B (B-1) for inter) so that gamma does
// not depend on the batch size or L; Reduction::kSum is the paper's formula as written.
// With no pairs (L = 1 for intra, one item for inter) a loss is 0 (connected to the graph, zero
// gradient), never NaN.
//
// Options beside the paper's (issue 11; the defaults are the paper's method):
//   intra_centring batch: the intra hinge on palettes minus each position's batch mean, so that a
//     per-position offset (which K-Means ignores) cannot satisfy it;
//   decorrelation: for positions i != j, ||C_ij||_F^2 with C_ij = Z_i^T Z_j / B the cross-correlation
//     of the batch-standardised palettes Z_j = (B_.j - mean) / sqrt(var + eps) over the B items;
//     kMean divides the sum over the L (L-1) ordered pairs by L (L-1) D (a copy of a position whose
//     D dimensions are uncorrelated gives 1, independent positions about D / B, the most is D);
//     it enters the total with its own weight, decorrelation_weight.
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <torch/arg.h>

#include <lamia/core/options.hpp>

#include <array>
#include <utility>

#include <cstdint>
#include <string>

namespace lamia {

enum class Reduction { kMean, kSum };

/// "mean" / "sum"; parse_reduction throws ValueError naming the accepted values.
const char* reduction_name(Reduction reduction);
Reduction parse_reduction(const std::string& name);

/// Which contrastive terms the total loss includes (ablations).
enum class ContrastiveMode { kBoth, kIntraOnly, kInterOnly, kOff };
const char* contrastive_mode_name(ContrastiveMode mode);
/// "both" / "intra" / "inter" / "off".
ContrastiveMode parse_contrastive_mode(const std::string& name);
/// What the intra loss compares: the palettes as they are (the paper) or minus each position's batch mean.
enum class IntraCentring { kNone, kBatch };
/// The names of reduction_name and contrastive_mode_name, for JSON and Python (lamia/core/options.hpp).
constexpr auto enum_names(Reduction) {
  return std::array{std::pair{Reduction::kMean, "mean"}, std::pair{Reduction::kSum, "sum"}};
}
constexpr auto enum_names(ContrastiveMode) {
  return std::array{std::pair{ContrastiveMode::kBoth, "both"}, std::pair{ContrastiveMode::kIntraOnly, "intra"},
                    std::pair{ContrastiveMode::kInterOnly, "inter"}, std::pair{ContrastiveMode::kOff, "off"}};
}
constexpr auto enum_names(IntraCentring) {
  return std::array{std::pair{IntraCentring::kNone, "none"}, std::pair{IntraCentring::kBatch, "batch"}};
}

/// Variance floor of the decorrelation loss' standardisation (a constant dimension gives Z = 0).
inline constexpr double kDecorrelationEps = 1e-6;

namespace functional {

/// Intra-palette hinge loss of palettes [B, L, D] (any float dtype). Throws ValueError when
/// L = 0 or the shape is not 3-d. Returns a 0-d tensor.
/// Example: auto l = lamia::functional::intra_palette_loss(palettes, 0.1);
/// centring kBatch subtracts each position's mean over the B items first (batch_centred).
torch::Tensor intra_palette_loss(const torch::Tensor& palettes, double alpha = 0.1,
                                 Reduction reduction = Reduction::kMean,
                                 IntraCentring centring = IntraCentring::kNone);

/// palettes [B, L, D] minus each position's mean over the B items.
torch::Tensor batch_centred(const torch::Tensor& palettes);

/// Cross-correlation penalty between the positions of palettes [B, L, D] (header comment); 0 when
/// L = 1 or B = 1. Example: auto d = lamia::functional::decorrelation_loss(palettes);
torch::Tensor decorrelation_loss(const torch::Tensor& palettes, Reduction reduction = Reduction::kMean);

/// Inter-palette hinge loss of palettes [B, L, D]; 0 for a batch of one item.
torch::Tensor inter_palette_loss(const torch::Tensor& palettes, double alpha = 0.25,
                                 Reduction reduction = Reduction::kMean);

/// Next-token cross-entropy of logits [B, T, V] against labels [B, T] (kIgnoreLabel = no loss):
/// mean over the labelled tokens, or their sum. 0 when no token is labelled.
torch::Tensor generation_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                              Reduction reduction = Reduction::kMean);

}  // namespace functional

/// Options of the palette losses; defaults are the paper's.
struct PaletteLossOptions {
  /// gamma: weight of the contrastive terms in the total.
  TORCH_ARG(double, gamma) = 0.1;
  /// alpha_intra: cosine similarity below which two positions of one item are not penalised.
  TORCH_ARG(double, alpha_intra) = 0.1;
  /// alpha_inter: cosine similarity below which two items at one position are not penalised.
  TORCH_ARG(double, alpha_inter) = 0.25;
  /// Reduction of all three terms.
  TORCH_ARG(Reduction, reduction) = Reduction::kMean;
  /// Which contrastive terms enter the total (the others are still computed and reported).
  TORCH_ARG(ContrastiveMode, contrastive) = ContrastiveMode::kBoth;
  /// The intra loss on the palettes as they are (the paper) or batch-centred.
  TORCH_ARG(IntraCentring, intra_centring) = IntraCentring::kNone;
  /// Weight of the decorrelation penalty in the total (0: the paper; it is still reported).
  TORCH_ARG(double, decorrelation_weight) = 0.0;
};

/// The fields of PaletteLossOptions (JSON, Python).
template <class V>
void visit_fields(PaletteLossOptions& o, V&& v) {
  v.field("gamma", o.gamma(), "weight of the contrastive terms in the total (paper: 0.1)", options::at_least(0));
  v.field("alpha_intra", o.alpha_intra(), "cosine below which two positions of one item are not penalised (paper: 0.1)");
  v.field("alpha_inter", o.alpha_inter(), "cosine below which two items at one position are not penalised (paper: 0.25)");
  v.field("reduction", o.reduction(), "reduction of all three terms (mean: per pair, independent of B and L)");
  v.field("contrastive", o.contrastive(), "which contrastive terms enter the total (ablations)");
  v.field("intra_centring", o.intra_centring(),
          "intra loss on the palettes as they are (none: paper) or minus each position's batch mean (batch)");
  v.field("decorrelation_weight", o.decorrelation_weight(),
          "weight of the cross-correlation penalty between positions (0: paper; reported either way)",
          options::at_least(0));
}

/// L_gen + gamma (selected contrastive terms) + decorrelation_weight L_decor, from the parts' values
/// (the trainer's validation record); the decorrelation term is added only when its weight is > 0.
double palette_total_loss(const PaletteLossOptions& options, double generation, double intra, double inter,
                          double decorrelation);

/// The parts of the loss of one batch; each a 0-d tensor in the graph.
struct PaletteLossParts {
  torch::Tensor total;
  torch::Tensor generation;
  torch::Tensor intra;
  torch::Tensor inter;
  torch::Tensor decorrelation;
};

/// intra_palette_loss as a module.
class IntraPaletteLossImpl : public torch::nn::Cloneable<IntraPaletteLossImpl> {
 public:
  explicit IntraPaletteLossImpl(double alpha = 0.1, Reduction reduction = Reduction::kMean)
      : alpha(alpha), reduction(reduction) {}
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& palettes);
  double alpha;
  Reduction reduction;
};
TORCH_MODULE(IntraPaletteLoss);

/// inter_palette_loss as a module.
class InterPaletteLossImpl : public torch::nn::Cloneable<InterPaletteLossImpl> {
 public:
  explicit InterPaletteLossImpl(double alpha = 0.25, Reduction reduction = Reduction::kMean)
      : alpha(alpha), reduction(reduction) {}
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& palettes);
  double alpha;
  Reduction reduction;
};
TORCH_MODULE(InterPaletteLoss);

/// L_gen + gamma (L_intra + L_inter) with the terms PaletteLossOptions::contrastive selects, plus
/// decorrelation_weight L_decor.
class PaletteLossImpl : public torch::nn::Cloneable<PaletteLossImpl> {
 public:
  explicit PaletteLossImpl(PaletteLossOptions options = {}) : options(options) {}
  void reset() override {}
  /// logits [B, T, V], labels [B, T], palettes [N, L, D] (one row per distinct item).
  PaletteLossParts forward(const torch::Tensor& logits, const torch::Tensor& labels,
                           const torch::Tensor& palettes);
  /// Combines precomputed parts into the total (used when the generation loss is computed apart).
  PaletteLossParts combine(const torch::Tensor& generation, const torch::Tensor& palettes) const;
  /// Data-parallel training (docs/distributed.md): combine() on the palettes [G, L, D] of the global
  /// batch's distinct items (this rank's own rows in the graph, the other ranks' detached), the
  /// gradient (not the value) of the weighted intra/inter/decorrelation terms multiplied by
  /// grad_scale (the inverse of this rank's share of the loss weight, 0 for a rank that owns no rows).
  PaletteLossParts combine_scaled(const torch::Tensor& generation, const torch::Tensor& palettes,
                                  double grad_scale) const;
  PaletteLossOptions options;
};
TORCH_MODULE(PaletteLoss);

}  // namespace lamia
