// Palette diagnostics on constructed palettes whose answers are known: a rotated copy, an
// independent position, known offsets and a label one position encodes. Python compares the
// ridge fits with sklearn's Ridge / RidgeClassifier on the same split.
#include <lamia/core/errors.hpp>
#include <lamia/palette/palette_file.hpp>
#include <lamia/quantize/palette_diagnostics.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <limits>
#include <set>

using Catch::Matchers::Contains;

namespace {

struct Constructed {
  torch::Tensor palettes;  // [n, 3, D]: 0 = z + offset, 1 = rotation of z, 2 = independent noise
  torch::Tensor labels;    // [n, 2]: sign of z's first coordinate, a random label
  torch::Tensor offset;    // [D], position 0's mean
};

Constructed constructed(std::int64_t n, std::int64_t D) {
  torch::manual_seed(11);
  auto z = torch::randn({n, D}, torch::kFloat64);
  auto rotation = std::get<0>(at::linalg_qr(torch::randn({D, D}, torch::kFloat64)));
  auto offset = torch::full({D}, 3.0, torch::kFloat64);
  auto p = torch::stack({z + offset, z.mm(rotation), torch::randn({n, D}, torch::kFloat64)}, 1);
  auto labels = torch::stack({(z.select(1, 0) > 0).to(torch::kInt64), torch::randint(0, 4, {n}, torch::kInt64)}, 1);
  return {p.to(torch::kFloat32), labels, offset};
}

double cell(const nlohmann::json& m, int i, int j) { return m[i][j].get<double>(); }

}  // namespace

TEST_CASE("diagnose_palettes: rotation, independence, offsets and a probe", "[diagnostics][palettes]") {
  auto c = constructed(1000, 8);
  auto d = lamia::diagnose_palettes(c.palettes, c.labels, {}, {"sign", "random"});
  CHECK(d["num_items"] == 1000);
  CHECK(d["dim"] == 8);
  // Position 1 is a rotation of position 0 (minus the offset): each predicts the other.
  const auto& r2 = d["cross_position_r2"];
  CHECK(cell(r2, 0, 1) > 0.999);
  CHECK(cell(r2, 1, 0) > 0.999);
  CHECK(cell(r2, 0, 0) > 0.999);
  // Position 2 is independent noise: R^2 ~0 (slightly negative out of sample).
  CHECK(std::abs(cell(r2, 0, 2)) < 0.03);
  CHECK(std::abs(cell(r2, 2, 1)) < 0.03);
  // Norm shares against a direct computation: position 0's mean holds 9 D of 9 D + D.
  auto p = c.palettes.to(torch::kFloat64);
  for (int j = 0; j < 3; ++j) {
    auto x = p.select(1, j);
    const double total = x.pow(2).sum(1).mean().item<double>();
    const double off = x.mean(0).pow(2).sum().item<double>();
    const auto& pos = d["positions"][j];
    CHECK(pos["mean_squared_norm"].get<double>() == Approx(total).epsilon(1e-10));
    CHECK(pos["offset_share"].get<double>() == Approx(off / total).epsilon(1e-9));
    CHECK(pos["offset_share"].get<double>() + pos["residual_share"].get<double>() == Approx(1.0).epsilon(1e-10));
  }
  CHECK(d["positions"][0]["offset_share"].get<double>() == Approx(0.9).margin(0.01));
  CHECK(d["positions"][1]["offset_share"].get<double>() < 0.01);
  // Cosines: raw ones see the offset (position 0 against 1 ~0 because of it), centred ones do not.
  auto pc = p - p.mean(0, true);
  auto cos01 = torch::cosine_similarity(pc.select(1, 0), pc.select(1, 1), 1, 0).mean().item<double>();
  CHECK(cell(d["centred_cosine_between_positions"], 0, 1) == Approx(cos01).margin(1e-9));
  auto raw = torch::nn::functional::normalize(p, torch::nn::functional::NormalizeFuncOptions().dim(2));
  auto sim = torch::bmm(raw, raw.transpose(1, 2)).mean(0);
  const double intra = (sim[0][1] + sim[0][2] + sim[1][2]).item<double>() / 3;
  CHECK(d["intra_cosine"].get<double>() == Approx(intra).margin(1e-9));
  CHECK(cell(d["cosine_between_positions"], 1, 1) == Approx(1.0));
  // The probe: the sign of z is linear in positions 0 and 1, unknowable from position 2.
  const auto& probe = d["linear_probe"];
  CHECK(cell(probe["accuracy"], 0, 0) > 0.95);
  CHECK(cell(probe["accuracy"], 1, 0) > 0.95);
  CHECK(cell(probe["accuracy"], 2, 0) < 0.65);
  CHECK(probe["chance_accuracy"][0].get<double>() < 0.6);
  CHECK(cell(probe["accuracy"], 0, 1) < 0.4);  // a random 4-way label: chance ~0.25
  CHECK(probe["train_classes"][1] == 4);
  CHECK(d["probe_split"]["test_items"] == 200);
  CHECK(d["label_names"][0] == "sign");
}

