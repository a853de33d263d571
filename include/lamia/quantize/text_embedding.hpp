#pragma once
// Item embeddings without a trained language model: TF-IDF over an item's text,
// reduced with a truncated SVD (LSA). Used by the RQ-VAE and residual K-Means
// baselines until mean-pooled LM hidden states are available.
//
// Tokenisation (tokenize_words): ASCII letters are lowercased; a word is a
// maximal run of ASCII letters, digits, "_" or bytes >= 0x80 (so UTF-8 words stay
// whole, unchanged); words of one byte are dropped (sklearn's default
// token_pattern \b\w\w+\b, for ASCII text). A catalog item's text is its
// attribute values joined with spaces.
// TF-IDF follows sklearn's TfidfVectorizer defaults: raw counts (or 1 + log tf
// with sublinear_tf), smooth idf = ln((1 + n) / (1 + df)) + 1, rows L2-normalised.
// The SVD is randomised (Halko et al.) with power iterations; embeddings are
// U * S (sklearn's TruncatedSVD.transform), signs fixed so that the largest
// coefficient of each right singular vector is positive.
//
// Example:
//   lamia::TfidfSvdOptions opt;  opt.dim = 64;
//   torch::Tensor emb = lamia::tfidf_svd_embeddings(catalog, opt).embeddings;   // n x 64
#include <lamia/core/options.hpp>
#include <lamia/data/catalog.hpp>

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lamia {

struct TfidfSvdOptions {
  /// Output dimension (SVD components); must be <= min(items, vocabulary size).
  std::int64_t dim = 64;
  /// Ignore words that occur in fewer than min_df items.
  std::int64_t min_df = 1;
  /// Ignore words that occur in more than this fraction of items (1.0 keeps all).
  double max_df = 1.0;
  /// Keep only the max_features most frequent words (0 = all).
  std::int64_t max_features = 0;
  /// 1 + ln(tf) instead of raw counts.
  bool sublinear_tf = false;
  /// Randomised SVD: extra random directions and power iterations (more = more exact).
  std::int64_t oversamples = 10;
  int power_iterations = 7;
  std::uint64_t seed = 0;
};

template <class V>
void visit_fields(TfidfSvdOptions& o, V&& v) {
  v.field("dim", o.dim, "output dimension (SVD components), <= min(items, vocabulary size)", options::at_least(1));
  v.field("min_df", o.min_df, "ignore words that occur in fewer than min_df items");
  v.field("max_df", o.max_df, "ignore words that occur in more than this fraction of items (1.0 keeps all)");
  v.field("max_features", o.max_features, "keep only the max_features most frequent words (0 = all)");
  v.field("sublinear_tf", o.sublinear_tf, "1 + ln(tf) instead of raw counts");
  v.field("oversamples", o.oversamples, "randomised SVD: extra random directions");
  v.field("power_iterations", o.power_iterations, "randomised SVD: power iterations (more = more exact)");
  v.field("seed", o.seed, "seed of the randomised SVD");
}

struct TfidfSvdResult {
  torch::Tensor embeddings;               ///< n x dim float32
  std::vector<std::string> vocabulary;    ///< the words kept, sorted
  std::vector<double> singular_values;    ///< dim, descending
};

/// Lowercased words of text (see the file comment).
std::vector<std::string> tokenize_words(std::string_view text);

/// TF-IDF + truncated SVD of one text per item. ValueError when dim is out of range or no word survives.
TfidfSvdResult tfidf_svd_embeddings(const std::vector<std::string>& texts, const TfidfSvdOptions& options = {});
/// Same for a catalog: each item's attribute values joined with spaces.
TfidfSvdResult tfidf_svd_embeddings(const Catalog& catalog, const TfidfSvdOptions& options = {});

}  // namespace lamia
