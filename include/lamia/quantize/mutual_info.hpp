#pragma once
// Mutual information between two labelings of the same n items, with and without the chance
// correction (definitions in docs/quantize.md, "Diagnostics"). Natural logarithms throughout.
//
//   NMI(a, b) = MI / ((H(a) + H(b)) / 2)                      sklearn.metrics.normalized_mutual_info_score
//   AMI(a, b) = (MI - E[MI]) / ((H(a) + H(b)) / 2 - E[MI])    sklearn.metrics.adjusted_mutual_info_score
//
// E[MI] is the expected MI of two random labelings with the same cluster sizes (the hypergeometric
// model of Vinh, Epps and Bailey 2010), so AMI is ~0 for independent labelings whatever the number
// of clusters, while NMI is not: two independent uniform 64-way labelings of 2,000 items have
// NMI ~0.24. E[MI] / ((H(a) + H(b)) / 2) is that chance level of NMI (`expected_nmi`).
//
// Example:
//   auto s = lamia::mutual_info_scores(a.data(), b.data(), n);
//   fmt::print("NMI {:.3f} (chance {:.3f}), AMI {:.3f}\n", s.nmi, s.expected_nmi, s.ami);
#include <torch/types.h>

#include <cstdint>

namespace lamia {

/// Every score of one pair of labelings, each computed as sklearn 1.2 does (special cases included).
struct MutualInfoScores {
  double mutual_info = 0;           ///< MI(a, b) (sklearn's mutual_info_score)
  double expected_mutual_info = 0;  ///< E[MI] under random labelings with the same cluster sizes
  double entropy_a = 0, entropy_b = 0;
  double nmi = 0;           ///< normalized_mutual_info_score (arithmetic mean)
  double expected_nmi = 0;  ///< E[MI] / ((H(a) + H(b)) / 2): NMI's chance level (0 when the mean is 0)
  double ami = 0;           ///< adjusted_mutual_info_score (arithmetic mean)
};

/// All scores of two labelings of n items (any int64 values). Costs O(n + R * C * min(max sizes))
/// for R and C clusters (the expected MI's sum over the possible cell counts).
MutualInfoScores mutual_info_scores(const std::int64_t* a, const std::int64_t* b, std::int64_t n);
/// Same for two 1-D integer CPU tensors of equal length.
MutualInfoScores mutual_info_scores(const torch::Tensor& a, const torch::Tensor& b);

/// Normalised mutual information (arithmetic mean): 1 when both labelings are constant, 0 when MI = 0.
/// Cheaper than mutual_info_scores (no expected MI).
double normalized_mutual_info(const std::int64_t* a, const std::int64_t* b, std::int64_t n);
double normalized_mutual_info(const torch::Tensor& a, const torch::Tensor& b);

/// Adjusted mutual information (arithmetic mean): 1 for identical partitions (and for two constant
/// labelings), ~0 in expectation for independent ones, negative below chance.
double adjusted_mutual_info(const std::int64_t* a, const std::int64_t* b, std::int64_t n);
double adjusted_mutual_info(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace lamia