TEST_CASE("probe_split: seeded, disjoint, capped", "[diagnostics][palettes]") {
  lamia::PaletteDiagnosticsOptions o;
  auto s = lamia::probe_split(100, o);
  CHECK(s.test.size(0) == 20);
  CHECK(s.train.size(0) == 80);
  std::set<std::int64_t> all;
  for (auto t : {s.train, s.test}) {
    for (std::int64_t i = 0; i < t.size(0); ++i) all.insert(t[i].item<std::int64_t>());
  }
  CHECK(all.size() == 100);
  CHECK(torch::equal(lamia::probe_split(100, o).test, s.test));
  o.seed = 1;
  CHECK(!torch::equal(lamia::probe_split(100, o).test, s.test));
  o.max_probe_items = 50;
  o.test_fraction = 0.1;
  auto capped = lamia::probe_split(100, o);
  CHECK(capped.test.size(0) == 5);
  CHECK(capped.train.size(0) == 45);
  CHECK(lamia::probe_split(3, {}).train.size(0) == 2);
  REQUIRE_THROWS_WITH(lamia::probe_split(2, {}), Contains("at least 3 items, got 2"));
}

TEST_CASE("diagnose_palettes: bad input names the argument", "[diagnostics][palettes]") {
  auto p = torch::randn({10, 2, 4});
  REQUIRE_THROWS_WITH(lamia::diagnose_palettes(p.select(1, 0)), Contains("palettes must be [n, L, D]"));
  REQUIRE_THROWS_WITH(lamia::diagnose_palettes(p, torch::zeros({9, 1}, torch::kInt64)),
                      Contains("one row per item (10), got 9"));
  REQUIRE_THROWS_WITH(lamia::diagnose_palettes(p, torch::zeros({10, 2}, torch::kInt64), {}, {"a"}),
                      Contains("one name per label column (2), got 1"));
  auto bad = p.clone();
  bad[7][1][2] = std::nan("");
  REQUIRE_THROWS_WITH(lamia::diagnose_palettes(bad), Contains("item 7 has a non-finite value"));
  lamia::PaletteDiagnosticsOptions o;
  o.ridge_alpha = 0;
  REQUIRE_THROWS_AS(lamia::diagnose_palettes(p, {}, o), lamia::ValueError);
  // Without labels: no probe, the rest is there.
  auto d = lamia::diagnose_palettes(p);
  CHECK(!d.contains("linear_probe"));
  CHECK(d["cross_position_r2"].size() == 2);
}

TEST_CASE("diagnose_palettes: a palette file streamed gives the tensor's JSON", "[diagnostics][palettes][source]") {
  // 2,500 items: three chunks of 1,024 for the passes, the probe's 2,000 items read one at a time.
  auto c = constructed(2500, 8);
  const auto path = std::filesystem::temp_directory_path() / "lamia_tests_quantize_diag_stream.bin";
  std::vector<std::string> ids;
  for (int i = 0; i < 2500; ++i) ids.push_back("i" + std::to_string(i));
  lamia::save_palettes(path, ids, c.palettes);
  lamia::PaletteFileReader reader(path);
  const auto whole = lamia::diagnose_palettes(c.palettes, c.labels, {}, {"sign", "random"});
  const auto streamed = lamia::diagnose_palettes(lamia::PaletteSource::from_reader(reader, 300), c.labels, {},
                                                 {"sign", "random"});
  CHECK(streamed == whole);  // bit for bit: the same chunks in the same order
  auto bad = c.palettes.clone();
  bad[1700][2][5] = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_WITH(lamia::diagnose_palettes(lamia::PaletteSource::from_tensor(bad)),
                      Contains("item 1700 has a non-finite value"));
  std::filesystem::remove(path);
}
