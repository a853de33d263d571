#include <lamia/core/errors.hpp>
#include <lamia/quantize/palette_diagnostics.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <random>

namespace lamia {
namespace {

constexpr std::int64_t kChunkItems = 1024;
using Matrix = std::vector<std::vector<double>>;

Matrix to_matrix(const torch::Tensor& t) {  // 2-D double tensor -> nested vectors for JSON
  auto c = t.to(torch::kFloat64).contiguous();
  Matrix m(c.size(0), std::vector<double>(c.size(1)));
  const auto* p = c.data_ptr<double>();
  for (std::int64_t i = 0; i < c.size(0); ++i) std::copy(p + i * c.size(1), p + (i + 1) * c.size(1), m[i].begin());
  return m;
}

/// The palettes the diagnostics read: a tensor, or a PaletteSource (e.g. a palette file) read a
/// chunk or an item at a time, so that only one chunk and the probe's Gram matrix are in memory.
struct Palettes {
  std::int64_t n = 0, L = 0, D = 0;
  std::function<torch::Tensor(std::int64_t, std::int64_t)> range;  // items [begin, end)
  std::function<torch::Tensor(const torch::Tensor&)> gather;       // items at int64 indices
};

Palettes of_tensor(const torch::Tensor& p) {
  return {p.size(0), p.size(1), p.size(2), [p](std::int64_t b, std::int64_t e) { return p.narrow(0, b, e - b); },
          [p](const torch::Tensor& idx) { return p.index_select(0, idx); }};
}

Palettes of_source(const PaletteSource& s) {
  const auto read = s.read;
  return {s.num_items, s.num_positions, s.dim, [read](std::int64_t b, std::int64_t e) { return read(b, e); },
          [read, L = s.num_positions, D = s.dim](const torch::Tensor& idx) {
            auto out = torch::empty({idx.size(0), L, D}, torch::kFloat32);
            const auto* i = idx.data_ptr<std::int64_t>();
            for (std::int64_t k = 0; k < idx.size(0); ++k) out[k].copy_(read(i[k], i[k] + 1)[0]);
            return out;
          }};
}

/// Calls f(rows [m, L, D] in double) for the given items (all when indices is undefined), a chunk at a time.
template <class F>
void for_each_chunk(const Palettes& palettes, const torch::Tensor& indices, F&& f) {
  const auto n = indices.defined() ? indices.size(0) : palettes.n;
  for (std::int64_t begin = 0; begin < n; begin += kChunkItems) {
    const auto len = std::min(kChunkItems, n - begin);
    auto rows = indices.defined() ? palettes.gather(indices.narrow(0, begin, len).contiguous())
                                  : palettes.range(begin, begin + len);
    f(rows.to(torch::kFloat64));
  }
}

/// Mean over items of the L x L cosines between positions (a zero vector has cosine 0, as in
/// torch's normalize).
torch::Tensor mean_cosines(const Palettes& palettes, const torch::Tensor& mean) {
  const auto L = palettes.L;
  auto sum = torch::zeros({L, L}, torch::kFloat64);
  for_each_chunk(palettes, {}, [&](torch::Tensor x) {
    if (mean.defined()) x = x - mean;
    auto u = torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().dim(-1));
    sum += torch::bmm(u, u.transpose(1, 2)).sum(0);
  });
  return sum / static_cast<double>(palettes.n);
}

double mean_off_diagonal(const torch::Tensor& m) {
  const auto L = m.size(0);
  return ((m.sum() - m.diagonal().sum()) / static_cast<double>(L * (L - 1))).item<double>();
}

/// Per position: squared norm of the mean, and its share of the mean squared norm.
nlohmann::json norm_shares(const Palettes& palettes, const torch::Tensor& mean) {
  const auto L = palettes.L;
  auto squared = torch::zeros({L}, torch::kFloat64), residual = torch::zeros({L}, torch::kFloat64);
  for_each_chunk(palettes, {}, [&](const torch::Tensor& x) {
    squared += x.pow(2).sum(2).sum(0);
    residual += (x - mean).pow(2).sum(2).sum(0);
  });
  const double n = static_cast<double>(palettes.n);
  auto offset = mean.pow(2).sum(1);
  nlohmann::json out = nlohmann::json::array();
  for (std::int64_t j = 0; j < L; ++j) {
    const double total = squared[j].item<double>() / n;
    const double off = offset[j].item<double>(), res = residual[j].item<double>() / n;
    out.push_back({{"position", j},
                   {"mean_squared_norm", total},
                   {"offset_squared_norm", off},
                   {"offset_share", total > 0 ? off / total : 0.0},
                   {"residual_share", total > 0 ? res / total : 0.0}});
  }
  return out;
}

/// One label column on the probe's items: class ids of the training classes (sorted values), -1
/// for a held-out value no training item has.
struct ProbeTarget {
  std::vector<std::int64_t> classes;
  torch::Tensor train_class, test_class;  // int64
  double chance_accuracy = 0;
};

ProbeTarget probe_target(const torch::Tensor& column, const ProbeSplit& split) {
  ProbeTarget t;
  auto train = column.index_select(0, split.train).contiguous(), test = column.index_select(0, split.test).contiguous();
  t.classes.assign(train.data_ptr<std::int64_t>(), train.data_ptr<std::int64_t>() + train.size(0));
  std::sort(t.classes.begin(), t.classes.end());
  t.classes.erase(std::unique(t.classes.begin(), t.classes.end()), t.classes.end());
  auto ids = [&](const torch::Tensor& values) {
    auto out = torch::empty_like(values);
    for (std::int64_t i = 0; i < values.size(0); ++i) {
      const auto v = values.data_ptr<std::int64_t>()[i];
      auto it = std::lower_bound(t.classes.begin(), t.classes.end(), v);
      out.data_ptr<std::int64_t>()[i] = (it != t.classes.end() && *it == v) ? it - t.classes.begin() : -1;
    }
    return out;
  };
  t.train_class = ids(train);
  t.test_class = ids(test);
  // Chance: the held-out share of the held-out items' most frequent value.
  std::map<std::int64_t, std::int64_t> counts;
  std::int64_t most = 0;
  for (std::int64_t i = 0; i < test.size(0); ++i) most = std::max(most, ++counts[test.data_ptr<std::int64_t>()[i]]);
  t.chance_accuracy = static_cast<double>(most) / static_cast<double>(test.size(0));
  return t;
}

/// Ridge fits on the probe's training items and their held-out scores: the cross-position R^2
/// and, per label column, the probe's accuracy.
struct ProbeScores {
  torch::Tensor r2;        // [L, L] double
  torch::Tensor accuracy;  // [L, A] double
};

ProbeScores ridge_probes(const Palettes& palettes, const std::vector<ProbeTarget>& targets,
                         const ProbeSplit& split, double alpha) {
  const auto L = palettes.L, D = palettes.D, LD = L * D;
  const auto n_train = split.train.size(0), n_test = split.test.size(0);
  const auto A = static_cast<std::int64_t>(targets.size());
  // Training means, then the Gram matrix of the centred training rows (all positions side by side)
  // and each class's sum of centred rows.
  auto mean = torch::zeros({LD}, torch::kFloat64);
  for_each_chunk(palettes, split.train, [&](const torch::Tensor& x) { mean += x.reshape({-1, LD}).sum(0); });
  mean /= static_cast<double>(n_train);
  auto gram = torch::zeros({LD, LD}, torch::kFloat64);
  std::vector<torch::Tensor> class_sums;
  for (const auto& t : targets) class_sums.push_back(torch::zeros({LD, std::int64_t(t.classes.size())}, torch::kFloat64));
  std::int64_t offset = 0;
  for_each_chunk(palettes, split.train, [&](const torch::Tensor& x) {
    auto c = x.reshape({-1, LD}) - mean;
    gram.addmm_(c.t(), c);
    for (std::int64_t a = 0; a < A; ++a) {
      auto cls = targets[a].train_class.narrow(0, offset, c.size(0));
      auto one_hot = torch::zeros({c.size(0), class_sums[a].size(1)}, torch::kFloat64).scatter_(1, cls.unsqueeze(1), 1.0);
      class_sums[a].addmm_(c.t(), one_hot);
    }
    offset += c.size(0);
  });
  // Per source position i: (G_ii + alpha I)^-1 [G_i,all | class sums of i] (sklearn's cholesky
  // solver; the one-hot targets' mean, the class shares, is the probe's intercept).
  std::vector<torch::Tensor> regression(L);
  std::vector<std::vector<torch::Tensor>> probe(L, std::vector<torch::Tensor>(A));
  std::vector<torch::Tensor> priors;
  for (std::int64_t a = 0; a < A; ++a) {
    auto counts = torch::zeros({std::int64_t(targets[a].classes.size())}, torch::kFloat64)
                      .index_add_(0, targets[a].train_class, torch::ones({n_train}, torch::kFloat64));
    priors.push_back(counts / static_cast<double>(n_train));
  }
  for (std::int64_t i = 0; i < L; ++i) {
    auto block = gram.narrow(0, i * D, D);
    auto system = block.narrow(1, i * D, D) + alpha * torch::eye(D, torch::kFloat64);
    std::vector<torch::Tensor> rhs{block};
    for (std::int64_t a = 0; a < A; ++a) rhs.push_back(class_sums[a].narrow(0, i * D, D));
    auto solution = torch::cholesky_solve(torch::cat(rhs, 1), at::linalg_cholesky(system));
    regression[i] = solution.narrow(1, 0, LD);
    std::int64_t col = LD;
    for (std::int64_t a = 0; a < A; ++a) {
      const auto k = class_sums[a].size(1);
      probe[i][a] = solution.narrow(1, col, k);
      col += k;
    }
  }
  // Held-out: squared errors of every (i, j) prediction, the targets' spread around their own
  // held-out mean (R^2's denominator, as sklearn's r2_score), and the probes' hits.
  auto sse = torch::zeros({L, L}, torch::kFloat64), hits = torch::zeros({L, A}, torch::kFloat64);
  auto test_sum = torch::zeros({LD}, torch::kFloat64), test_squares = torch::zeros({L}, torch::kFloat64);
  offset = 0;
  for_each_chunk(palettes, split.test, [&](const torch::Tensor& x) {
    auto c = x.reshape({-1, LD}) - mean;
    const auto m = c.size(0);
    test_sum += c.sum(0);
    test_squares += c.pow(2).reshape({m, L, D}).sum(2).sum(0);
    for (std::int64_t i = 0; i < L; ++i) {
      auto source = c.narrow(1, i * D, D);
      sse[i] += (c - source.mm(regression[i])).pow(2).reshape({m, L, D}).sum(2).sum(0);
      for (std::int64_t a = 0; a < A; ++a) {
        auto predicted = (source.mm(probe[i][a]) + priors[a]).argmax(1);
        hits[i][a] += predicted.eq(targets[a].test_class.narrow(0, offset, m)).sum().to(torch::kFloat64);
      }
    }
    offset += m;
  });
  auto spread = test_squares - test_sum.reshape({L, D}).pow(2).sum(1) / static_cast<double>(n_test);
  ProbeScores s;
  s.r2 = 1.0 - sse / spread.unsqueeze(0);
  // A constant target: sklearn's r2_score gives 1 for a perfect prediction, else 0.
  auto constant = (spread <= 0).unsqueeze(0).expand({L, L});
  s.r2 = torch::where(constant, (sse <= 0).to(torch::kFloat64), s.r2);
  s.accuracy = hits / static_cast<double>(n_test);
  return s;
}

torch::Tensor checked_palettes(const torch::Tensor& p) {
  TORCH_CHECK_VALUE(p.defined() && p.dim() == 3, "diagnose_palettes: palettes must be [n, L, D], got ",
                    p.defined() ? p.sizes() : torch::IntArrayRef{});
  TORCH_CHECK_VALUE(p.is_floating_point(), "diagnose_palettes: palettes must be floating point, got ", p.scalar_type());
  TORCH_CHECK_VALUE(p.device().is_cpu(), "diagnose_palettes: palettes must be on the CPU, got ", p.device());
  TORCH_CHECK_VALUE(p.size(0) >= 3 && p.size(1) >= 1 && p.size(2) >= 1,
                    "diagnose_palettes: palettes need at least 3 items, 1 position and 1 dimension, got ", p.sizes());
  auto bad = (~torch::isfinite(p)).any(2).any(1).nonzero();
  if (bad.size(0) > 0) {
    throw ValueError(fmt::format("diagnose_palettes: palettes: item {} has a non-finite value",
                                 bad[0][0].item<std::int64_t>()));
  }
  return p.contiguous();
}

}  // namespace

