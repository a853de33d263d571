#include <lamia/core/errors.hpp>
#include <lamia/palette/blocks.hpp>
#include <lamia/palette/losses.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

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

torch::Tensor intra_palette_loss(const torch::Tensor& palettes, double alpha, Reduction reduction) {
  check_palettes(palettes, "intra_palette_loss");
  auto b = normalised(palettes);                // [B, L, D]
  auto sim = torch::bmm(b, b.transpose(1, 2));  // [B, L, L]
  return hinge_off_diagonal(sim, alpha, reduction, palettes);
}

torch::Tensor inter_palette_loss(const torch::Tensor& palettes, double alpha, Reduction reduction) {
  check_palettes(palettes, "inter_palette_loss");
  auto b = normalised(palettes).transpose(0, 1);  // [L, B, D]
  auto sim = torch::bmm(b, b.transpose(1, 2));     // [L, B, B]
  return hinge_off_diagonal(sim, alpha, reduction, palettes);
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
  auto sel = flat_logits.index_select(0, idx);
  if (sel.scalar_type() == torch::kHalf || sel.scalar_type() == torch::kBFloat16) sel = sel.to(torch::kFloat32);
  auto tgt = flat_labels.index_select(0, idx);
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

PaletteLossParts PaletteLossImpl::combine(const torch::Tensor& generation, const torch::Tensor& palettes) const {
  PaletteLossParts parts;
  parts.generation = generation;
  parts.intra = functional::intra_palette_loss(palettes, options.alpha_intra(), options.reduction());
  parts.inter = functional::inter_palette_loss(palettes, options.alpha_inter(), options.reduction());
  torch::Tensor cl;
  switch (options.contrastive()) {
    case ContrastiveMode::kBoth: cl = parts.intra + parts.inter; break;
    case ContrastiveMode::kIntraOnly: cl = parts.intra; break;
    case ContrastiveMode::kInterOnly: cl = parts.inter; break;
    case ContrastiveMode::kOff: break;
  }
  parts.total = cl.defined() ? generation + options.gamma() * cl : generation * 1;
  return parts;
}

PaletteLossParts PaletteLossImpl::forward(const torch::Tensor& logits, const torch::Tensor& labels,
                                          const torch::Tensor& palettes) {
  return combine(functional::generation_loss(logits, labels, options.reduction()), palettes);
}

}  // namespace lamia
