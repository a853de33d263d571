// The palette encoder on CUDA ([cuda]): loss parts, palettes and every gradient equal the CPU's on
// both paths; PaletteTrainer with device = CUDA trains, evaluates and encodes; its checkpoints
// resume on the same device exactly (dropout included) and move between CPU and CUDA.
// Without CUDA each case is a passing no-op that warns "CUDA not available".
#include "cuda_guard.hpp"
#include "palette/palette_fixture.hpp"

#include <lamia/palette.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <unistd.h>  // getpid

using namespace lamia;
using lamia::testing::on_test_device;
using lamia::testing::relative_error;
namespace fs = std::filesystem;

namespace {

const torch::Device kCuda = lamia::testing::cuda_test_device();

fs::path cuda_temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lamia_palette_cuda_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

PaletteSetup cuda_setup(std::int64_t items, double dropout, std::uint64_t seed = 0) {
  return make_palette_setup_from_scratch(testing::tiny_catalog(items), PaletteEncoderOptions(4, 2),
                                         testing::tiny_model(32, dropout, seed));
}

std::map<std::string, torch::Tensor> grads_of(PaletteEncoderImpl& enc) {
  std::map<std::string, torch::Tensor> g;
  for (const auto& p : enc.named_parameters())
    g[p.key()] = p.value().grad().defined() ? p.value().grad().cpu().clone() : torch::zeros_like(p.value()).cpu();
  return g;
}

// Largest per-tensor ||a - b|| / ||a|| over the parameters of two encoders (any devices).
double max_parameter_error(PaletteEncoderImpl& a, PaletteEncoderImpl& b, std::string* worst = nullptr) {
  auto pb = b.named_parameters();
  double m = 0;
  for (const auto& p : a.named_parameters()) {
    auto x = p.value().detach().cpu().to(torch::kDouble), y = pb[p.key()].detach().cpu().to(torch::kDouble);
    const double e = (x - y).norm().item<double>() / std::max(1e-12, x.norm().item<double>());
    if (e > m) {
      m = e;
      if (worst) *worst = p.key();
    }
  }
  return m;
}

}  // namespace

TEST_CASE("cuda: palette encoder loss parts, palettes and gradients on CUDA equal the CPU's", "[palette][cuda]") {
  LAMIA_REQUIRE_CUDA();
  const auto path = GENERATE(PalettePath::kFast, PalettePath::kReference);
  const bool batch_on_device = GENERATE(true, false);  // false: the encoder moves a CPU batch itself
  INFO("path " << palette_path_name(path) << ", batch on the device " << batch_on_device);
  auto s = cuda_setup(6, 0.0);
  s.encoder->eval();
  auto gpu = std::dynamic_pointer_cast<PaletteEncoderImpl>(s.encoder->clone(kCuda));
  REQUIRE(gpu);
  REQUIRE(gpu->decoder->device().type() == kCuda.type());
  const auto& t = s.encoder->tokens();
  std::vector<SampleLayout> samples;
  for (auto [item, task] : std::vector<std::pair<ItemIndex, std::int64_t>>{{0, 0}, {1, 3}, {0, 2}, {2, 1}, {3, 0}, {5, 3}})
    samples.push_back(make_sample(s.catalog, item, task, t));
  auto batch = collate_samples(samples, t, /*with_full=*/true);
  auto a = s.encoder->forward(batch, path);
  auto b = gpu->forward(batch_on_device ? batch.to(kCuda) : batch, path);
  REQUIRE(on_test_device(b.loss));
  REQUIRE(on_test_device(b.palettes));
  CHECK(relative_error(b.palettes, a.palettes) < 1e-4);
  CHECK(b.loss.item<double>() == Approx(a.loss.item<double>()).epsilon(1e-4));
  CHECK(b.generation_loss.item<double>() == Approx(a.generation_loss.item<double>()).epsilon(1e-4));
  CHECK(b.intra_loss.item<double>() == Approx(a.intra_loss.item<double>()).epsilon(1e-3).margin(1e-6));
  CHECK(b.inter_loss.item<double>() == Approx(a.inter_loss.item<double>()).epsilon(1e-3).margin(1e-6));
  CHECK(b.label_tokens == a.label_tokens);
  CHECK(std::abs(b.correct_tokens - a.correct_tokens) <= 1);  // an argmax near-tie may flip
  a.loss.backward();
  b.loss.backward();
  auto ga = grads_of(*s.encoder), gb = grads_of(*gpu);
  REQUIRE(ga.size() == gb.size());
  double scale = 0;
  for (const auto& [name, g] : ga) scale = std::max(scale, g.abs().max().item<double>());
  for (const auto& [name, g] : ga) {
    INFO("gradient of " << name << ": relative error " << relative_error(gb.at(name), g));
    if (lamia::testing::is_key_bias(name)) {
      CHECK(gb.at(name).abs().max().item<double>() < 1e-4 * scale);
    } else {
      CHECK(relative_error(gb.at(name), g) < 1e-3);
    }
  }
  // encode() and a clone back to the CPU agree as well.
  torch::NoGradGuard ng;
  auto items = collate_items(s.catalog, {0, 1, 2, 3, 4, 5}, t);
  auto pa = s.encoder->encode(items);
  CHECK(relative_error(gpu->encode(items.to(kCuda)), pa) < 1e-4);
  auto back = std::dynamic_pointer_cast<PaletteEncoderImpl>(gpu->clone(torch::Device(torch::kCPU)));
  CHECK(back->decoder->device() == torch::Device(torch::kCPU));
  CHECK(relative_error(back->encode(items), pa) < 1e-4);
}

