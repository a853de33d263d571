#include <lamia/core/errors.hpp>
#include <lamia/quantize/text_embedding.hpp>

#include <Eigen/Dense>
#include <Eigen/Sparse>
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <unordered_map>

namespace lamia {
namespace {

bool word_byte(unsigned char c) { return std::isalnum(c) || c >= 0x80 || c == '_'; }

using RowMajorSparse = Eigen::SparseMatrix<double, Eigen::RowMajor>;

Eigen::MatrixXd orthonormal(const Eigen::MatrixXd& a) {
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
  return qr.householderQ() * Eigen::MatrixXd::Identity(a.rows(), a.cols());
}

}  // namespace

std::vector<std::string> tokenize_words(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (cur.size() >= 2) words.push_back(cur);
    cur.clear();
  };
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (word_byte(c)) {
      cur.push_back(c < 0x80 ? static_cast<char>(std::tolower(c)) : ch);
    } else {
      flush();
    }
  }
  flush();
  return words;
}

TfidfSvdResult tfidf_svd_embeddings(const std::vector<std::string>& texts, const TfidfSvdOptions& o) {
  const auto n = static_cast<std::int64_t>(texts.size());
  if (o.dim < 1) throw ValueError(fmt::format("tfidf_svd_embeddings: dim must be >= 1, got {}", o.dim));
  if (o.min_df < 1) throw ValueError(fmt::format("tfidf_svd_embeddings: min_df must be >= 1, got {}", o.min_df));
  if (!(o.max_df > 0 && o.max_df <= 1)) {
    throw ValueError(fmt::format("tfidf_svd_embeddings: max_df must be in (0, 1], got {}", o.max_df));
  }
  // Term counts per item and document frequencies.
  std::vector<std::unordered_map<std::string, double>> counts(n);
  std::map<std::string, std::int64_t> df;  // sorted: deterministic vocabulary order
  for (std::int64_t i = 0; i < n; ++i) {
    for (auto& w : tokenize_words(texts[i])) counts[i][w] += 1;
    for (auto& [w, c] : counts[i]) ++df[w];
  }
  std::vector<std::pair<std::string, std::int64_t>> kept;
  for (auto& [w, f] : df) {
    if (f >= o.min_df && static_cast<double>(f) <= o.max_df * n) kept.emplace_back(w, f);
  }
  if (o.max_features > 0 && static_cast<std::int64_t>(kept.size()) > o.max_features) {
    // Most frequent by total count (as sklearn), ties by word.
    std::map<std::string, double> total;
    for (auto& c : counts) {
      for (auto& [w, v] : c) total[w] += v;
    }
    std::stable_sort(kept.begin(), kept.end(), [&](auto& a, auto& b) { return total[a.first] > total[b.first]; });
    kept.resize(o.max_features);
    std::sort(kept.begin(), kept.end());
  }
  const auto V = static_cast<std::int64_t>(kept.size());
  if (V == 0) throw ValueError("tfidf_svd_embeddings: no word is left after tokenisation and min_df/max_df");
  if (o.dim > std::min(n, V)) {
    throw ValueError(fmt::format("tfidf_svd_embeddings: dim must be <= min(items, vocabulary) = min({}, {}), got {}",
                                 n, V, o.dim));
  }
  std::unordered_map<std::string, std::int64_t> column;
  std::vector<double> idf(V);
  for (std::int64_t v = 0; v < V; ++v) {
    column[kept[v].first] = v;
    idf[v] = std::log((1.0 + n) / (1.0 + kept[v].second)) + 1.0;
  }
  std::vector<Eigen::Triplet<double>> trips;
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<std::pair<std::int64_t, double>> row;
    double norm = 0;
    for (auto& [w, c] : counts[i]) {
      auto it = column.find(w);
      if (it == column.end()) continue;
      const double tf = o.sublinear_tf ? 1.0 + std::log(c) : c;
      const double val = tf * idf[it->second];
      row.emplace_back(it->second, val);
      norm += val * val;
    }
    norm = std::sqrt(norm);
    for (auto& [col, val] : row) trips.emplace_back(i, col, val / norm);  // empty rows stay zero
  }
  RowMajorSparse X(n, V);
  X.setFromTriplets(trips.begin(), trips.end());

  // Randomised range finder with power iterations, then an exact SVD of the small projection.
  const std::int64_t l = std::min<std::int64_t>(o.dim + o.oversamples, std::min(n, V));
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<double> gauss(0.0, 1.0);
  Eigen::MatrixXd omega(V, l);
  for (std::int64_t c = 0; c < l; ++c) {
    for (std::int64_t r = 0; r < V; ++r) omega(r, c) = gauss(rng);
  }
  Eigen::MatrixXd Q = orthonormal(X * omega);
  for (int it = 0; it < o.power_iterations; ++it) {
    Eigen::MatrixXd Z = orthonormal(X.transpose() * Q);
    Q = orthonormal(X * Z);
  }
  Eigen::MatrixXd B = (X.transpose() * Q).transpose();  // l x V
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(B, Eigen::ComputeThinU | Eigen::ComputeThinV);
  Eigen::MatrixXd U = Q * svd.matrixU();  // n x l
  const Eigen::VectorXd& S = svd.singularValues();
  Eigen::MatrixXd Vt = svd.matrixV();  // V x l

  TfidfSvdResult result;
  result.embeddings = torch::empty({n, o.dim}, torch::kFloat32);
  auto acc = result.embeddings.accessor<float, 2>();
  for (std::int64_t c = 0; c < o.dim; ++c) {
    Eigen::Index arg = 0;
    Vt.col(c).cwiseAbs().maxCoeff(&arg);
    const double sign = Vt(arg, c) < 0 ? -1.0 : 1.0;
    for (std::int64_t i = 0; i < n; ++i) acc[i][c] = static_cast<float>(sign * U(i, c) * S(c));
    result.singular_values.push_back(S(c));
  }
  for (auto& [w, f] : kept) result.vocabulary.push_back(w);
  return result;
}

TfidfSvdResult tfidf_svd_embeddings(const Catalog& catalog, const TfidfSvdOptions& options) {
  std::vector<std::string> texts;
  texts.reserve(catalog.size());
  for (std::size_t i = 0; i < catalog.size(); ++i) {
    std::string t;
    for (const auto& v : catalog.values(static_cast<ItemIndex>(i))) {
      if (!t.empty()) t += ' ';
      t += v;
    }
    texts.push_back(std::move(t));
  }
  return tfidf_svd_embeddings(texts, options);
}

}  // namespace lamia
