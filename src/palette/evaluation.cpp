#include "eval_scope.hpp"
#include <lamia/core/blas_threads.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/nn/threads.hpp>
#include <lamia/palette/attention_mask.hpp>
#include <lamia/palette/evaluation.hpp>
#include <lamia/palette/palette_file.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <numeric>

namespace lamia {
namespace {

// Puts the module in eval mode for a scope and restores its mode afterwards.
using detail::EvalScope;

void check_batch_size(std::int64_t batch_size, const char* fn) {
  if (batch_size < 1) throw ValueError(fmt::format("{}: batch_size must be >= 1, got {}", fn, batch_size));
}

}  // namespace

ReconstructionAccuracy reconstruction_accuracy(PaletteEncoderImpl& encoder, const TokenizedCatalog& catalog,
                                               const std::vector<ItemIndex>& items, std::int64_t batch_size) {
  check_batch_size(batch_size, "reconstruction_accuracy");
  if (items.empty()) throw ValueError("reconstruction_accuracy: expected at least one item, got none");
  EvalScope scope(encoder);
  torch::NoGradGuard no_grad;
  const auto& tokens = encoder.tokens();
  const auto device = encoder.decoder->device();
  const auto m = tokens.num_tasks();
  ReconstructionAccuracy out;
  std::vector<std::int64_t> correct(m, 0), total(m, 0);
  double loss_sum = 0.0;
  for (std::int64_t task = 0; task < m; ++task) {
    for (std::size_t begin = 0; begin < items.size(); begin += batch_size) {
      const auto end = std::min(items.size(), begin + static_cast<std::size_t>(batch_size));
      std::vector<SampleLayout> samples;
      for (auto k = begin; k < end; ++k) samples.push_back(make_sample(catalog, items[k], task, tokens));
      auto batch = collate_samples(samples, tokens, /*with_full=*/false).to(device);
      auto r = encoder.forward(batch, PalettePath::kFast);
      correct[task] += r.correct_tokens;
      total[task] += r.label_tokens;
      // Per-token mean times count gives the sum, whatever the configured reduction.
      const double g = r.generation_loss.item<double>();
      loss_sum += encoder.options().losses().reduction() == Reduction::kMean ? g * r.label_tokens : g;
    }
  }
  for (std::int64_t t = 0; t < m; ++t) {
    out.correct_tokens += correct[t];
    out.label_tokens += total[t];
    out.per_attribute.push_back(total[t] > 0 ? double(correct[t]) / double(total[t])
                                             : std::numeric_limits<double>::quiet_NaN());
  }
  out.token_accuracy = out.label_tokens > 0 ? double(out.correct_tokens) / double(out.label_tokens) : 0.0;
  out.generation_loss = out.label_tokens > 0 ? loss_sum / double(out.label_tokens) : 0.0;
  return out;
}

double mean_intra_cosine(const torch::Tensor& palettes) {
  TORCH_CHECK_VALUE(palettes.defined() && palettes.dim() == 3, "mean_intra_cosine: palettes must be [n, L, D], got ",
                    palettes.defined() ? palettes.sizes() : torch::IntArrayRef{});
  TORCH_CHECK_VALUE(palettes.size(1) >= 2, "mean_intra_cosine: needs L >= 2 positions, got L = ", palettes.size(1));
  TORCH_CHECK_VALUE(palettes.size(0) >= 1, "mean_intra_cosine: needs at least one item, got 0");
  torch::NoGradGuard no_grad;
  auto p = torch::nn::functional::normalize(palettes.to(torch::kFloat64),
                                            torch::nn::functional::NormalizeFuncOptions().dim(-1));
  auto sim = torch::bmm(p, p.transpose(1, 2));  // [n, L, L]
  const auto L = palettes.size(1);
  auto off = ~torch::eye(L, torch::TensorOptions().dtype(torch::kBool));
  return ((sim * off).sum() / double(palettes.size(0) * L * (L - 1))).item<double>();
}

torch::Tensor encode_items(PaletteEncoderImpl& encoder, const TokenizedCatalog& catalog,
                           const std::vector<ItemIndex>& items, std::int64_t batch_size) {
  check_batch_size(batch_size, "encode_items");
  EvalScope scope(encoder);
  const ScopedBlasThreads gemm(palette_gemm_threads());  // large GEMMs: OpenBLAS gets the cores
  torch::NoGradGuard no_grad;
  const auto device = encoder.decoder->device();
  std::vector<torch::Tensor> parts;
  for (std::size_t begin = 0; begin < items.size(); begin += batch_size) {
    const auto end = std::min(items.size(), begin + static_cast<std::size_t>(batch_size));
    std::vector<ItemIndex> chunk(items.begin() + begin, items.begin() + end);
    auto batch = collate_items(catalog, chunk, encoder.tokens()).to(device);
    parts.push_back(encoder.encode(batch).to(torch::kCPU, torch::kFloat32));
  }
  if (parts.empty()) return torch::zeros({0, encoder.options().palette_size(), encoder.palette_dim()});
  return torch::cat(parts, 0);
}

std::int64_t export_palettes(PaletteEncoderImpl& encoder, const TokenizedCatalog& catalog,
                             const std::filesystem::path& path, std::int64_t batch_size) {
  check_batch_size(batch_size, "export_palettes");
  if (catalog.item_ids.size() != catalog.size()) {
    throw ValueError(fmt::format("export_palettes: the tokenized catalog has {} items but {} item ids",
                                 catalog.size(), catalog.item_ids.size()));
  }
  const auto n = static_cast<std::int64_t>(catalog.size());
  write_palette_file(path, catalog.item_ids, encoder.options().palette_size(), encoder.palette_dim(),
                     [&](std::int64_t begin, std::int64_t end) {
                       std::vector<ItemIndex> chunk(end - begin);
                       std::iota(chunk.begin(), chunk.end(), static_cast<ItemIndex>(begin));
                       return encode_items(encoder, catalog, chunk, batch_size);
                     },
                     batch_size);
  return n;
}

torch::Tensor mean_pooled_embeddings(PaletteEncoderImpl& encoder, const TokenizedCatalog& catalog,
                                     std::int64_t batch_size) {
  if (batch_size < 1) throw ValueError(fmt::format("mean_pooled_embeddings: batch_size must be >= 1, got {}", batch_size));
  torch::NoGradGuard no_grad;
  const ScopedBlasThreads gemm(palette_gemm_threads());
  const bool was_training = encoder.is_training();
  encoder.eval();
  const auto n = std::int64_t(catalog.size());
  const auto device = encoder.decoder->parameters().front().device();
  std::vector<torch::Tensor> parts;
  for (std::int64_t begin = 0; begin < n; begin += batch_size) {
    std::vector<ItemIndex> items;
    for (auto i = begin; i < std::min(n, begin + batch_size); ++i) items.push_back(ItemIndex(i));
    auto batch = collate_items(catalog, items, encoder.tokens()).to(device);
    DecoderInput in;
    in.input_ids = batch.encode.input_ids;
    in.position_ids = batch.encode.position_ids;
    in.attention_mask = palette_attention_mask(batch.encode.block_types);
    in.compute_logits = false;
    auto hidden = encoder.decoder->forward(in).last_hidden_state;  // [U, T, E]
    auto content = (batch.encode.block_types == std::int64_t(Block::kContent)).unsqueeze(-1).to(hidden.dtype());
    auto pooled = (hidden * content).sum(1) / content.sum(1).clamp_min(1.0);
    parts.push_back(pooled.to(torch::kCPU, torch::kFloat));
  }
  encoder.train(was_training);
  return torch::cat(parts, 0).contiguous();
}

}  // namespace lamia