TEST_CASE("cuda: PaletteTrainer on CUDA lowers the loss, evaluates and encodes", "[palette][cuda][trainer]") {
  LAMIA_REQUIRE_CUDA();
  auto s = cuda_setup(48, 0.0);
  std::ostringstream log;
  PaletteTrainer trainer(s.encoder, s.catalog,
                         PaletteTrainerOptions().batch_size(16).validation_fraction(0.1).device(kCuda).loop(
                             PaletteTrainerOptions::default_loop()
                                 .learning_rate(3e-3)
                                 .epochs(100)
                                 .max_steps(60)
                                 .eval_every(30)
                                 .patience(0)
                                 .restore_best(true)
                                 .log_every(15)
                                 .log(&log)));
  REQUIRE(s.encoder->decoder->device().type() == kCuda.type());
  auto before = trainer.evaluate(trainer.validation_items());
  auto result = trainer.train();
  INFO(log.str());
  CHECK(result.steps == 60);
  REQUIRE(result.train_history.size() == 4);
  const auto& first = result.train_history.front();
  const auto& last = result.train_history.back();
  CHECK(last.generation_loss < 0.8 * first.generation_loss);
  CHECK(last.loss < first.loss);
  CHECK(last.tokens_per_second > 0);
  CHECK(result.validation_history.size() == 2);
  auto after = trainer.evaluate(trainer.validation_items());
  CHECK(after.loss < before.loss);
  // restore_best put the best weights back: still on the device.
  for (const auto& p : s.encoder->parameters()) CHECK(on_test_device(p));
  std::vector<ItemIndex> all(s.catalog.size());
  std::iota(all.begin(), all.end(), 0);
  auto palettes = encode_items(*s.encoder, s.catalog, all, 16);
  CHECK(palettes.device() == torch::Device(torch::kCPU));
  CHECK(palettes.sizes() == torch::IntArrayRef({48, 4, 32}));
  CHECK(torch::isfinite(palettes).all().item<bool>());
  auto acc = reconstruction_accuracy(*s.encoder, s.catalog, trainer.validation_items(), 16);
  CHECK(acc.label_tokens > 0);
  CHECK(acc.token_accuracy > 0);
}

TEST_CASE("cuda: an interrupted CUDA training resumes on CUDA exactly, dropout included", "[palette][cuda][trainer]") {
  LAMIA_REQUIRE_CUDA();
  const double dropout = GENERATE(0.0, 0.1);
  INFO("dropout " << dropout);
  auto dir = cuda_temp_dir("resume");
  auto a = cuda_setup(24, dropout, 1);
  auto full = PaletteTrainer(a.encoder, a.catalog, testing::resume_test_options(14, "", kCuda)).train();
  CHECK(full.steps == 14);
  const auto ckpt = (dir / "ckpt.pt").string();
  auto b = cuda_setup(24, dropout, 1);
  auto part = PaletteTrainer(b.encoder, b.catalog, testing::resume_test_options(6, ckpt, kCuda)).train();
  CHECK(part.steps == 6);
  REQUIRE(fs::exists(ckpt));
  // Leave the CUDA generator elsewhere: the resumed run must take its state from the checkpoint.
  torch::manual_seed(12345);
  auto c = cuda_setup(24, dropout, 99);  // other initial weights: everything must come from the checkpoint
  auto rest = PaletteTrainer(c.encoder, c.catalog, testing::resume_test_options(14, ckpt, kCuda)).train();
  CHECK(rest.resumed);
  CHECK(rest.resumed_at_step == 6);
  CHECK(rest.steps == 14);
  CHECK(rest.best_step == full.best_step);
  CHECK(rest.best_validation_loss == Approx(full.best_validation_loss).epsilon(1e-4));
  std::string worst;
  const double err = max_parameter_error(*a.encoder, *c.encoder, &worst);
  INFO("largest relative parameter difference " << err << " (" << worst << ")");
  CHECK(err < 1e-4);
  fs::remove_all(dir);
}

TEST_CASE("cuda: palette checkpoints move between CPU and CUDA", "[palette][cuda][trainer]") {
  LAMIA_REQUIRE_CUDA();
  const bool from_cuda = GENERATE(true, false);  // where the first part ran; the rest runs on the other device
  const torch::Device first_device = from_cuda ? kCuda : torch::Device(torch::kCPU);
  const torch::Device second_device = from_cuda ? torch::Device(torch::kCPU) : kCuda;
  INFO("first part on " << first_device << ", resumed on " << second_device);
  auto dir = cuda_temp_dir("move");
  const auto ckpt = (dir / "ckpt.pt").string();
  auto a = cuda_setup(24, 0.0, 1);
  auto full = PaletteTrainer(a.encoder, a.catalog, testing::resume_test_options(12, "", first_device)).train();
  auto b = cuda_setup(24, 0.0, 1);
  PaletteTrainer(b.encoder, b.catalog, testing::resume_test_options(6, ckpt, first_device)).train();
  auto c = cuda_setup(24, 0.0, 99);
  auto rest = PaletteTrainer(c.encoder, c.catalog, testing::resume_test_options(12, ckpt, second_device)).train();
  CHECK(rest.resumed);
  CHECK(rest.resumed_at_step == 6);
  CHECK(rest.steps == 12);
  CHECK(c.encoder->decoder->device() == second_device);
  for (const auto& p : c.encoder->parameters()) CHECK(p.device() == second_device);
  // Another device computes in another order: Adam turns rounding noise into small steps, so the
  // comparison is loose; a resume that lost the weights or the optimizer state is far off.
  CHECK(rest.best_validation_loss == Approx(full.best_validation_loss).epsilon(0.02));
  std::string worst;
  const double err = max_parameter_error(*a.encoder, *c.encoder, &worst);
  INFO("largest relative parameter difference " << err << " (" << worst << ")");
  CHECK(err < 0.05);
  fs::remove_all(dir);
}