ProbeSplit probe_split(std::int64_t n, const PaletteDiagnosticsOptions& options) {
  if (n < 3) throw ValueError(fmt::format("probe_split: needs at least 3 items, got {}", n));
  if (!(options.test_fraction > 0 && options.test_fraction < 1)) {
    throw ValueError(fmt::format("probe_split: test_fraction must be in (0, 1), got {}", options.test_fraction));
  }
  if (options.max_probe_items < 0) {
    throw ValueError(fmt::format("probe_split: max_probe_items must be >= 0, got {}", options.max_probe_items));
  }
  // Fisher-Yates with std::mt19937_64 (fully specified by the standard, unlike its distributions).
  std::vector<std::int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(static_cast<std::uint64_t>(options.seed));
  for (std::int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng() % static_cast<std::uint64_t>(i + 1)]);
  const auto m = options.max_probe_items > 0 ? std::min(n, options.max_probe_items) : n;
  if (m < 3) throw ValueError(fmt::format("probe_split: max_probe_items must be 0 or at least 3, got {}", m));
  const auto test = std::clamp<std::int64_t>(std::llround(m * options.test_fraction), 1, m - 2);
  auto all = torch::tensor(order, torch::kInt64);
  return {all.narrow(0, test, m - test).clone(), all.narrow(0, 0, test).clone()};
}

