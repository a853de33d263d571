#include <lamia/core/errors.hpp>
#include <lamia/quantize/diagnostics.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

namespace lamia {
namespace {

double entropy_of(const std::unordered_map<std::int64_t, std::int64_t>& counts, std::int64_t n) {
  double h = 0;
  for (auto& [c, m] : counts) {
    const double p = static_cast<double>(m) / n;
    h -= p * std::log(p);
  }
  return h;
}

using Matrix = std::vector<std::vector<double>>;

/// NMI, AMI and NMI's chance level of one pair of labelings, into cell [r][c] of three matrices.
struct MutualInfoMatrices {
  Matrix nmi, ami, expected_nmi;
  MutualInfoMatrices(std::size_t rows, std::size_t cols)
      : nmi(rows, std::vector<double>(cols)), ami(nmi), expected_nmi(nmi) {}
  void set(std::size_t r, std::size_t c, const MutualInfoScores& s) {
    nmi[r][c] = s.nmi;
    ami[r][c] = s.ami;
    expected_nmi[r][c] = s.expected_nmi;
  }
  void write(nlohmann::json& out, const std::string& suffix) const {
    out["nmi_" + suffix] = nmi;
    out["ami_" + suffix] = ami;
    out["expected_nmi_" + suffix] = expected_nmi;
  }
};

torch::Tensor checked_int_matrix(const torch::Tensor& t, const char* what) {
  TORCH_CHECK_VALUE(t.dim() == 2, what, ": expected a 2-D integer tensor (items x columns), got ", t.dim(), "-D");
  TORCH_CHECK_VALUE(!t.is_floating_point() && !t.is_complex(), what, ": expected an integer tensor, got ",
                    t.scalar_type());
  TORCH_CHECK_VALUE(t.device().is_cpu(), what, ": expected a CPU tensor, got one on ", t.device());
  return t.to(torch::kInt64).contiguous();
}

}  // namespace

nlohmann::json diagnose_codes(const torch::Tensor& codes_in, std::vector<std::int64_t> sizes,
                              const torch::Tensor& labels_in, const std::vector<std::string>& label_names) {
  auto codes = checked_int_matrix(codes_in, "diagnose_codes: codes");
  const std::int64_t n = codes.size(0), L = codes.size(1);
  if (sizes.empty()) {
    for (std::int64_t l = 0; l < L; ++l) sizes.push_back(n == 0 ? 1 : codes.select(1, l).max().item<std::int64_t>() + 1);
  }
  if (static_cast<std::int64_t>(sizes.size()) < L) {
    throw ValueError(fmt::format("diagnose_codes: codebook_sizes needs {} entries (one per position), got {}", L,
                                 sizes.size()));
  }
  // Columns as contiguous vectors.
  std::vector<std::vector<std::int64_t>> cols(L, std::vector<std::int64_t>(n));
  const auto* c = codes.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t l = 0; l < L; ++l) cols[l][i] = c[i * L + l];
  }
  nlohmann::json out;
  out["num_items"] = n;
  out["num_positions"] = L;
  out["positions"] = nlohmann::json::array();
  for (std::int64_t l = 0; l < L; ++l) {
    std::unordered_map<std::int64_t, std::int64_t> cnt;
    for (auto v : cols[l]) ++cnt[v];
    std::int64_t largest = 0;
    for (auto& [v, m] : cnt) largest = std::max(largest, m);
    const double h = n ? entropy_of(cnt, n) : 0.0;
    const auto used = static_cast<std::int64_t>(cnt.size());
    out["positions"].push_back({{"position", l},
                                {"codebook_size", sizes[l]},
                                {"used_codes", used},
                                {"utilization", static_cast<double>(used) / sizes[l]},
                                {"entropy", h},
                                {"perplexity", std::exp(h)},
                                {"largest_cluster_share", n ? static_cast<double>(largest) / n : 0.0}});
  }
  // Prefix statistics: distinct prefixes of each length, via sorting rows.
  std::vector<std::int64_t> order(n);
  for (std::int64_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    return std::lexicographical_compare(c + a * L, c + (a + 1) * L, c + b * L, c + (b + 1) * L);
  });
  nlohmann::json prefixes = nlohmann::json::array();
  std::int64_t unique_full = 0, colliding = 0, max_group = n ? 1 : 0;
  for (std::int64_t len = 1; len <= L; ++len) {
    std::int64_t unique = 0;
    for (std::int64_t r = 0; r < n;) {
      std::int64_t e = r + 1;
      while (e < n && std::equal(c + order[r] * L, c + order[r] * L + len, c + order[e] * L)) ++e;
      ++unique;
      if (len == L) {
        if (e - r > 1) colliding += e - r;
        max_group = std::max(max_group, e - r);
      }
      r = e;
    }
    if (len == L) unique_full = unique;
    prefixes.push_back({{"length", len},
                        {"unique_prefixes", unique},
                        {"items_per_prefix", unique ? static_cast<double>(n) / unique : 0.0}});
  }
  out["table"] = {{"num_items", n},
                  {"unique_codes", unique_full},
                  {"collision_rate", n ? 1.0 - static_cast<double>(unique_full) / n : 0.0},
                  {"colliding_items", colliding},
                  {"max_group_size", max_group},
                  {"items_per_unique_prefix", unique_full ? static_cast<double>(n) / unique_full : 0.0},
                  {"prefixes", prefixes}};
  MutualInfoMatrices between(L, L);
  for (std::int64_t a = 0; a < L; ++a) {
    for (std::int64_t b = a; b < L; ++b) {
      auto s = mutual_info_scores(cols[a].data(), cols[b].data(), n);
      if (a == b) s.nmi = s.ami = 1.0;  // identical labelings (sklearn's value up to rounding)
      between.set(a, b, s);
      between.set(b, a, s);
    }
  }
  between.write(out, "between_positions");
  if (labels_in.defined()) {
    auto labels = checked_int_matrix(labels_in, "diagnose_codes: labels");
    if (labels.size(0) != n) {
      throw ValueError(fmt::format("diagnose_codes: labels must have one row per item ({}), got {}", n,
                                   labels.size(0)));
    }
    const std::int64_t A = labels.size(1);
    if (!label_names.empty() && static_cast<std::int64_t>(label_names.size()) != A) {
      throw ValueError(fmt::format("diagnose_codes: label_names must have one name per label column ({}), got {}", A,
                                   label_names.size()));
    }
    MutualInfoMatrices with_labels(L, A);
    std::vector<std::int64_t> col(n);
    const auto* lp = labels.data_ptr<std::int64_t>();
    for (std::int64_t a = 0; a < A; ++a) {
      for (std::int64_t i = 0; i < n; ++i) col[i] = lp[i * A + a];
      for (std::int64_t l = 0; l < L; ++l) with_labels.set(l, a, mutual_info_scores(cols[l].data(), col.data(), n));
    }
    with_labels.write(out, "with_labels");
    if (!label_names.empty()) out["label_names"] = label_names;
  }
  return out;
}

nlohmann::json diagnose_table(const SemanticIdTable& table, const torch::Tensor& labels,
                              const std::vector<std::string>& label_names) {
  auto sizes = table.codebook_sizes();
  sizes.resize(table.num_levels());
  return diagnose_codes(table.codes(), sizes, labels, label_names);
}

}  // namespace lamia
