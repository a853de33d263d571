#include <lamia/core/errors.hpp>
#include <lamia/nn/kernel_policy.hpp>

#include <torch/version.h>

#include <atomic>

namespace lamia {

namespace {
// Two flags rather than one mutex-guarded struct: a forward reads them on every layer.
std::atomic<bool> g_pack_padding{KernelPolicy{}.pack_padding};
std::atomic<bool> g_fused_attention{KernelPolicy{}.fused_attention};
}  // namespace

bool fused_attention_available() {
#if defined(TORCH_VERSION_MAJOR) && (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1))
  return true;
#else
  return false;
#endif
}

KernelPolicy kernel_policy() {
  KernelPolicy p;
  p.pack_padding = g_pack_padding.load(std::memory_order_relaxed);
  p.fused_attention = g_fused_attention.load(std::memory_order_relaxed);
  return p;
}

void set_kernel_policy(const KernelPolicy& policy) {
  if (policy.fused_attention && !fused_attention_available()) {
    throw ValueError("set_kernel_policy: fused_attention needs LibTorch >= 2.1 (scaled_dot_product_attention with a "
                     "scale); this build has LibTorch " TORCH_VERSION);
  }
  g_pack_padding.store(policy.pack_padding, std::memory_order_relaxed);
  g_fused_attention.store(policy.fused_attention, std::memory_order_relaxed);
}

}  // namespace lamia
