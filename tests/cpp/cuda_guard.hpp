#pragma once
// CUDA test cases (tag [cuda]) start with LAMIA_REQUIRE_CUDA(): where CUDA is not available the
// case is a passing no-op that warns "CUDA not available" (Catch2 v2 has no SKIP). With
// LAMIA_EXPECT_CUDA=1 in the environment (scripts/device-check.sh sets it on a GPU machine) a
// missing CUDA is a failure instead, so that a build that cannot see the GPU does not pass quietly.
// LAMIA_CUDA_TESTS_ON_CPU=1 runs the cases with the CPU standing in for the GPU: a dry run of the
// test code itself on a machine without one (float16 cases still skip there).
#include <catch2/catch.hpp>
#include <torch/cuda.h>
#include <torch/types.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace lamia::testing {

inline bool env_is_one(const char* name) {
  const char* e = std::getenv(name);
  return e != nullptr && std::string(e) == "1";
}
inline bool cuda_expected() { return env_is_one("LAMIA_EXPECT_CUDA"); }
inline bool cuda_dry_run() { return env_is_one("LAMIA_CUDA_TESTS_ON_CPU") && !torch::cuda::is_available(); }

/// The device the [cuda] cases run on: CUDA, or the CPU in a dry run.
inline torch::Device cuda_test_device() { return cuda_dry_run() ? torch::Device(torch::kCPU) : torch::Device(torch::kCUDA); }
inline bool on_test_device(const torch::Tensor& t) { return t.device().type() == cuda_test_device().type(); }
/// float16 kernels are missing on the CPU of older LibTorch: the dry run leaves float16 out.
inline bool skip_half(torch::Dtype dtype) { return dtype == torch::kHalf && cuda_dry_run(); }

/// max |a - b| / max |b| (in double, on the CPU): the relative error scaled by the reference's range.
inline double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  auto x = a.detach().to(torch::kCPU, torch::kDouble);
  auto y = b.detach().to(torch::kCPU, torch::kDouble);
  return (x - y).abs().max().item<double>() / std::max(1e-12, y.abs().max().item<double>());
}

/// ||a - b|| / ||b|| (Frobenius, in double): for reduced precision, where single entries may be off.
inline double norm_error(const torch::Tensor& a, const torch::Tensor& b) {
  auto x = a.detach().to(torch::kCPU, torch::kDouble);
  auto y = b.detach().to(torch::kCPU, torch::kDouble);
  return (x - y).norm().item<double>() / std::max(1e-12, y.norm().item<double>());
}

/// The key projection's bias has a zero gradient in exact arithmetic (softmax ignores the q.b_k
/// added to every score of a query), so on two devices it is rounding noise of different sign:
/// compare it by size against the largest gradient instead of by relative error.
inline bool is_key_bias(const std::string& name) {
  const std::string suffix = "k_proj.bias";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace lamia::testing

#define LAMIA_REQUIRE_CUDA()                                                                        \
  do {                                                                                              \
    if (::lamia::testing::cuda_dry_run()) {                                                         \
      WARN("CUDA not available: dry run on the CPU (LAMIA_CUDA_TESTS_ON_CPU=1)");                   \
    } else if (!torch::cuda::is_available()) {                                                      \
      if (::lamia::testing::cuda_expected())                                                        \
        FAIL("LAMIA_EXPECT_CUDA=1 but torch::cuda::is_available() is false (libtorch_cuda not "    \
             "linked or no device visible)");                                                       \
      WARN("CUDA not available: skipped");                                                          \
      return;                                                                                       \
    }                                                                                               \
  } while (0)
