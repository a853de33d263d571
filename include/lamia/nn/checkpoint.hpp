#pragma once
// Hugging Face model folders for the decoder: config.json plus model.safetensors, or shards
// listed in model.safetensors.index.json. Parameter names are HF's OPTForCausalLM names
// ("model.decoder.embed_tokens.weight", ..., "lm_head.weight" when untied; the tied head is not
// stored, as HF does). Weights on disk may be fp32, fp16 or bf16; they are converted to the module's
// dtype and device.
#include <lamia/nn/decoder.hpp>

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace lamia {

/// The decoder's base parameters under HF names (LoRA adapters are not included; merge first to
/// export them). Tensors are the live parameters (not copies).
std::map<std::string, torch::Tensor> hf_state_dict(const DecoderImpl& decoder);

/// Copies HF-named tensors into the decoder. Names may carry the "model.decoder." prefix or just
/// "decoder." (older checkpoints). A missing tensor, an unexpected one or a shape mismatch is a
/// ValueError naming the tensor, the expected and the found shape; `source` prefixes the message.
/// A "lm_head.weight" in a tied model is accepted and ignored (it equals the embedding).
void load_hf_state_dict(DecoderImpl& decoder, const std::map<std::string, torch::Tensor>& tensors,
                        const std::string& source = "state dict");

/// Reads dir/config.json and the weights (model.safetensors or model.safetensors.index.json and its
/// shards) into a new decoder in `dtype` (default float32) on `device` (default CPU).
Decoder load_pretrained(const std::filesystem::path& dir, torch::Dtype dtype = torch::kFloat,
                        const torch::Device& device = torch::kCPU);

/// Loads the weights of dir into an existing decoder whose options must match dir/config.json.
void load_pretrained_weights(DecoderImpl& decoder, const std::filesystem::path& dir);

/// Writes dir/config.json and the weights in `dtype` (undefined optional: the module's). With
/// max_shard_bytes > 0 the weights are split into model-0000i-of-0000n.safetensors files of at
/// most that many bytes (a larger single tensor gets a shard of its own) plus
/// model.safetensors.index.json; otherwise one model.safetensors.
void save_pretrained(const DecoderImpl& decoder, const std::filesystem::path& dir, int64_t max_shard_bytes = 0,
                     c10::optional<torch::Dtype> dtype = c10::nullopt);

}  // namespace lamia
