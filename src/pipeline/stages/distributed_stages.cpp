// run_pipeline_on_group: the pipeline on several processes (include/lamia/pipeline/distributed.hpp).
// Rank 0 runs run_pipeline; the other ranks wait for a message from rank 0 (a broadcast of one
// int64: the index of the stage that starts, or kCallDone) and run that stage's run() on a context
// of their own, whose writes the stages skip (writes_run_folder()). The training loop's own
// collectives keep the ranks in step inside a training; a rank that dies closes its connections,
// and the collectives of the others then fail at once instead of waiting for the timeout.
#include "../context.hpp"
#include "distributed_stages.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/distributed/environment.hpp>
#include <lamia/nn/threads.hpp>
#include <lamia/pipeline/distributed.hpp>
#include <lamia/pipeline/stage.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <ostream>

namespace lamia {

#ifndef LAMIA_WITH_DISTRIBUTED_COMPONENT
// Without the distributed component torchrun's WORLD_SIZE > 1 is refused here; with it,
// src/distributed/environment.cpp defines this function (src/CMakeLists.txt links the two).
std::shared_ptr<GradientSync> join_environment_process_group(double) {
  const auto world_size = environment_world_size();
  if (world_size == 1) return nullptr;
  throw ValueError(fmt::format(
      "WORLD_SIZE is {} (torchrun), but this lamia was built without data-parallel training (the distributed "
      "component: LAMIA_WITH_C10D was OFF or found no c10d Gloo at configure time, docs/distributed.md); run one "
      "process, or rebuild where LibTorch's c10d and gloo's headers are found",
      world_size));
}
#endif

namespace detail {
namespace stage_group {

std::shared_ptr<GradientSync>& current() {
  static std::shared_ptr<GradientSync> group;
  return group;
}

constexpr std::int64_t kCallDone = -1;

// An exception's message without c10's backtrace.
std::string message_of(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

void send(GradientSync& group, std::int64_t message) {
  auto t = torch::full({1}, message, torch::kInt64);
  group.broadcast({t});
}

std::int64_t receive(GradientSync& group) {
  auto t = torch::zeros({1}, torch::kInt64);
  group.broadcast({t});
  return t.item<std::int64_t>();
}

// Returns on every rank once all have called it.
void barrier(GradientSync& group) {
  auto t = torch::zeros({1}, torch::kFloat64);
  group.all_reduce_mean({t});
}

// fnv1a-64 of the call's arguments: every rank must run the same command on the same folder.
std::int64_t call_hash(const PipelineConfig& config, const std::filesystem::path& out_dir,
                       const PipelineRunOptions& options) {
  nlohmann::json j;
  to_json(j, config);
  j.erase("progress");  // --quiet on one rank only changes nothing
  const nlohmann::json call = {{"config", j},         {"out_dir", out_dir.string()}, {"only", options.only},
                               {"until", options.until}, {"stages", options.stages}};
  std::uint64_t h = 1469598103934665603ull;
  for (const unsigned char c : call.dump()) h = (h ^ c) * 1099511628211ull;
  return std::int64_t(h);
}

// The ranks agree on the call, or all of them throw.
void check_same_call(GradientSync& group, std::int64_t hash) {
  auto rank0 = torch::full({1}, hash, torch::kInt64);
  group.broadcast({rank0});
  auto differs = torch::full({1}, rank0.item<std::int64_t>() == hash ? 0.0 : 1.0, torch::kFloat64);
  group.all_reduce_mean({differs});
  if (differs.item<double>() > 0) {
    throw ValueError(fmt::format(
        "data-parallel run: rank {} of {}: the ranks were started with different configurations or options "
        "(every rank must run the same command on the same DIR with the same config.json and --set)",
        group.rank(), group.world_size()));
  }
}

struct GroupScope {
  explicit GroupScope(std::shared_ptr<GradientSync> group) { current() = std::move(group); }
  ~GroupScope() { current() = nullptr; }
  GroupScope(const GroupScope&) = delete;
  GroupScope& operator=(const GroupScope&) = delete;
};

// A rank other than 0: runs the stages rank 0 starts until rank 0 says the call is done.
void follow_rank0(const PipelineConfig& config, const std::filesystem::path& out_dir, std::ostream& log,
                  GradientSync& group) {
  PipelineConfig quiet = config;  // rank 0 reports; the others only compute
  quiet.progress = false;
  set_torch_threads(config.threads);
  PipelineContext ctx(quiet, out_dir, log);
  const auto stages = pipeline_stages();
  while (true) {
    std::int64_t message = 0;
    try {
      message = receive(group);
    } catch (const std::exception& e) {  // Gloo's own exceptions, or c10::Error
      throw IOError(fmt::format("data-parallel run: rank {} of {}: rank 0 left before the end of the call (its own "
                                "output says why): {}",
                                group.rank(), group.world_size(), message_of(e)));
    }
    if (message == kCallDone) break;
    if (message < 0 || message >= std::int64_t(stages.size()))
      throw IOError(fmt::format("data-parallel run: rank {}: unexpected message {} from rank 0", group.rank(), message));
    stages[std::size_t(message)]->run(ctx);
  }
  barrier(group);
}

}  // namespace stage_group

const std::shared_ptr<GradientSync>& stage_training_group() { return stage_group::current(); }

bool writes_run_folder() {
  const auto& group = stage_group::current();
  return !group || group->rank() == 0;
}

void begin_distributed_stage(const std::string& stage) {
  const auto& group = stage_group::current();
  if (!group || group->rank() != 0) return;
  const auto stages = pipeline_stages();
  const auto it = std::find_if(stages.begin(), stages.end(), [&](const auto& s) { return s->name() == stage; });
  if (it == stages.end()) throw ValueError(fmt::format("begin_distributed_stage: unknown stage '{}'", stage));
  stage_group::send(*group, std::int64_t(it - stages.begin()));
}

std::vector<std::string> gather_bytes_on_rank0(GradientSync& group, const std::string& bytes) {
  const auto sizes = group.gather(torch::full({1}, std::int64_t(bytes.size()), torch::kInt64));
  auto longest = torch::zeros({1}, torch::kInt64);  // every rank runs the rounds of the longest
  for (const auto& size : sizes) longest = torch::maximum(longest, size);
  group.broadcast({longest});
  std::vector<std::string> out(sizes.size());
  const auto size = std::int64_t(bytes.size()), end = longest.item<std::int64_t>();
  const auto chunk_bytes = std::min(kGatherChunkBytes, end);  // a small part travels at its own size
  for (std::int64_t at = 0; at < end; at += chunk_bytes) {
    auto chunk = torch::zeros({chunk_bytes}, torch::kUInt8);
    if (at < size) std::memcpy(chunk.data_ptr(), bytes.data() + at, std::size_t(std::min(chunk_bytes, size - at)));
    const auto got = group.gather(chunk);
    for (std::size_t r = 0; r < got.size(); ++r) {
      const auto n = std::clamp<std::int64_t>(sizes[r].item<std::int64_t>() - at, 0, chunk_bytes);
      out[r].append(static_cast<const char*>(got[r].data_ptr()), std::size_t(n));
    }
  }
  return out;
}

}  // namespace detail

PipelineResult run_pipeline_on_group(const PipelineConfig& config, const std::filesystem::path& out_dir,
                                     std::ostream& log, const PipelineRunOptions& options,
                                     const std::shared_ptr<GradientSync>& group) {
  if (!group || group->world_size() == 1) return run_pipeline(config, out_dir, log, options);
  const auto rank = group->rank(), world_size = group->world_size();
  if (options.shard || options.merge_shards) {
    throw ValueError(fmt::format("--shard and --merge run as separate processes, one per part, not under torchrun "
                                 "(WORLD_SIZE {}): start `lamia export-palettes DIR --shard i/n` (or evaluate) once "
                                 "per part, then --merge (docs/distributed.md)",
                                 world_size));
  }
  detail::stage_group::check_same_call(*group, detail::stage_group::call_hash(config, out_dir, options));
  detail::stage_group::GroupScope scope(group);
  try {
    if (rank != 0) {
      detail::stage_group::follow_rank0(config, out_dir, log, *group);
      return {};
    }
    if (config.progress) {
      log << fmt::format("[lamia run] data-parallel over {} processes: this is rank 0, which writes {}; the palette "
                         "encoder and the recommenders train over all of them, the export and the evaluation split "
                         "over them",
                         world_size, out_dir.string())
          << std::endl;
    }
    auto result = run_pipeline(config, out_dir, log, options);
    detail::stage_group::send(*group, detail::stage_group::kCallDone);
    detail::stage_group::barrier(*group);
    return result;
  } catch (const Error&) {  // lamia's own errors pass as they are
    throw;
  } catch (const std::exception& e) {  // e.g. a collective failed (Gloo's exceptions, c10::Error): name the rank
    throw IOError(fmt::format("data-parallel run: rank {} of {} (when another rank stopped, its own output says why): "
                              "{}",
                              rank, world_size, detail::stage_group::message_of(e)));
  }
}

}  // namespace lamia
