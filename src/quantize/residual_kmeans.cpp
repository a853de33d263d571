#include <lamia/core/errors.hpp>
#include <lamia/quantize/detail/tensor_views.hpp>
#include <lamia/quantize/residual_kmeans.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>

namespace lamia {

ResidualKMeans::ResidualKMeans(ResidualKMeansOptions options) : options_(options) {
  if (options_.num_levels < 1) {
    throw ValueError(fmt::format("ResidualKMeans: num_levels must be >= 1, got {}", options_.num_levels));
  }
  if (options_.kmeans.num_codes < 1) {
    throw ValueError(fmt::format("ResidualKMeans: num_codes (k) must be >= 1, got {}", options_.kmeans.num_codes));
  }
}

std::vector<std::int64_t> ResidualKMeans::codebook_sizes() const { return num_codes_; }

ResidualKMeansReport ResidualKMeans::fit(const torch::Tensor& embeddings) {
  const auto t0 = std::chrono::steady_clock::now();
  auto x = detail::checked_float_tensor(embeddings, 2, "ResidualKMeans::fit: embeddings", "n x D");
  const std::int64_t n = x.size(0), D = x.size(1);
  if (n < 1 || D < 1) throw ValueError(fmt::format("ResidualKMeans::fit: embeddings are empty ({} x {})", n, D));
  std::int64_t k = options_.kmeans.num_codes;
  if (n < k) {
    if (!options_.reduce_k_when_few_items) {
      throw ValueError(fmt::format("ResidualKMeans::fit: needs at least num_codes = {} items, got {} (set "
                                   "reduce_k_when_few_items to use k = number of items)",
                                   k, n));
    }
    k = n;
  }
  check_finite(x.data_ptr<float>(), n, D, "ResidualKMeans::fit: embeddings");
  auto residual = x.clone();
  const std::int64_t L = options_.num_levels;
  auto codes = torch::empty({n, L}, torch::kInt64);
  ResidualKMeansReport report;
  report.num_items = n;
  std::vector<std::vector<float>> books;
  for (std::int64_t l = 0; l < L; ++l) {
    KMeansOptions ko = options_.kmeans;
    ko.num_codes = k;
    ko.seed = options_.kmeans.seed + 1000003ull * static_cast<std::uint64_t>(l);
    KMeansResult km = kmeans(residual.data_ptr<float>(), n, D, ko);
    auto assign = torch::from_blob(km.assignment.data(), {n}, torch::kInt32).to(torch::kInt64);
    auto cb = torch::from_blob(km.centroids.data(), {k, D}, torch::kFloat32);
    residual -= cb.index_select(0, assign);
    codes.select(1, l).copy_(assign);
    report.objective.push_back(std::move(km.objective));
    report.residual_mse.push_back(residual.pow(2).sum(1).mean().item<double>());
    report.used_codes.push_back(torch::bincount(assign, {}, k).gt(0).sum().item<std::int64_t>());
    books.push_back(std::move(km.centroids));
  }
  dim_ = D;
  num_codes_.assign(L, k);
  codebooks_ = std::move(books);
  training_codes_ = codes;
  report.num_colliding_items = table().num_colliding_items();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

torch::Tensor ResidualKMeans::encode(const torch::Tensor& embeddings) const {
  if (!fitted()) throw ValueError("ResidualKMeans::encode: not fitted");
  auto x = detail::checked_float_tensor(embeddings, 2, "ResidualKMeans::encode: embeddings", "m x D");
  if (x.size(1) != dim_) {
    throw ValueError(fmt::format("ResidualKMeans::encode: embeddings must have dimension {} (as fitted), got {}", dim_,
                                 x.size(1)));
  }
  const std::int64_t m = x.size(0);
  check_finite(x.data_ptr<float>(), m, dim_, "ResidualKMeans::encode: embeddings");
  auto residual = x.clone();
  auto codes = torch::empty({m, static_cast<std::int64_t>(codebooks_.size())}, torch::kInt64);
  std::vector<std::int32_t> c(m);
  for (std::size_t l = 0; l < codebooks_.size(); ++l) {
    assign_nearest(codebooks_[l].data(), num_codes_[l], dim_, residual.data_ptr<float>(), m, c.data());
    auto assign = torch::from_blob(c.data(), {m}, torch::kInt32).to(torch::kInt64);
    residual -= codebook(static_cast<std::int64_t>(l)).index_select(0, assign);
    codes.select(1, static_cast<std::int64_t>(l)).copy_(assign);
  }
  return codes;
}

torch::Tensor ResidualKMeans::reconstruct(const torch::Tensor& codes) const {
  if (!fitted()) throw ValueError("ResidualKMeans::reconstruct: not fitted");
  const auto L = static_cast<std::int64_t>(codebooks_.size());
  TORCH_CHECK_VALUE(codes.dim() == 2 && codes.size(1) == L, "ResidualKMeans::reconstruct: codes must be m x ", L,
                    ", got shape ", codes.sizes());
  auto c = codes.to(torch::kInt64);
  auto out = torch::zeros({c.size(0), dim_}, torch::kFloat32);
  for (std::int64_t l = 0; l < L; ++l) {
    auto col = c.select(1, l);
    TORCH_CHECK_INDEX(col.numel() == 0 || (col.min().item<std::int64_t>() >= 0 &&
                                           col.max().item<std::int64_t>() < num_codes_[l]),
                      "ResidualKMeans::reconstruct: codes at level ", l, " must be 0 to ", num_codes_[l] - 1);
    out += codebook(l).index_select(0, col);
  }
  return out;
}

torch::Tensor ResidualKMeans::codebook(std::int64_t level) const {
  if (level < 0 || level >= static_cast<std::int64_t>(codebooks_.size())) {
    throw IndexError(fmt::format("ResidualKMeans::codebook: level {} out of range (0 to {})", level,
                                 static_cast<std::int64_t>(codebooks_.size()) - 1));
  }
  return torch::from_blob(const_cast<float*>(codebooks_[level].data()), {num_codes_[level], dim_}, torch::kFloat32)
      .clone();
}

torch::Tensor ResidualKMeans::training_codes() const {
  if (!fitted()) throw ValueError("ResidualKMeans::training_codes: not fitted");
  return training_codes_;
}

SemanticIdTable ResidualKMeans::table() const { return SemanticIdTable::from_codes(training_codes(), num_codes_); }

SemanticIdTable residual_kmeans(const torch::Tensor& embeddings, const ResidualKMeansOptions& options) {
  ResidualKMeans rk(options);
  rk.fit(embeddings);
  return rk.table();
}

}  // namespace lamia
