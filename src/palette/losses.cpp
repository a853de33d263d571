#include <lamia/core/errors.hpp>
#include <lamia/palette/blocks.hpp>
#include <lamia/palette/losses.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

namespace lamia {

const char* reduction_name(Reduction reduction) {
  return reduction == Reduction::kMean ? "mean" : "sum";
}

Reduction parse_reduction(const std::string& name) {
  if (name == "mean") return Reduction::kMean;
  if (name == "sum") return Reduction::kSum;
  throw ValueError(fmt::format("reduction must be 'mean' or 'sum', got '{}'", name));
}

const char* contrastive_mode_name(ContrastiveMode mode) {
  switch (mode) {
    case ContrastiveMode::kBoth: return "both";
    case ContrastiveMode::kIntraOnly: return "intra";
    case ContrastiveMode::kInterOnly: return "inter";
    case ContrastiveMode::kOff: return "off";
  }
  return "?";
}

ContrastiveMode parse_contrastive_mode(const std::string& name) {
  if (name == "both") return ContrastiveMode::kBoth;
  if (name == "intra") return ContrastiveMode::kIntraOnly;
  if (name == "inter") return ContrastiveMode::kInterOnly;
  if (name == "off") return ContrastiveMode::kOff;
  throw ValueError(fmt::format("contrastive mode must be 'both', 'intra', 'inter' or 'off', got '{}'", name));
}

namespace functional {
namespace {

void check_palettes(const torch::Tensor& p, const char* fn) {
  TORCH_CHECK_VALUE(p.defined(), fn, ": palettes is undefined");
  TORCH_CHECK_VALUE(p.dim() == 3, fn, ": palettes must be [B, L, D], got shape ", p.sizes());
  TORCH_CHECK_VALUE(p.size(1) >= 1, fn, ": palette size L must be at least 1, got L = 0 (shape ",
                    p.sizes(), ")");
  TORCH_CHECK_VALUE(p.size(2) >= 1, fn, ": palette dimension D must be at least 1, got ", p.sizes());
  TORCH_CHECK_VALUE(p.size(0) >= 1, fn, ": expected at least one item, got shape ", p.sizes());
  TORCH_CHECK_VALUE(torch::isFloatingType(p.scalar_type()), fn, ": palettes must be floating point, got ",
                    p.scalar_type());
}

// Hinge over the off-diagonal cells of the similarity matrices sim [G, N, N].
torch::Tensor hinge_off_diagonal(const torch::Tensor& sim, double alpha, Reduction reduction,
                                 const torch::Tensor& anchor) {
  const auto n = sim.size(1);
  const auto pairs = sim.size(0) * n * (n - 1);
  if (pairs == 0) return anchor.sum() * 0;  // no pairs: 0 with a (zero) gradient path
  auto off = ~torch::eye(n, sim.options().dtype(torch::kBool));
  auto h = torch::relu(sim - alpha).pow(2) * off;
  auto total = h.sum();
  return reduction == Reduction::kMean ? total / static_cast<double>(pairs) : total;
}

torch::Tensor normalised(const torch::Tensor& p) {
  return torch::nn::functional::normalize(p, torch::nn::functional::NormalizeFuncOptions().p(2).dim(-1).eps(1e-12));
}

}  // namespace

torch::Tensor batch_centred(const torch::Tensor& palettes) {
  check_palettes(palettes, "batch_centred");
  return palettes - palettes.mean(0, /*keepdim=*/true);
}

torch::Tensor intra_palette_loss(const torch::Tensor& palettes, double alpha, Reduction reduction,
                                 IntraCentring centring) {
  check_palettes(palettes, "intra_palette_loss");
  auto b = normalised(centring == IntraCentring::kBatch ? batch_centred(palettes) : palettes);  // [B, L, D]
  auto sim = torch::bmm(b, b.transpose(1, 2));  // [B, L, L]
  return hinge_off_diagonal(sim, alpha, reduction, palettes);
}

torch::Tensor inter_palette_loss(const torch::Tensor& palettes, double alpha, Reduction reduction) {
  check_palettes(palettes, "inter_palette_loss");
  auto b = normalised(palettes).transpose(0, 1);  // [L, B, D]
  auto sim = torch::bmm(b, b.transpose(1, 2));     // [L, B, B]
  return hinge_off_diagonal(sim, alpha, reduction, palettes);
}

torch::Tensor decorrelation_loss(const torch::Tensor& palettes, Reduction reduction) {
  check_palettes(palettes, "decorrelation_loss");
  const auto B = palettes.size(0), L = palettes.size(1), D = palettes.size(2);
  if (L < 2 || B < 2) return palettes.sum() * 0;
  auto centred = batch_centred(palettes);
  auto z = centred / (centred.pow(2).mean(0, /*keepdim=*/true) + kDecorrelationEps).sqrt();  // [B, L, D]
  // ||Z_i^T Z_j||_F^2 = tr(K_i K_j) with the Gram matrices K_j = Z_j Z_j^T [B, B]: memory L B^2,
  // not L^2 D^2, which matters for D = 1024.
  auto zt = z.transpose(0, 1);                                // [L, B, D]
  auto gram = torch::bmm(zt, zt.transpose(1, 2)).reshape({L, B * B});
  auto squared = torch::mm(gram, gram.t()) / double(B * B);   // [L, L]: ||C_ij||_F^2
  auto off = ~torch::eye(L, squared.options().dtype(torch::kBool));
  auto total = (squared * off).sum();
  return reduction == Reduction::kMean ? total / double(L * (L - 1) * D) : total;
}

torch::Tensor generation_loss(const torch::Tensor& logits, const torch::Tensor& labels, Reduction reduction) {
  TORCH_CHECK_VALUE(logits.defined() && logits.dim() == 3, "generation_loss: logits must be [B, T, V], got ",
                    logits.defined() ? logits.sizes() : torch::IntArrayRef{});
  TORCH_CHECK_VALUE(labels.defined() && labels.dim() == 2 && labels.size(0) == logits.size(0) &&
                        labels.size(1) == logits.size(1),
                    "generation_loss: labels must be [B, T] = ", logits.sizes().slice(0, 2), ", got ",
                    labels.defined() ? labels.sizes() : torch::IntArrayRef{});
  auto flat_logits = logits.reshape({-1, logits.size(2)});
  auto flat_labels = labels.reshape({-1}).to(torch::kInt64);
  auto keep = flat_labels != kIgnoreLabel;
  auto idx = keep.nonzero().squeeze(1);
  if (idx.numel() == 0) return logits.sum() * 0;
  // The encoder passes the labelled rows only: then every row is kept and selecting them would copy
  // the logits (and scatter their gradient back) for nothing.
  const bool every_row = idx.numel() == flat_labels.numel();
  auto sel = every_row ? flat_logits : flat_logits.index_select(0, idx);
  if (sel.scalar_type() == torch::kHalf || sel.scalar_type() == torch::kBFloat16) sel = sel.to(torch::kFloat32);
  auto tgt = every_row ? flat_labels : flat_labels.index_select(0, idx);
  auto nll = torch::nn::functional::cross_entropy(
      sel, tgt, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  return reduction == Reduction::kMean ? nll / static_cast<double>(idx.numel()) : nll;
}

}  // namespace functional

torch::Tensor IntraPaletteLossImpl::forward(const torch::Tensor& palettes) {
  return functional::intra_palette_loss(palettes, alpha, reduction);
}

torch::Tensor InterPaletteLossImpl::forward(const torch::Tensor& palettes) {
  return functional::inter_palette_loss(palettes, alpha, reduction);
}

namespace {

// One weighting for tensors (training) and doubles (validation records).
template <class T>
T weighted_total(const PaletteLossOptions& options, const T& generation, const T& intra, const T& inter,
                 const T& decorrelation) {
  T total;
  switch (options.contrastive()) {
    case ContrastiveMode::kBoth: total = generation + options.gamma() * (intra + inter); break;
    case ContrastiveMode::kIntraOnly: total = generation + options.gamma() * intra; break;
    case ContrastiveMode::kInterOnly: total = generation + options.gamma() * inter; break;
    case ContrastiveMode::kOff: total = generation * 1; break;
  }
  // Added only when weighted, so that the paper's setting computes exactly what it did before.
  if (options.decorrelation_weight() > 0) total = total + options.decorrelation_weight() * decorrelation;
  return total;
}

}  // namespace

double palette_total_loss(const PaletteLossOptions& options, double generation, double intra, double inter,
                          double decorrelation) {
  return weighted_total(options, generation, intra, inter, decorrelation);
}

PaletteLossParts PaletteLossImpl::combine(const torch::Tensor& generation, const torch::Tensor& palettes) const {
  PaletteLossParts parts;
  parts.generation = generation;
  parts.intra = functional::intra_palette_loss(palettes, options.alpha_intra(), options.reduction(),
                                               options.intra_centring());
  parts.inter = functional::inter_palette_loss(palettes, options.alpha_inter(), options.reduction());
  parts.decorrelation = functional::decorrelation_loss(palettes, options.reduction());
  parts.total = weighted_total(options, generation, parts.intra, parts.inter, parts.decorrelation);
  return parts;
}

PaletteLossParts PaletteLossImpl::combine_scaled(const torch::Tensor& generation, const torch::Tensor& palettes,
                                                 double grad_scale) const {
  TORCH_CHECK_VALUE(std::isfinite(grad_scale) && grad_scale >= 0,
                    "PaletteLoss::combine_scaled: grad_scale must be finite and >= 0, got ", grad_scale);
  auto parts = combine(generation.detach(), palettes);
  // The weighted terms alone (generation 0), then value + (scale - 1) x (term - term.detach()): the
  // value is the term's bit for bit (x - x = 0), the gradient grad_scale times its gradient.
  auto zero = torch::zeros_like(generation);
  auto terms = weighted_total(options, zero, parts.intra, parts.inter, parts.decorrelation);
  if (grad_scale != 1.0) terms = terms + (grad_scale - 1.0) * (terms - terms.detach());
  parts.generation = generation;
  parts.total = generation + terms;
  return parts;
}

PaletteLossParts PaletteLossImpl::forward(const torch::Tensor& logits, const torch::Tensor& labels,
                                          const torch::Tensor& palettes) {
  return combine(functional::generation_loss(logits, labels, options.reduction()), palettes);
}

}  // namespace lamia