namespace {
nlohmann::json diagnose(const Palettes& palettes, bool check_chunks, const torch::Tensor& labels_in,
                        const PaletteDiagnosticsOptions& options, const std::vector<std::string>& label_names) {
  torch::NoGradGuard no_grad;
  const auto n = palettes.n, L = palettes.L, D = palettes.D;
  TORCH_CHECK_VALUE(n >= 3 && L >= 1 && D >= 1,
                    "diagnose_palettes: palettes need at least 3 items, 1 position and 1 dimension, got [", n, ", ", L,
                    ", ", D, "]");
  torch::Tensor labels;
  if (labels_in.defined()) {
    TORCH_CHECK_VALUE(labels_in.dim() == 2 && !labels_in.is_floating_point() && !labels_in.is_complex(),
                      "diagnose_palettes: labels must be an n x A integer tensor, got ", labels_in.sizes(), " ",
                      labels_in.scalar_type());
    if (labels_in.size(0) != n) {
      throw ValueError(
          fmt::format("diagnose_palettes: labels must have one row per item ({}), got {}", n, labels_in.size(0)));
    }
    if (!label_names.empty() && static_cast<std::int64_t>(label_names.size()) != labels_in.size(1)) {
      throw ValueError(fmt::format("diagnose_palettes: label_names must have one name per label column ({}), got {}",
                                   labels_in.size(1), label_names.size()));
    }
    labels = labels_in.to(torch::kCPU, torch::kInt64).contiguous();
  }
  if (!(options.ridge_alpha > 0)) {
    throw ValueError(fmt::format("diagnose_palettes: ridge_alpha must be > 0, got {}", options.ridge_alpha));
  }
  nlohmann::json out;
  out["num_items"] = n;
  out["num_positions"] = L;
  out["dim"] = D;
  auto mean = torch::zeros({L, D}, torch::kFloat64);
  std::int64_t first = 0;
  for_each_chunk(palettes, {}, [&](const torch::Tensor& x) {
    if (check_chunks) {  // a source: the non-finite check happens on this first pass
      auto bad = (~torch::isfinite(x)).any(2).any(1).nonzero();
      if (bad.size(0) > 0) {
        throw ValueError(fmt::format("diagnose_palettes: palettes: item {} has a non-finite value",
                                     first + bad[0][0].item<std::int64_t>()));
      }
      first += x.size(0);
    }
    mean += x.sum(0);
  });
  mean /= static_cast<double>(n);
  out["positions"] = norm_shares(palettes, mean);
  auto raw = mean_cosines(palettes, {}), centred = mean_cosines(palettes, mean);
  out["cosine_between_positions"] = to_matrix(raw);
  out["centred_cosine_between_positions"] = to_matrix(centred);
  out["intra_cosine"] = L > 1 ? nlohmann::json(mean_off_diagonal(raw)) : nlohmann::json();
  out["centred_intra_cosine"] = L > 1 ? nlohmann::json(mean_off_diagonal(centred)) : nlohmann::json();

  const auto split = probe_split(n, options);
  std::vector<ProbeTarget> targets;
  for (std::int64_t a = 0; labels.defined() && a < labels.size(1); ++a) {
    targets.push_back(probe_target(labels.select(1, a).contiguous(), split));
  }
  const auto scores = ridge_probes(palettes, targets, split, options.ridge_alpha);
  out["probe_split"] = {{"train_items", split.train.size(0)},
                        {"test_items", split.test.size(0)},
                        {"seed", options.seed},
                        {"ridge_alpha", options.ridge_alpha}};
  out["cross_position_r2"] = to_matrix(scores.r2);
  if (labels.defined()) {
    std::vector<double> chance;
    std::vector<std::int64_t> classes;
    for (const auto& t : targets) {
      chance.push_back(t.chance_accuracy);
      classes.push_back(static_cast<std::int64_t>(t.classes.size()));
    }
    out["linear_probe"] = {{"accuracy", to_matrix(scores.accuracy)},
                           {"chance_accuracy", chance},
                           {"train_classes", classes}};
    if (!label_names.empty()) out["label_names"] = label_names;
  }
  return out;
}

}  // namespace

nlohmann::json diagnose_palettes(const torch::Tensor& palettes, const torch::Tensor& labels,
                                 const PaletteDiagnosticsOptions& options, const std::vector<std::string>& label_names) {
  return diagnose(of_tensor(checked_palettes(palettes)), false, labels, options, label_names);
}

nlohmann::json diagnose_palettes(const PaletteSource& palettes, const torch::Tensor& labels,
                                 const PaletteDiagnosticsOptions& options, const std::vector<std::string>& label_names) {
  if (!palettes.read) throw ValueError("diagnose_palettes: the palette source has no read function");
  return diagnose(of_source(palettes), true, labels, options, label_names);
}


}  // namespace lamia
