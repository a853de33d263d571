// c10d's ProcessGroupGloo.hpp declares the class only under USE_C10D_GLOO (torch's own build
// defines it); defined here rather than on the command line, so that this file keeps the flags of
// the shared <torch/torch.h> PCH.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <lamia/core/errors.hpp>
#include <lamia/distributed/process_group.hpp>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <limits>

namespace lamia {
namespace {

std::int64_t env_integer(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) throw ValueError(fmt::format("ProcessGroupOptions::from_environment: {} is not set", name));
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (*end != '\0') {
    throw ValueError(fmt::format("ProcessGroupOptions::from_environment: {} must be an integer, got '{}'", name, v));
  }
  return x;
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr == "::1" || addr.rfind("127.", 0) == 0;
}

// The tensors of one collective call: same dtype and device, at most bucket_bytes together (or one
// larger tensor), in the caller's order within each (dtype, device).
std::vector<std::vector<torch::Tensor>> buckets(const std::vector<torch::Tensor>& tensors, std::int64_t bucket_bytes) {
  std::vector<std::vector<torch::Tensor>> out;
  std::vector<std::int64_t> bytes;
  std::vector<std::size_t> open;  // out[open[k]] is the bucket still filling for a (dtype, device)
  for (const auto& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    const std::int64_t b = t.numel() * std::int64_t(t.element_size());
    std::size_t k = 0;
    for (; k < open.size(); ++k) {
      const auto& first = out[open[k]].front();
      if (first.scalar_type() == t.scalar_type() && first.device() == t.device()) break;
    }
    if (k == open.size() || bytes[open[k]] + b > bucket_bytes) {
      out.emplace_back();
      bytes.push_back(0);
      if (k == open.size()) open.push_back(out.size() - 1);
      else open[k] = out.size() - 1;
    }
    out[open[k]].push_back(t);
    bytes[open[k]] += b;
  }
  return out;
}

}  // namespace

ProcessGroupOptions ProcessGroupOptions::from_environment() {
  ProcessGroupOptions o;
  const char* addr = std::getenv("MASTER_ADDR");
  if (!addr || !*addr) throw ValueError("ProcessGroupOptions::from_environment: MASTER_ADDR is not set");
  o.master_addr(addr);
  o.master_port(env_integer("MASTER_PORT"));
  o.rank(env_integer("RANK"));
  o.world_size(env_integer("WORLD_SIZE"));
  // torchrun's static rendezvous: its agent on node 0 already listens at MASTER_ADDR:MASTER_PORT (a
  // rank 0 that listened there too would fail with "Address already in use"); torch.distributed's
  // env:// rendezvous then connects every rank to that store under this prefix.
  const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  if (agent && std::string(agent) == "True") {
    const char* restart = std::getenv("TORCHELASTIC_RESTART_COUNT");
    o.agent_store_prefix(fmt::format("/worker/attempt_{}", restart && *restart ? restart : "0"));
  }
  o.check();
  return o;
}

void ProcessGroupOptions::check() const {
  auto bad = [](const char* name, const char* want, const std::string& got) {
    throw ValueError(fmt::format("ProcessGroupOptions: {} must be {}, got {}", name, want, got));
  };
  if (world_size_ < 1) bad("world_size", ">= 1", std::to_string(world_size_));
  if (rank_ < 0 || rank_ >= world_size_) bad("rank", "in [0, world_size)", std::to_string(rank_));
  if (master_addr_.empty()) bad("master_addr", "an address", "''");
  if (master_port_ < 1 || master_port_ > 65535) bad("master_port", "in [1, 65535]", std::to_string(master_port_));
  if (!(timeout_seconds_ > 0)) bad("timeout_seconds", "> 0", fmt::format("{}", timeout_seconds_));
  if (threads_ < 1) bad("threads", ">= 1", std::to_string(threads_));
  if (bucket_bytes_ < 1) bad("bucket_bytes", ">= 1", std::to_string(bucket_bytes_));
}

struct GlooProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;

  // One collective per bucket: flattened into one tensor (a lone contiguous tensor as it is),
  // run, and copied back.
  template <class Collective>
  void each_bucket(const std::vector<torch::Tensor>& tensors, std::int64_t bucket_bytes, Collective&& run) {
    torch::NoGradGuard no_grad;
    for (auto& bucket : buckets(tensors, bucket_bytes)) {
      if (bucket.size() == 1 && bucket.front().is_contiguous()) {
        std::vector<at::Tensor> one{bucket.front().view({-1})};
        run(one);
        continue;
      }
      std::vector<torch::Tensor> flat;
      for (const auto& t : bucket) flat.push_back(t.reshape({-1}));
      std::vector<at::Tensor> joined{torch::cat(flat)};
      run(joined);
      std::int64_t offset = 0;
      for (auto& t : bucket) {
        const auto n = t.numel();
        t.copy_(joined.front().narrow(0, offset, n).view(t.sizes()));
        offset += n;
      }
    }
  }
};

