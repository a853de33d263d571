// Mutual information with and without the chance correction (mutual_info.hpp), and the AMI
// matrices of diagnose_codes. Python checks the same against sklearn on random labelings.
#include <lamia/core/errors.hpp>
#include <lamia/quantize/diagnostics.hpp>
#include <lamia/quantize/mutual_info.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>
#include <vector>

using Catch::Matchers::Contains;

TEST_CASE("AMI: a case computed by hand", "[diagnostics][ami]") {
  // Two crossed halves of 4 items: MI = 0. Every cell has a = b = 2 of N = 4, so n_ij = 1 with
  // probability 4/6 (term log(4 * 1 / 4) = 0) or 2 with 1/6 (term 2/4 * log(4 * 2 / 4)):
  // E[MI] = 4 cells * 1/6 * ln(2) / 2 = ln(2) / 3. H = ln 2 each, so AMI = (0 - ln2/3) / (ln2 - ln2/3).
  std::vector<std::int64_t> a{0, 0, 1, 1}, b{0, 1, 0, 1};
  auto s = lamia::mutual_info_scores(a.data(), b.data(), 4);
  CHECK(s.mutual_info == Approx(0.0).margin(1e-15));
  CHECK(s.expected_mutual_info == Approx(std::log(2.0) / 3).epsilon(1e-12));
  CHECK(s.entropy_a == Approx(std::log(2.0)));
  CHECK(s.nmi == 0.0);
  CHECK(s.expected_nmi == Approx(1.0 / 3).epsilon(1e-12));
  CHECK(s.ami == Approx(-0.5).epsilon(1e-12));
  CHECK(lamia::adjusted_mutual_info(a.data(), b.data(), 4) == s.ami);
  // Value labels are arbitrary: the same partitions with other values give the same scores.
  std::vector<std::int64_t> a2{-7, -7, 40, 40}, b2{9, 3, 9, 3};
  CHECK(lamia::adjusted_mutual_info(a2.data(), b2.data(), 4) == Approx(-0.5).epsilon(1e-12));
}

TEST_CASE("AMI: identical, constant and sklearn's value", "[diagnostics][ami]") {
  std::vector<std::int64_t> a{0, 0, 1, 1, 2, 2, 2}, relabelled{5, 5, 3, 3, 9, 9, 9}, constant(7, 4);
  CHECK(lamia::adjusted_mutual_info(a.data(), relabelled.data(), 7) == Approx(1.0).epsilon(1e-12));
  CHECK(lamia::adjusted_mutual_info(constant.data(), constant.data(), 7) == 1.0);  // sklearn's special case
  CHECK(lamia::adjusted_mutual_info(a.data(), constant.data(), 7) == 0.0);
  CHECK(lamia::adjusted_mutual_info(a.data(), a.data(), 0) == 1.0);
  // sklearn.metrics.adjusted_mutual_info_score([0,0,1,1,2,2],[0,1,0,1,1,1]) (sklearn 1.2.1).
  std::vector<std::int64_t> x{0, 0, 1, 1, 2, 2}, y{0, 1, 0, 1, 1, 1};
  CHECK(lamia::adjusted_mutual_info(x.data(), y.data(), 6) == Approx(-0.15384615384615333).margin(1e-12));
  CHECK(lamia::normalized_mutual_info(x.data(), y.data(), 6) == Approx(0.2010413099536331));
  // Tensors: any integer dtype; wrong shapes name the argument.
  CHECK(lamia::adjusted_mutual_info(torch::tensor(x).to(torch::kInt32), torch::tensor(y)) ==
        Approx(-0.15384615384615333).margin(1e-12));
  REQUIRE_THROWS_WITH(lamia::mutual_info_scores(torch::tensor(x), torch::tensor({1, 2})),
                      Contains("same items, got lengths 6 and 2"));
  REQUIRE_THROWS_WITH(lamia::adjusted_mutual_info(torch::rand({6}), torch::tensor(y)), Contains("a must be an integer"));
}

TEST_CASE("AMI: independent labelings are near 0 where NMI is not", "[diagnostics][ami]") {
  // Two independent uniform 64-way labelings of 2,000 items: NMI ~0.24, all of it chance.
  torch::manual_seed(5);
  auto a = torch::randint(0, 64, {2000}, torch::kInt64), b = torch::randint(0, 64, {2000}, torch::kInt64);
  auto s = lamia::mutual_info_scores(a, b);
  CHECK(s.nmi > 0.2);
  CHECK(s.nmi < 0.3);
  CHECK(std::abs(s.nmi - s.expected_nmi) < 0.01);
  CHECK(std::abs(s.ami) < 0.01);
  // Half the items share b's code: AMI well above 0.
  auto c = torch::where(torch::arange(2000) < 1000, b, a);
  CHECK(lamia::adjusted_mutual_info(c, b) > 0.3);
}

TEST_CASE("diagnose_codes: AMI and chance NMI beside NMI", "[diagnostics][ami]") {
  auto codes = torch::tensor({{0, 3, 1}, {0, 3, 1}, {1, 2, 1}, {1, 2, 1}, {2, 0, 1}, {2, 0, 0}});
  auto labels = torch::tensor({{5, 1}, {5, 0}, {6, 1}, {6, 0}, {7, 1}, {7, 0}});
  auto d = lamia::diagnose_codes(codes, {4, 4, 4}, labels, {"genre", "mood"});
  for (const char* key : {"nmi_between_positions", "ami_between_positions", "expected_nmi_between_positions"}) {
    REQUIRE(d[key].size() == 3);
    REQUIRE(d[key][0].size() == 3);
  }
  CHECK(d["ami_between_positions"][0][0] == 1.0);
  std::vector<std::int64_t> p0{0, 0, 1, 1, 2, 2}, p2{1, 1, 1, 1, 1, 0}, genre{5, 5, 6, 6, 7, 7};
  const auto s02 = lamia::mutual_info_scores(p0.data(), p2.data(), 6);
  CHECK(d["ami_between_positions"][0][2].get<double>() == s02.ami);
  CHECK(d["ami_between_positions"][2][0].get<double>() == s02.ami);
  CHECK(d["nmi_between_positions"][0][2].get<double>() == s02.nmi);
  CHECK(d["expected_nmi_between_positions"][0][2].get<double>() == s02.expected_nmi);
  CHECK(d["expected_nmi_between_positions"][0][0].get<double>() ==
        lamia::mutual_info_scores(p0.data(), p0.data(), 6).expected_nmi);
  REQUIRE(d["ami_with_labels"].size() == 3);
  REQUIRE(d["ami_with_labels"][0].size() == 2);
  CHECK(d["ami_with_labels"][0][0].get<double>() == Approx(1.0).epsilon(1e-12));  // position 0 is the genre
  CHECK(d["expected_nmi_with_labels"][0][0].get<double>() ==
        lamia::mutual_info_scores(p0.data(), genre.data(), 6).expected_nmi);
  CHECK(d["expected_nmi_with_labels"][0][0].get<double>() > 0.1);
}
