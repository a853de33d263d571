// The palette-loss gather of C++ data-parallel training timed apart (GradientSync::all_gather,
// docs/distributed.md "From C++ (c10d)"): the processes of a group (torchrun's variables: RANK,
// WORLD_SIZE, MASTER_ADDR, MASTER_PORT) train the palette encoder on their shards of the same global
// batches, with the intra/inter/decorrelation losses within each shard (shard_local_losses: no gather)
// and on the palettes of the whole batch gathered from every rank (the default), two runs each, and
// rank 0 prints ms per step of both, the gather's ms per step within the step (which includes the wait
// for the slower rank's forward), the gather alone (the same tensor after the ranks met) and the ratios. Run by
// bench/distributed_gather.py, which starts the processes:
//   bench_distributed_gather [--items N] [--steps N] [--batch N] [--hidden N] [--layers N]
#include "bench_util.hpp"

#include <lamia/data/synthetic.hpp>
#include <lamia/distributed/process_group.hpp>
#include <lamia/palette.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace lamia;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A GradientSync that forwards to the group and times its all_gather (the palettes) and
// all_reduce_mean (the gradients, the logged loss) calls.
class TimedSync : public GradientSync {
 public:
  explicit TimedSync(std::shared_ptr<GradientSync> inner) : inner_(std::move(inner)) {}
  std::int64_t rank() const override { return inner_->rank(); }
  std::int64_t world_size() const override { return inner_->world_size(); }
  void broadcast(const std::vector<torch::Tensor>& tensors) override { inner_->broadcast(tensors); }
  void all_reduce_mean(const std::vector<torch::Tensor>& tensors) override {
    const auto t0 = std::chrono::steady_clock::now();
    inner_->all_reduce_mean(tensors);
    reduce_seconds += seconds_since(t0);
  }
  std::vector<torch::Tensor> gather(const torch::Tensor& tensor) override { return inner_->gather(tensor); }
  std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor) override {
    const auto t0 = std::chrono::steady_clock::now();
    auto out = inner_->all_gather(tensor);
    gather_seconds += seconds_since(t0);
    ++gathers;
    largest = std::max(largest, tensor.numel());
    return out;
  }
  double gather_seconds = 0, reduce_seconds = 0;
  std::int64_t gathers = 0, largest = 0;  // the largest gathered tensor's numel

 private:
  std::shared_ptr<GradientSync> inner_;
};

struct Run {
  double step_ms = 0, gather_ms = 0, reduce_ms = 0;
  std::int64_t steps = 0, gathers = 0, largest = 0;
};

// The mean of runs' figures.
Run mean(const std::vector<Run>& runs) {
  Run m;
  for (const auto& r : runs) {
    m.step_ms += r.step_ms / double(runs.size());
    m.gather_ms += r.gather_ms / double(runs.size());
    m.reduce_ms += r.reduce_ms / double(runs.size());
    m.steps = r.steps;
    m.gathers += r.gathers;
    m.largest = std::max(m.largest, r.largest);
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t items = 400, steps = 10, batch = 64, hidden = 256, layers = 4;
  if (!bench::parse_int_flags(argc, argv,
                              {{"--items", &items}, {"--steps", &steps}, {"--batch", &batch}, {"--hidden", &hidden},
                               {"--layers", &layers}},
                              "bench_distributed_gather [--items N] [--steps N] [--batch N] [--hidden N] [--layers N]"))
    return 1;
  torch::set_num_threads(1);
  auto group = std::make_shared<GlooProcessGroup>(ProcessGroupOptions::from_environment());
  SyntheticOptions so;
  so.num_items = items;
  so.num_users = 0;
  const auto catalog = generate_synthetic(so).dataset.catalog;
  ScratchModelOptions mo;
  mo.dropout = 0.0;
  mo.hidden_size = hidden;
  mo.num_layers = layers;
  auto train = [&](bool local, std::int64_t n) {
    auto setup = make_palette_setup_from_scratch(catalog, PaletteEncoderOptions(4, 2), mo);
    auto sync = std::make_shared<TimedSync>(group);
    PaletteTrainer trainer(setup.encoder, setup.catalog,
                           PaletteTrainerOptions().batch_size(batch).validation_fraction(0).shard_local_losses(local).loop(
                               PaletteTrainerOptions::default_loop().log_every(0).max_steps(n).eval_every(0).gradient_sync(sync)));
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = trainer.train();
    const double total = seconds_since(t0);
    Run out;
    out.steps = r.steps;
    out.step_ms = 1e3 * total / double(r.steps);
    out.gather_ms = 1e3 * sync->gather_seconds / double(r.steps);
    out.reduce_ms = 1e3 * sync->reduce_seconds / double(r.steps);
    out.gathers = sync->gathers;
    out.largest = sync->largest;
    return out;
  };
  train(false, 2);  // warm-up: allocator, Gloo's connections
  // In the order within, global, global, within: a drift of the machine's load hits both alike.
  std::vector<Run> locals, globals;
  locals.push_back(train(true, steps));
  globals.push_back(train(false, steps));
  globals.push_back(train(false, steps));
  locals.push_back(train(true, steps));
  const auto local = mean(locals);
  const auto global = mean(globals);
  // The gather alone: the largest palette tensor of the steps, after the ranks met (a 1-number
  // all-reduce), so that no rank waits for another's forward.
  const int reps = 20;
  auto payload = torch::zeros({global.largest}, torch::kFloat64);
  double pure = 0;
  for (int k = 0; k < reps; ++k) {
    group->all_reduce_mean({torch::zeros({1})});
    const auto t0 = std::chrono::steady_clock::now();
    group->all_gather(payload);
    pure += seconds_since(t0);
  }
  const double pure_ms = 1e3 * pure / reps;
  if (group->rank() == 0) {
    fmt::print("C++ c10d: {} ranks, {} items, model {} layers d = {}, global batch {}, 2 runs of {} steps per mode "
               "(1 thread each)\n",
               group->world_size(), catalog.size(), layers, hidden, batch, global.steps);
    fmt::print("  within the shards (no gather):  {:8.1f} ms/step (gradient allreduce {:.2f} ms/step)\n", local.step_ms,
               local.reduce_ms);
    fmt::print("  global losses (gathered):       {:8.1f} ms/step (gradient allreduce {:.2f} ms/step), "
               "all_gather {:.2f} ms/step ({} calls; the wait for the other rank's forward included)\n",
               global.step_ms, global.reduce_ms, global.gather_ms, global.gathers);
    fmt::print("  the all_gather alone ({} float64 per rank, the ranks met first): {:.3f} ms\n", global.largest, pure_ms);
    fmt::print("  global / within: {:.3f}; all_gather in the step / step: {:.4f}; all_gather alone / step: {:.5f}\n",
               global.step_ms / local.step_ms, global.gather_ms / global.step_ms, pure_ms / global.step_ms);
  }
  return 0;
}
