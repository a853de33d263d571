#pragma once
// Seeded synthetic data for the quantize tests: palettes whose position j is a
// noisy copy of one of C centres, the centre index being a known "aspect" label.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace lamia::test {

struct Clustered {
  torch::Tensor x;       ///< n x L x D float32
  torch::Tensor labels;  ///< n x L int64, the centre of each position
};

inline Clustered clustered_palettes(std::int64_t n, std::int64_t L, std::int64_t D, std::int64_t C,
                                    std::uint64_t seed, double noise = 0.1) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto centres = at::normal(0.0, 1.0, {L, C, D}, gen);
  auto labels = at::randint(0, C, {n, L}, gen);
  auto x = torch::empty({n, L, D});
  for (std::int64_t j = 0; j < L; ++j) {
    x.select(1, j).copy_(centres[j].index_select(0, labels.select(1, j)));
  }
  x += at::normal(0.0, noise, {n, L, D}, gen);
  return {x.to(torch::kFloat32).contiguous(), labels};
}

inline std::filesystem::path temp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "lamia_tests_quantize";
  std::filesystem::create_directories(dir);
  return dir / name;
}

inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace lamia::test
