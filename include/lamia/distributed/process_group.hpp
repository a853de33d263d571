#pragma once
// Data-parallel training from C++ on c10d's Gloo process group (the one torch.distributed's "gloo"
// backend uses), without Python. Built where LibTorch ships c10d's Gloo headers and gloo's own
// (LAMIA_WITH_C10D; Debian: libtorch-dev and libgloo-dev); docs/distributed.md.
//
//   // torchrun-style environment: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
//   auto group = std::make_shared<lamia::GlooProcessGroup>(lamia::ProcessGroupOptions::from_environment());
//   lamia::train_recommender(model, table, train, valid, options.loop.gradient_sync(group) ...);
//   // or by hand: broadcast_parameters(module, *group); ... loss.backward();
//   //             average_gradients(params, *group); optimizer.step();
//
// Rank 0 hosts the rendezvous (c10d::TCPStore) at master_addr:master_port; every rank connects to
// it, and Gloo then connects every pair of ranks over TCP.
#include <lamia/nn/gradient_sync.hpp>

#include <torch/arg.h>

#include <cstdint>
#include <memory>
#include <string>

namespace lamia {

struct ProcessGroupOptions {
  /// This process's rank in [0, world_size).
  TORCH_ARG(std::int64_t, rank) = 0;
  /// Processes in the group.
  TORCH_ARG(std::int64_t, world_size) = 1;
  /// The address of rank 0's rendezvous store (rank 0 listens there).
  TORCH_ARG(std::string, master_addr) = "127.0.0.1";
  TORCH_ARG(std::int64_t, master_port) = 29500;
  /// Not empty: the store at master_addr:master_port is already served by someone else (torchrun's
  /// agent under its static rendezvous, `--master_addr`/`--master_port` without `--rdzv_backend`),
  /// every rank, rank 0 too, connects to it as a client and uses its keys under this prefix.
  TORCH_ARG(std::string, agent_store_prefix) = "";
  /// The address this rank's Gloo device binds to for the pairwise connections (empty: the
  /// GLOO_SOCKET_IFNAME interface when that variable is set, else 127.0.0.1 when master_addr is a
  /// loopback address, else the address this machine's hostname resolves to).
  TORCH_ARG(std::string, bind_addr) = "";
  /// How long a rendezvous or a collective may wait for the other ranks, in seconds.
  TORCH_ARG(double, timeout_seconds) = 300.0;
  /// Gloo's worker threads.
  TORCH_ARG(std::int64_t, threads) = 1;
  /// Tensors are flattened into buckets of at most this many bytes, one collective per bucket
  /// (a tensor larger than that is a bucket of its own).
  TORCH_ARG(std::int64_t, bucket_bytes) = 25 << 20;

 public:
  /// MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE (torchrun's variables; ValueError naming one that
  /// is missing or not a number), over these defaults for the other fields. Where torchrun says that
  /// its agent serves the store (TORCHELASTIC_USE_AGENT_STORE=True, its static rendezvous), the
  /// agent_store_prefix torch.distributed uses there: "/worker/attempt_<TORCHELASTIC_RESTART_COUNT>".
  static ProcessGroupOptions from_environment();
  /// ValueError naming the first option out of range.
  void check() const;
};

/// A c10d::ProcessGroupGloo with its TCPStore, as lamia's GradientSync.
class GlooProcessGroup : public GradientSync {
 public:
  /// Blocks until every rank has joined (or throws after timeout_seconds).
  explicit GlooProcessGroup(const ProcessGroupOptions& options);
  ~GlooProcessGroup() override;
  GlooProcessGroup(const GlooProcessGroup&) = delete;
  GlooProcessGroup& operator=(const GlooProcessGroup&) = delete;

  std::int64_t rank() const override;
  std::int64_t world_size() const override;
  void broadcast(const std::vector<torch::Tensor>& tensors) override;
  void all_reduce_mean(const std::vector<torch::Tensor>& tensors) override;
  std::vector<torch::Tensor> gather(const torch::Tensor& tensor) override;
  std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor) override;
  /// Sums every tensor over the ranks (in place).
  void all_reduce_sum(const std::vector<torch::Tensor>& tensors);
  /// Waits until every rank has reached it.
  void barrier();
  const ProcessGroupOptions& options() const noexcept { return options_; }

 private:
  struct Impl;
  ProcessGroupOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lamia
