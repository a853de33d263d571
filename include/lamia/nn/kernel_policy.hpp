#pragma once
// How the decoder computes, never what: every setting gives the same function up to float rounding.
// Process-wide, as torch.backends' flags are, and read at each forward, so a benchmark or a notebook
// can compare settings in one process. The defaults suit the CPU (where they were measured); see
// docs/nn.md, "Kernel policy", for what each choice costs on a GPU.

namespace lamia {

struct KernelPolicy {
  /// With a token_mask / output_mask, run the per-token work on the real tokens only, packed into
  /// [N, D] rows. That skips the padding's GEMMs, at the price of index copies per layer and device
  /// synchronisations (nonzero) per forward. false runs the padded layout and zeroes the outputs
  /// outside the masks afterwards: the same results, no synchronisation for the packing.
  bool pack_padding = true;
  /// Masked attention through at::scaled_dot_product_attention (LibTorch >= 2.1; one fused kernel
  /// on CUDA where the backend supports the mask) instead of lamia's matmul, softmax, matmul. Used
  /// only where no attention dropout is drawn (dropout keeps lamia's RNG stream), and a row with no
  /// allowed key still gives zeros.
  bool fused_attention = false;
};

/// The policy now in force.
KernelPolicy kernel_policy();

/// Sets the policy for every later forward of every decoder in the process. Throws ValueError when
/// fused_attention is asked for and this build's LibTorch has no scaled_dot_product_attention.
void set_kernel_policy(const KernelPolicy& policy);

/// Whether this build's LibTorch has scaled_dot_product_attention with an explicit scale (>= 2.1).
bool fused_attention_available();

}  // namespace lamia
