#include <lamia/quantize/mutual_info.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <vector>

namespace lamia {
namespace {

/// The contingency table of two labelings: cluster sizes and the non-zero cells.
struct Contingency {
  std::int64_t n = 0;
  std::vector<std::int64_t> rows, cols;  // cluster sizes of a and of b
  std::vector<std::int64_t> cell_row, cell_col, cell_count;
};

/// Dense cluster ids 0..R-1 in the order of the sorted distinct values (like np.unique).
std::vector<std::int64_t> dense_ids(const std::int64_t* x, std::int64_t n, std::vector<std::int64_t>& sizes) {
  std::vector<std::int64_t> values(x, x + n);
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  sizes.assign(values.size(), 0);
  std::vector<std::int64_t> ids(n);
  for (std::int64_t i = 0; i < n; ++i) {
    ids[i] = std::lower_bound(values.begin(), values.end(), x[i]) - values.begin();
    ++sizes[ids[i]];
  }
  return ids;
}

Contingency contingency(const std::int64_t* a, const std::int64_t* b, std::int64_t n) {
  Contingency t;
  t.n = n;
  auto ia = dense_ids(a, n, t.rows);
  auto ib = dense_ids(b, n, t.cols);
  const auto C = static_cast<std::int64_t>(t.cols.size());
  std::vector<std::int64_t> cells(n);
  for (std::int64_t i = 0; i < n; ++i) cells[i] = ia[i] * C + ib[i];
  std::sort(cells.begin(), cells.end());
  for (std::int64_t i = 0; i < n;) {
    std::int64_t e = i + 1;
    while (e < n && cells[e] == cells[i]) ++e;
    t.cell_row.push_back(cells[i] / C);
    t.cell_col.push_back(cells[i] % C);
    t.cell_count.push_back(e - i);
    i = e;
  }
  return t;
}

// sklearn.metrics.cluster.entropy: 1 for no items, 0 for one cluster.
double entropy_of_sizes(const std::vector<std::int64_t>& sizes, std::int64_t n) {
  if (n == 0) return 1.0;
  if (sizes.size() == 1) return 0.0;
  double h = 0;
  const double log_n = std::log(static_cast<double>(n));
  for (auto s : sizes) h -= (static_cast<double>(s) / n) * (std::log(static_cast<double>(s)) - log_n);
  return h;
}

// sklearn.metrics.mutual_info_score from the contingency: terms below eps are dropped, the sum
// clipped at 0.
double mutual_info_of(const Contingency& t) {
  if (t.rows.size() == 1 || t.cols.size() == 1) return 0.0;
  const double N = static_cast<double>(t.n), log_n = std::log(N);
  double mi = 0;
  for (std::size_t k = 0; k < t.cell_count.size(); ++k) {
    const double v = static_cast<double>(t.cell_count[k]), share = v / N;
    const double log_outer =
        -std::log(static_cast<double>(t.rows[t.cell_row[k]] * t.cols[t.cell_col[k]])) + log_n + log_n;
    const double term = share * (std::log(v) - log_n) + share * log_outer;
    if (std::abs(term) >= std::numeric_limits<double>::epsilon()) mi += term;
  }
  return std::max(mi, 0.0);
}

/// Distinct sizes with their multiplicities: E[MI]'s inner sum depends only on the two sizes.
std::map<std::int64_t, std::int64_t> size_counts(const std::vector<std::int64_t>& sizes) {
  std::map<std::int64_t, std::int64_t> m;
  for (auto s : sizes) ++m[s];
  return m;
}

// E[MI] under the hypergeometric model (sklearn's expected_mutual_information): for clusters of
// sizes a and b, the cell count n_ij ranges over max(1, a + b - N)..min(a, b) with probability
// a! b! (N-a)! (N-b)! / (N! n_ij! (a-n_ij)! (b-n_ij)! (N-a-b+n_ij)!), computed in log space.
double expected_mutual_info_of(const Contingency& t) {
  if (t.rows.size() == 1 || t.cols.size() == 1) return 0.0;
  const std::int64_t n = t.n;
  const double N = static_cast<double>(n), log_n = std::log(N);
  std::vector<double> log_factorial(n + 1);
  for (std::int64_t k = 0; k <= n; ++k) log_factorial[k] = std::lgamma(static_cast<double>(k) + 1.0);
  const auto& lf = log_factorial;
  double emi = 0;
  for (auto [a, count_a] : size_counts(t.rows)) {
    for (auto [b, count_b] : size_counts(t.cols)) {
      const double fixed = lf[a] + lf[b] + lf[n - a] + lf[n - b] - lf[n];
      const double log_ab = std::log(static_cast<double>(a)) + std::log(static_cast<double>(b));
      double sum = 0;
      for (std::int64_t nij = std::max<std::int64_t>(1, a + b - n); nij <= std::min(a, b); ++nij) {
        const double log_p = fixed - lf[nij] - lf[a - nij] - lf[b - nij] - lf[n - a - b + nij];
        sum += (nij / N) * (log_n + std::log(static_cast<double>(nij)) - log_ab) * std::exp(log_p);
      }
      emi += sum * static_cast<double>(count_a * count_b);
    }
  }
  return emi;
}

bool both_constant(const Contingency& t) {
  return (t.rows.size() == 1 && t.cols.size() == 1) || t.n == 0;
}

const std::int64_t* checked_labels(const torch::Tensor& t, const char* fn, const char* what, torch::Tensor& keep) {
  TORCH_CHECK_VALUE(t.defined() && t.dim() == 1, fn, ": ", what, " must be a 1-D integer tensor, got ",
                    t.defined() ? t.sizes() : torch::IntArrayRef{});
  TORCH_CHECK_VALUE(!t.is_floating_point() && !t.is_complex(), fn, ": ", what, " must be an integer tensor, got ",
                    t.scalar_type());
  TORCH_CHECK_VALUE(t.device().is_cpu(), fn, ": ", what, " must be a CPU tensor, got one on ", t.device());
  keep = t.to(torch::kInt64).contiguous();
  return keep.data_ptr<std::int64_t>();
}

template <class F>
auto on_tensors(const torch::Tensor& a, const torch::Tensor& b, const char* fn, F&& f) {
  torch::Tensor ka, kb;
  const auto* pa = checked_labels(a, fn, "a", ka);
  const auto* pb = checked_labels(b, fn, "b", kb);
  TORCH_CHECK_VALUE(ka.size(0) == kb.size(0), fn, ": a and b must label the same items, got lengths ", ka.size(0),
                    " and ", kb.size(0));
  return f(pa, pb, ka.size(0));
}

}  // namespace

MutualInfoScores mutual_info_scores(const std::int64_t* a, const std::int64_t* b, std::int64_t n) {
  const auto t = contingency(a, b, n);
  MutualInfoScores s;
  s.entropy_a = entropy_of_sizes(t.rows, n);
  s.entropy_b = entropy_of_sizes(t.cols, n);
  if (both_constant(t)) {  // one cluster each (or no items): a perfect match, and so is every random pair
    s.nmi = s.ami = s.expected_nmi = 1.0;
    return s;
  }
  s.mutual_info = mutual_info_of(t);
  s.expected_mutual_info = expected_mutual_info_of(t);
  const double mean_entropy = (s.entropy_a + s.entropy_b) / 2;
  s.nmi = s.mutual_info == 0 ? 0.0 : s.mutual_info / mean_entropy;
  s.expected_nmi = mean_entropy > 0 ? s.expected_mutual_info / mean_entropy : 0.0;
  // sklearn keeps the denominator's sign and at least eps away from 0 (a perfect match gives
  // MI = H = E[MI] up to rounding).
  double denominator = mean_entropy - s.expected_mutual_info;
  const double eps = std::numeric_limits<double>::epsilon();
  denominator = denominator < 0 ? std::min(denominator, -eps) : std::max(denominator, eps);
  s.ami = (s.mutual_info - s.expected_mutual_info) / denominator;
  return s;
}

MutualInfoScores mutual_info_scores(const torch::Tensor& a, const torch::Tensor& b) {
  return on_tensors(a, b, "mutual_info_scores", [](auto pa, auto pb, auto n) { return mutual_info_scores(pa, pb, n); });
}

double normalized_mutual_info(const std::int64_t* a, const std::int64_t* b, std::int64_t n) {
  const auto t = contingency(a, b, n);
  if (both_constant(t)) return 1.0;
  const double mi = mutual_info_of(t);
  if (mi == 0) return 0.0;
  return mi / ((entropy_of_sizes(t.rows, n) + entropy_of_sizes(t.cols, n)) / 2);
}

double normalized_mutual_info(const torch::Tensor& a, const torch::Tensor& b) {
  return on_tensors(a, b, "normalized_mutual_info",
                    [](auto pa, auto pb, auto n) { return normalized_mutual_info(pa, pb, n); });
}

double adjusted_mutual_info(const std::int64_t* a, const std::int64_t* b, std::int64_t n) {
  return mutual_info_scores(a, b, n).ami;
}

double adjusted_mutual_info(const torch::Tensor& a, const torch::Tensor& b) {
  return mutual_info_scores(a, b).ami;
}

}  // namespace lamia