GlooProcessGroup::GlooProcessGroup(const ProcessGroupOptions& options) : options_(options), impl_(new Impl) {
  options_.check();
  const auto timeout = std::chrono::milliseconds(std::int64_t(options_.timeout_seconds() * 1000.0));
  c10d::TCPStoreOptions so;
  so.port = std::uint16_t(options_.master_port());
  so.isServer = options_.rank() == 0 && options_.agent_store_prefix().empty();
  so.numWorkers = std::size_t(options_.world_size());
  so.waitWorkers = true;
  so.timeout = timeout;
  try {
    impl_->store = c10::make_intrusive<c10d::TCPStore>(options_.master_addr(), so);
    if (!options_.agent_store_prefix().empty()) {
      impl_->store = c10::make_intrusive<c10d::PrefixStore>(options_.agent_store_prefix(), impl_->store);
    }
    auto go = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (!options_.bind_addr().empty()) {
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(options_.bind_addr()));
    } else if (ifname && *ifname) {
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (is_loopback(options_.master_addr())) {
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      go->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    go->threads = int(options_.threads());
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, int(options_.rank()),
                                                               int(options_.world_size()), go);
  } catch (const c10::Error& e) {
    throw IOError(fmt::format("GlooProcessGroup: rank {} of {} could not join the group at {}:{}: {}",
                              options_.rank(), options_.world_size(), options_.master_addr(), options_.master_port(),
                              e.what_without_backtrace()));
  }
}

GlooProcessGroup::~GlooProcessGroup() = default;

std::int64_t GlooProcessGroup::rank() const { return options_.rank(); }
std::int64_t GlooProcessGroup::world_size() const { return options_.world_size(); }

void GlooProcessGroup::broadcast(const std::vector<torch::Tensor>& tensors) {
  if (options_.world_size() == 1) return;
  impl_->each_bucket(tensors, options_.bucket_bytes(), [&](std::vector<at::Tensor>& t) {
    c10d::BroadcastOptions o;
    o.rootRank = 0;
    impl_->group->broadcast(t, o)->wait();
  });
}

void GlooProcessGroup::all_reduce_sum(const std::vector<torch::Tensor>& tensors) {
  if (options_.world_size() == 1) return;
  impl_->each_bucket(tensors, options_.bucket_bytes(),
                     [&](std::vector<at::Tensor>& t) { impl_->group->allreduce(t)->wait(); });
}

void GlooProcessGroup::all_reduce_mean(const std::vector<torch::Tensor>& tensors) {
  for (const auto& t : tensors) {
    if (t.defined() && !t.is_floating_point()) {
      throw ValueError(fmt::format("GlooProcessGroup::all_reduce_mean: floating-point tensors only, got {}",
                                   c10::toString(t.scalar_type())));
    }
  }
  if (options_.world_size() == 1) return;
  const double n = double(options_.world_size());
  impl_->each_bucket(tensors, options_.bucket_bytes(), [&](std::vector<at::Tensor>& t) {
    impl_->group->allreduce(t)->wait();  // Gloo has no AVG: the sum, then / world_size
    t.front().div_(n);
  });
}

std::vector<torch::Tensor> GlooProcessGroup::gather(const torch::Tensor& tensor) {
  if (!tensor.defined() || !tensor.device().is_cpu())
    throw ValueError("GlooProcessGroup::gather: a defined CPU tensor is expected");
  std::vector<at::Tensor> input{tensor.contiguous()};
  if (options_.world_size() == 1) return {input.front().clone()};
  // Gloo wants the output list on the root only (an empty one elsewhere).
  std::vector<std::vector<at::Tensor>> outputs;
  if (options_.rank() == 0) {
    outputs.emplace_back();
    for (std::int64_t r = 0; r < options_.world_size(); ++r) outputs.front().push_back(torch::empty_like(input.front()));
  }
  impl_->group->gather(outputs, input, c10d::GatherOptions{})->wait();
  return outputs.empty() ? std::vector<torch::Tensor>{} : outputs.front();
}

std::vector<torch::Tensor> GlooProcessGroup::all_gather(const torch::Tensor& tensor) {
  if (!tensor.defined()) throw ValueError("GlooProcessGroup::all_gather: the tensor is undefined");
  std::vector<at::Tensor> input{tensor.to(torch::kCPU).contiguous()};
  if (options_.world_size() == 1) return {input.front().clone()};
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (std::int64_t r = 0; r < options_.world_size(); ++r) outputs.front().push_back(torch::empty_like(input.front()));
  impl_->group->allgather(outputs, input, c10d::AllgatherOptions{})->wait();
  return outputs.front();
}

void GlooProcessGroup::barrier() {
  if (options_.world_size() == 1) return;
  impl_->group->barrier()->wait();
}

}  // namespace lamia
