#include <lamia/core/errors.hpp>
#include <lamia/pipeline/tokenizer_comparison.hpp>
#include <lamia/quantize/diagnostics.hpp>
#include <lamia/quantize/palette_quantizer.hpp>
#include <lamia/quantize/residual_kmeans.hpp>
#include <lamia/quantize/rq_vae.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <ostream>

namespace lamia {
namespace {

double elapsed_seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TokenizerResult finish(std::string name, SemanticIdTable table, nlohmann::json fit, double seconds,
                       const torch::Tensor& labels, const std::vector<std::string>& label_names) {
  TokenizerResult r;
  r.name = std::move(name);
  r.diagnostics = diagnose_table(table, labels, label_names);
  r.diagnostics["fit"] = std::move(fit);
  r.diagnostics["seconds"] = seconds;
  r.table = std::move(table);
  return r;
}

double mean_off_diagonal(const nlohmann::json& matrix) {
  double sum = 0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < matrix.size(); ++i)
    for (std::size_t j = 0; j < matrix[i].size(); ++j)
      if (i != j) sum += matrix[i][j].get<double>(), ++count;
  return count ? sum / double(count) : 0.0;
}

}  // namespace

std::vector<TokenizerResult> compare_tokenizers(const torch::Tensor& palettes, const torch::Tensor& embeddings,
                                                const TokenizerComparisonOptions& options, const torch::Tensor& labels,
                                                const std::vector<std::string>& label_names) {
  if (palettes.dim() != 3)
    throw ValueError(fmt::format("compare_tokenizers: palettes must be n x L x D, got {} dimensions", palettes.dim()));
  return compare_tokenizers(PaletteSource::from_tensor(palettes.contiguous()), embeddings, options, labels,
                            label_names);
}

std::vector<TokenizerResult> compare_tokenizers(const PaletteSource& palettes, const torch::Tensor& embeddings,
                                                const TokenizerComparisonOptions& options, const torch::Tensor& labels,
                                                const std::vector<std::string>& label_names) {
  if (embeddings.dim() != 2 || embeddings.size(0) != palettes.num_items)
    throw ValueError(fmt::format("compare_tokenizers: embeddings must be n x E with n = {}, got shape [{}]",
                                 palettes.num_items, fmt::join(embeddings.sizes(), ", ")));
  const std::int64_t L = palettes.num_positions;
  const std::int64_t n = embeddings.size(0);
  std::vector<TokenizerResult> results;

  {  // LAMIA: per-position PCA + K-Means on the palettes, read a chunk at a time.
    PaletteQuantizerOptions q = options.lamia;
    q.pca_dim = std::min<std::int64_t>(q.pca_dim, palettes.dim);
    auto t0 = std::chrono::steady_clock::now();
    PaletteQuantizer quantizer(q);
    auto report = quantizer.fit(palettes);
    results.push_back(finish("lamia", quantizer.table(), report.to_json(), elapsed_seconds(t0), labels, label_names));
  }
  {  // Residual K-Means on one embedding per item (training-free, hierarchical).
    ResidualKMeansOptions q = options.residual_kmeans;
    if (options.match_palette_size) q.num_levels = L;
    auto t0 = std::chrono::steady_clock::now();
    ResidualKMeans rk(q);
    auto report = rk.fit(embeddings.contiguous());
    results.push_back(finish("residual-kmeans", rk.table(), report.to_json(), elapsed_seconds(t0), labels, label_names));
  }
  {  // RQ-VAE (TIGER) on the same embeddings.
    RqVaeOptions m = options.rq_vae;
    if (m.input_dim() == 0) m.input_dim(embeddings.size(1));
    if (m.input_dim() != embeddings.size(1))
      throw ValueError(fmt::format("compare_tokenizers: rq_vae.input_dim is {}, the embeddings have {} dimensions",
                                   m.input_dim(), embeddings.size(1)));
    if (options.match_palette_size) m.num_levels(L);
    m.num_codes(std::min<std::int64_t>(m.num_codes(), n));
    RqVaeTrainOptions t = options.rq_vae_train;
    t.batch_size = std::min<std::int64_t>(t.batch_size, n);
    auto t0 = std::chrono::steady_clock::now();
    RqVae model(m);
    auto report = train_rq_vae(model, embeddings.contiguous(), t);
    auto codes = model->encode(embeddings.contiguous());
    auto table = SemanticIdTable::from_codes(codes, model->codebook_sizes());
    results.push_back(finish("rq-vae", std::move(table), report.to_json(), elapsed_seconds(t0), labels, label_names));
  }
  return results;
}

nlohmann::json comparison_json(const std::vector<TokenizerResult>& results) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& r : results) out[r.name] = r.diagnostics;
  return {{"tokenizers", out}};
}

void print_comparison(std::ostream& out, const std::vector<TokenizerResult>& results) {
  // Chance-adjusted mutual information (0 = what independent partitions of the same sizes give):
  // plain NMI between two independent 64-way partitions of 2,000 items is already about 0.24.
  // Diagnostics written before AMI existed fall back to NMI, and the header says so.
  const bool ami = std::all_of(results.begin(), results.end(),
                               [](const TokenizerResult& r) { return r.diagnostics.contains("ami_between_positions"); });
  const std::string measure = ami ? "AMI" : "NMI";
  const std::string between = ami ? "ami_between_positions" : "nmi_between_positions";
  const std::string with_labels = ami ? "ami_with_labels" : "nmi_with_labels";
  out << fmt::format("{:<16} {:>6} {:>9} {:>11} {:>10} {:>10} {:>12}  {}\n", "tokenizer", "L", "util", "perplexity",
                     "collision", measure + "(pos)", measure + "(aspect)", "best aspect per position");
  for (const auto& r : results) {
    const auto& d = r.diagnostics;
    double util = 0, perplexity = 0;
    for (const auto& p : d["positions"]) {
      util += p["utilization"].get<double>();
      perplexity += p["perplexity"].get<double>();
    }
    const auto L = d["positions"].size();
    if (L) util /= double(L), perplexity /= double(L);
    std::string best = "-";
    double best_mean = 0;
    if (d.contains(with_labels)) {
      best.clear();
      for (std::size_t l = 0; l < L; ++l) {
        const auto& row = d[with_labels][l];
        std::size_t arg = 0;
        for (std::size_t a = 1; a < row.size(); ++a)
          if (row[a].get<double>() > row[arg].get<double>()) arg = a;
        const std::string name = d.contains("label_names") ? d["label_names"][arg].get<std::string>() : std::to_string(arg);
        best += fmt::format("{}{}({:.2f})", l ? " " : "", name, row[arg].get<double>());
        best_mean += row[arg].get<double>();
      }
      if (L) best_mean /= double(L);
    }
    out << fmt::format("{:<16} {:>6} {:>9.3f} {:>11.1f} {:>10.4f} {:>10.3f} {:>12.3f}  {}\n", r.name, L, util,
                       perplexity, d["table"]["collision_rate"].get<double>(), mean_off_diagonal(d[between]), best_mean,
                       best);
  }
}

}  // namespace lamia
