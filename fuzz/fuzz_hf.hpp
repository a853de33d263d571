#pragma once
// The Hugging Face model folder of fuzz_checkpoint and fuzz_hf_folder (include/lamia/nn/checkpoint.hpp):
// the weights as one model.safetensors, or as model.safetensors.index.json and its shards.
#include "fuzz_torch.hpp"

#include <lamia/nn/checkpoint.hpp>

#include <fmt/format.h>

namespace lamia::fuzz {

/// Writes the weights' parts into dir: a first part that starts with '{' is
/// model.safetensors.index.json and the parts after it are its shards, named as save_pretrained
/// names them (model-00001-of-0000N.safetensors); otherwise the one part is model.safetensors.
inline void write_weights(const fs::path& dir, const std::vector<std::string_view>& parts) {
  if (parts.empty()) return;
  if (parts[0].empty() || parts[0][0] != '{') {
    write_file(dir / "model.safetensors", parts[0]);
    return;
  }
  write_file(dir / "model.safetensors.index.json", parts[0]);
  for (std::size_t i = 1; i < parts.size(); ++i)
    write_file(dir / fmt::format("model-{:05d}-of-{:05d}.safetensors", i, parts.size() - 1), parts[i]);
}

/// The files save_pretrained wrote into dir, as the parts write_weights reads (config.json first
/// when with_config).
inline std::vector<std::string> saved_parts(const fs::path& dir, bool with_config) {
  std::vector<std::string> parts;
  if (with_config) parts.push_back(file_bytes(dir / "config.json"));
  if (fs::exists(dir / "model.safetensors")) {
    parts.push_back(file_bytes(dir / "model.safetensors"));
    return parts;
  }
  parts.push_back(file_bytes(dir / "model.safetensors.index.json"));
  std::vector<fs::path> shards;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("model-", 0) == 0) shards.push_back(e.path());
  std::sort(shards.begin(), shards.end());
  for (const auto& s : shards) parts.push_back(file_bytes(s));
  return parts;
}

/// The small decoders of the seeds (and of fuzz_checkpoint): tied and untied head.
inline DecoderOptions tiny_decoder(bool tied) {
  return DecoderOptions(8, 4, 1, 2).ffn_dim(8).max_position_embeddings(4).dropout(0).tie_word_embeddings(tied);
}

/// Seeds: folders save_pretrained wrote (one file and shards; float32 and float16; with project_in/out
/// and post-LN).
inline void write_hf_seeds(SeedWriter& seeds, const fs::path& scratch_dir, bool with_config) {
  torch::manual_seed(0);
  int k = 0;
  auto add = [&](const DecoderOptions& o, std::int64_t max_shard_bytes, torch::Dtype dtype) {
    const auto dir = scratch_dir / std::to_string(k++);
    Decoder d(o);
    save_pretrained(*d, dir, max_shard_bytes, dtype);
    seeds.add(saved_parts(dir, with_config));
  };
  add(tiny_decoder(true), 0, torch::kFloat);
  add(tiny_decoder(false), 0, torch::kHalf);
  add(tiny_decoder(true), 200, torch::kHalf);  // sharded: index + shards
  if (with_config) {
    add(tiny_decoder(true).word_embed_proj_dim(2).do_layer_norm_before(false), 0, torch::kBFloat16);
    add(DecoderOptions(6, 2, 2, 1).max_position_embeddings(2).dropout(0), 0, torch::kHalf);
  }
}

/// LLVMFuzzerInitialize of both targets: the seeds of write_hf_seeds.
inline void init_hf_target(bool with_config) {
  init_torch_target([=](SeedWriter& seeds, const fs::path& dir) { write_hf_seeds(seeds, dir, with_config); });
}

}  // namespace lamia::fuzz
