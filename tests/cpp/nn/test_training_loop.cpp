// The shared TrainingLoop on a tiny regression task: records with named loss parts, progress lines
// at multiples of log_every, exact resume, named fingerprints, non-finite losses, what is final.
#include <catch2/catch.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/nn/training_loop.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>
#include <sstream>
#include <unistd.h>  // getpid

using namespace lamia;
namespace fs = std::filesystem;

namespace {

fs::path loop_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lamia_nn_loop_" + std::to_string(::getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

struct Net : torch::nn::Module {
  torch::nn::Linear fc{nullptr};
  explicit Net(std::uint64_t seed) {
    torch::manual_seed(seed);
    fc = register_module("fc", torch::nn::Linear(4, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc(torch::dropout(x, 0.2, is_training())); }
};

// y = x . w + noise; loss = mse + 0.1 * l1, reported as the parts (mse, l1).
class RegressionTask : public TrainingTask {
 public:
  RegressionTask(std::uint64_t init_seed, std::int64_t batch_size = 4) : net_(init_seed), batch_size_(batch_size) {
    auto g = torch::make_generator<at::CPUGeneratorImpl>(123);
    x_ = torch::randn({40, 4}, g);
    y_ = x_.matmul(torch::tensor({1.0f, -2.0f, 0.5f, 3.0f})).unsqueeze(1) + 0.1 * torch::randn({40, 1}, g);
    vx_ = torch::randn({12, 4}, g);
    vy_ = vx_.matmul(torch::tensor({1.0f, -2.0f, 0.5f, 3.0f})).unsqueeze(1);
  }
  torch::nn::Module& module() override { return net_; }
  std::int64_t num_batches(std::int64_t) override { return (x_.size(0) + batch_size_ - 1) / batch_size_; }
  std::vector<std::int64_t> rows(std::int64_t epoch, std::int64_t batch) const {
    std::vector<std::int64_t> idx(std::size_t(x_.size(0)));
    std::iota(idx.begin(), idx.end(), 0);
    std::mt19937_64 rng(17 + std::uint64_t(epoch));
    std::shuffle(idx.begin(), idx.end(), rng);
    const auto begin = std::size_t(batch * batch_size_);
    return {idx.begin() + begin, idx.begin() + std::min(idx.size(), begin + std::size_t(batch_size_))};
  }
  StepOutput train_step(std::int64_t epoch, std::int64_t batch) override {
    auto r = torch::tensor(rows(epoch, batch), torch::kInt64);
    auto pred = net_.forward(x_.index_select(0, r));
    if (poison) pred = pred * std::numeric_limits<float>::quiet_NaN();
    auto diff = pred - y_.index_select(0, r);
    auto mse = diff.pow(2).mean(), l1 = diff.abs().mean();
    StepOutput out;
    out.loss = mse + 0.1 * l1;
    out.tokens = r.numel();
    out.parts = {mse.item<double>(), l1.item<double>()};
    return out;
  }
  std::optional<ValidationRecord> validate() override {
    auto diff = net_.forward(vx_) - vy_;
    const double mse = diff.pow(2).mean().item<double>(), l1 = diff.abs().mean().item<double>();
    return ValidationRecord{0, mse + 0.1 * l1, 0.0, {mse, l1}};
  }
  std::vector<std::string> part_names() override { return {"mse", "l1"}; }
  std::string describe_batch(std::int64_t epoch, std::int64_t batch) override {
    return "rows " + std::to_string(rows(epoch, batch).front()) + "...";
  }
  std::vector<std::int64_t> fingerprint() override { return {batch_size_, x_.size(0)}; }
  std::vector<std::string> fingerprint_names() override { return {"batch_size", "examples"}; }

  Net net_;
  bool poison = false;

 private:
  std::int64_t batch_size_;
  torch::Tensor x_, y_, vx_, vy_;
};

TrainingLoopOptions loop_options() {
  static std::ostringstream sink;  // progress lines of the runs that log_every > 0 without their own stream
  return TrainingLoopOptions().learning_rate(0.05).epochs(4).eval_every(3).patience(0).seed(5).log_every(0).log(&sink);
}

bool same_weights(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.parameters(), pb = b.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    if (!torch::equal(pa[i], pb[i])) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("loop: records average the named parts, lines come at multiples of log_every", "[nn][training_loop]") {
  RegressionTask task(1);
  std::ostringstream log;
  auto r = TrainingLoop(task, loop_options().log_every(4).log(&log).name("toy")).run();
  CHECK(r.steps == 40);
  CHECK(r.stop_reason == "epochs done");
  REQUIRE(r.train_history.size() == 10);
  for (const auto& rec : r.train_history) {
    CHECK(rec.step % 4 == 0);
    REQUIRE(rec.parts.size() == 2);
    CHECK(rec.loss == Approx(rec.parts[0] + 0.1 * rec.parts[1]).epsilon(1e-5));
  }
  CHECK(r.train_history.back().loss < r.train_history.front().loss);
  REQUIRE(r.validation_history.size() == 13);
  CHECK(r.validation_history[0].step == 3);
  CHECK(r.validation_history[0].parts.size() == 2);
  const auto text = log.str();
  INFO(text);
  CHECK(text.find("toy step 4 (epoch 1, batch 4/10) | loss ") != std::string::npos);
  CHECK(text.find(" (mse ") != std::string::npos);
  CHECK(text.find("toy validation step 3 | loss ") != std::string::npos);
  CHECK(text.find("toy: epochs done after 40 steps") != std::string::npos);
}

TEST_CASE("loop: a resumed run equals an uninterrupted one; only early stopping is final", "[nn][training_loop]") {
  const auto dir = loop_dir("resume");
  const auto ckpt = (dir / "loop.ckpt").string();
  RegressionTask full_task(1);
  auto full = TrainingLoop(full_task, loop_options().log_every(2)).run();

  RegressionTask a(1);
  auto part = TrainingLoop(a, loop_options().max_steps(9).checkpoint_path(ckpt)).run();
  CHECK(part.stop_reason == "max_steps reached");
  RegressionTask b(2);  // other initial weights: all comes from the checkpoint
  auto rest = TrainingLoop(b, loop_options().checkpoint_path(ckpt).log_every(2)).run();
  CHECK(rest.resumed_at_step == 9);
  CHECK(rest.steps == 40);
  CHECK(same_weights(full_task.net_, b.net_));
  CHECK(rest.best_validation_loss == full.best_validation_loss);
  REQUIRE(rest.train_history.size() == 16);  // steps 10, 12, ..., 40 as in the full run
  for (std::size_t i = 0; i < 16; ++i) CHECK(rest.train_history[i].step == full.train_history[i + 4].step);
  for (std::size_t i = 1; i < 16; ++i) CHECK(rest.train_history[i].loss == full.train_history[i + 4].loss);

  // Ended at its epochs: more epochs continue exactly.
  RegressionTask longer(1);
  TrainingLoop(longer, loop_options().epochs(6)).run();
  auto more = TrainingLoop(b, loop_options().epochs(6).checkpoint_path(ckpt)).run();
  CHECK(more.resumed_at_epoch == 4);
  CHECK(more.epochs_completed == 6);
  CHECK(same_weights(longer.net_, b.net_));

  // Early stopping is final: a rerun trains nothing and reports the same reason.
  const auto ckpt2 = (dir / "stop.ckpt").string();
  RegressionTask c(1);
  auto stopped = TrainingLoop(c, loop_options().learning_rate(1e-30).epochs(50).eval_every(1).patience(2).checkpoint_path(ckpt2)).run();
  CHECK(stopped.stopped_early);
  CHECK(stopped.steps == 3);
  auto again = TrainingLoop(c, loop_options().learning_rate(1e-30).epochs(50).eval_every(1).patience(2).checkpoint_path(ckpt2)).run();
  CHECK(again.stopped_early);
  CHECK(again.steps == 3);
  CHECK(again.stop_reason == stopped.stop_reason);

  // Another setup is refused by name.
  RegressionTask other(1, 8);
  CHECK_THROWS_WITH(TrainingLoop(other, loop_options()).load_checkpoint(ckpt),
                    Catch::Contains("was written with batch_size = 4, this trainer has 8"));
  fs::remove_all(dir);
}

TEST_CASE("loop: a non-finite loss names the step, parts and batch, and keeps the checkpoint", "[nn][training_loop]") {
  const auto dir = loop_dir("nan");
  const auto ckpt = (dir / "loop.ckpt").string();
  RegressionTask task(1);
  TrainingLoop(task, loop_options().max_steps(2).checkpoint_path(ckpt)).run();
  task.poison = true;
  try {
    TrainingLoop(task, loop_options().max_steps(5).checkpoint_path(ckpt).name("toy")).run();
    FAIL("no error for a NaN loss");
  } catch (const ValueError& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("toy training stopped: non-finite loss nan (mse nan, l1 nan) at step 3 (epoch 1, batch 2)") &&
                        Catch::Contains("; rows ") &&
                        Catch::Contains("the last checkpoint '" + ckpt + "' (step 2) is kept"));
  }
  try {
    TrainingLoop(task, loop_options().max_steps(5).checkpoint_path(ckpt).resume(false)).run();
    FAIL("no error for a NaN loss");
  } catch (const ValueError& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("is kept (not overwritten)"));
  }
  fs::remove_all(dir);
}
