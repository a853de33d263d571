#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/nn/checkpoint.hpp>
#include <lamia/nn/safetensors.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <set>

namespace lamia {
namespace fs = std::filesystem;

namespace {
const std::string kPrefix = "model.decoder.";

bool is_lora_name(const std::string& name) {
  auto ends = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends(".lora_A") || ends(".lora_B");
}

std::string shape_of(const torch::Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ", ")); }

std::string dtype_json_name(torch::Dtype d) {
  switch (d) {
    case torch::kFloat: return "float32";
    case torch::kHalf: return "float16";
    case torch::kBFloat16: return "bfloat16";
    case torch::kDouble: return "float64";
    default: throw ValueError(fmt::format("save_pretrained: dtype {} is not a floating type", c10::toString(d)));
  }
}
}  // namespace

std::map<std::string, torch::Tensor> hf_state_dict(const DecoderImpl& decoder) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : decoder.named_parameters()) {
    const auto& name = p.key();
    if (is_lora_name(name)) continue;
    if (name.rfind("lm_head.", 0) == 0)
      out[name] = p.value();
    else
      out[kPrefix + name] = p.value();
  }
  return out;
}

void load_hf_state_dict(DecoderImpl& decoder, const std::map<std::string, torch::Tensor>& tensors,
                        const std::string& source) {
  auto expected = hf_state_dict(decoder);
  // Normalise names: "decoder.x" (older OPT checkpoints) -> "model.decoder.x".
  std::map<std::string, const torch::Tensor*> found;
  for (const auto& [name, t] : tensors) {
    std::string key = name;
    if (key.rfind("decoder.", 0) == 0) key = "model." + key;
    if (!found.emplace(key, &t).second)
      throw ValueError(fmt::format("{}: tensor {} appears twice (with and without the \"model.\" prefix)", source, key));
  }
  for (const auto& [name, t] : found) {
    if (expected.count(name)) continue;
    if (name == "lm_head.weight" && decoder.options().tie_word_embeddings()) {
      const auto& emb = expected.at(kPrefix + "embed_tokens.weight");
      if (t->sizes() != emb.sizes())
        throw ValueError(fmt::format("{}: tensor lm_head.weight: expected shape {} (tied to the embedding), found {}",
                                     source, shape_of(emb), shape_of(*t)));
      continue;
    }
    throw ValueError(fmt::format("{}: unexpected tensor {} with shape {} (not a parameter of this OPT model)", source,
                                 name, shape_of(*t)));
  }
  for (const auto& [name, param] : expected) {
    auto it = found.find(name);
    if (it == found.end())
      throw ValueError(fmt::format("{}: missing tensor {} (expected shape {})", source, name, shape_of(param)));
    const auto& t = *it->second;
    if (t.sizes() != param.sizes())
      throw ValueError(fmt::format("{}: tensor {}: expected shape {}, found {}", source, name, shape_of(param), shape_of(t)));
    if (!t.is_floating_point())
      throw ValueError(fmt::format("{}: tensor {}: expected a floating dtype, found {}", source, name,
                                   c10::toString(t.scalar_type())));
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, param] : expected) param.copy_(*found.at(name));
}

namespace {
bool has_weights(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "model.safetensors", ec) || fs::exists(dir / "model.safetensors.index.json", ec);
}
[[noreturn]] void throw_no_weights(const fs::path& dir) {
  throw IOError(fmt::format("{}: neither model.safetensors nor model.safetensors.index.json found", dir.string()));
}
}  // namespace

void load_pretrained_weights(DecoderImpl& decoder, const fs::path& dir) {
  const auto single = dir / "model.safetensors";
  const auto index = dir / "model.safetensors.index.json";
  std::error_code ec;
  if (fs::exists(single, ec)) {
    load_hf_state_dict(decoder, load_safetensors(single), single.string());
    return;
  }
  if (!fs::exists(index, ec)) throw_no_weights(dir);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(index));
  } catch (const nlohmann::json::exception& e) {
    throw ParseError({index.string(), 0, ""}, std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw ParseError({index.string(), 0, "weight_map"}, "missing or not an object");
  std::map<std::string, std::set<std::string>> by_shard;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string())
      throw ParseError({index.string(), 0, "weight_map." + it.key()}, "expected a shard file name");
    const auto shard = it.value().get<std::string>();
    if (shard.find('/') != std::string::npos || shard.find('\\') != std::string::npos || shard == "..")
      throw ParseError({index.string(), 0, "weight_map." + it.key()}, "shard name must be a plain file name, got " + shard);
    by_shard[shard].insert(it.key());
  }
  std::map<std::string, torch::Tensor> all;
  for (const auto& [shard, names] : by_shard) {
    const auto file = dir / shard;
    auto tensors = load_safetensors(file);
    for (const auto& name : names)
      if (!tensors.count(name))
        throw ValueError(fmt::format("{}: tensor {} is listed in {} but not in the shard", file.string(), name,
                                     index.filename().string()));
    for (auto& [name, t] : tensors) {
      if (!names.count(name))
        throw ValueError(fmt::format("{}: tensor {} is not listed for this shard in {}", file.string(), name,
                                     index.filename().string()));
      all.emplace(name, std::move(t));
    }
  }
  load_hf_state_dict(decoder, all, index.string());
}

namespace {
// Refuses, before the decoder is allocated, a config.json whose model the folder's weights cannot
// hold: the decoder needs at least vocab_size x E + (max_positions + 2) x D + layers x (4 D^2 + 2 D F)
// values, each at least 2 bytes on disk (float16), and every weight file is a *.safetensors file of
// the folder. So a config claiming 10^8 tokens or layers never allocates more than the files hold.
void check_weights_can_hold(const DecoderOptions& o, const fs::path& dir) {
  const uint64_t V = o.vocab_size(), D = o.hidden_size(), E = o.resolved_embed_dim(), F = o.resolved_ffn_dim(),
                 P = o.max_position_embeddings() + 2, L = o.num_layers();  // each < 2^31 (validate)
  uint64_t per_layer = 0, layers = 0, values = 0;
  const bool overflow = __builtin_add_overflow(4 * D * D, 2 * D * F, &per_layer) ||
                        __builtin_mul_overflow(L, per_layer, &layers) ||
                        __builtin_add_overflow(layers, V * E + P * D, &values) || values > (uint64_t(1) << 62);
  if (!has_weights(dir)) throw_no_weights(dir);
  uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::error_code size_ec;
    if (e.path().extension() == ".safetensors" && e.is_regular_file(size_ec)) bytes += e.file_size(size_ec);
  }
  if (overflow || values * 2 > bytes) {
    throw ValueError(fmt::format(
        "{}: config.json describes a model of at least {} parameters (vocab_size {}, hidden_size {}, num_hidden_layers "
        "{}, ffn_dim {}), more than the folder's {} bytes of safetensors weights hold",
        dir.string(), overflow ? std::string("2^62") : std::to_string(values), V, D, L, F, bytes));
  }
}
}  // namespace

Decoder load_pretrained(const fs::path& dir, torch::Dtype dtype, const torch::Device& device) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IOError(dir.string() + ": not a directory (expected a Hugging Face model folder)");
  auto options = DecoderOptions::from_hf_config(dir / "config.json");
  check_weights_can_hold(options, dir);
  Decoder d(options);
  d->to(device, dtype);
  load_pretrained_weights(*d, dir);
  return d;
}

void save_pretrained(const DecoderImpl& decoder, const fs::path& dir, int64_t max_shard_bytes,
                     c10::optional<torch::Dtype> dtype) {
  const auto dt = dtype.value_or(decoder.embed_tokens_->weight.scalar_type());
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IOError("cannot create directory " + dir.string() + ": " + ec.message());
  decoder.options().to_hf_config(dir / "config.json", dtype_json_name(dt));
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& [name, t] : hf_state_dict(decoder)) tensors[name] = t.detach().to(torch::kCPU, dt);
  std::map<std::string, std::string> meta{{"format", "pt"}};
  // Remove weights of an earlier save in the other layout, so that the folder stays unambiguous.
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    const bool shard_file = name.rfind("model-", 0) == 0 && e.path().extension() == ".safetensors";
    if (name == "model.safetensors.index.json" || name == "model.safetensors" || shard_file) stale.push_back(e.path());
  }
  for (const auto& p : stale) fs::remove(p, ec);
  if (max_shard_bytes <= 0) {
    save_safetensors(dir / "model.safetensors", tensors, meta);
    return;
  }
  std::vector<std::map<std::string, torch::Tensor>> shards(1);
  int64_t in_current = 0, total = 0;
  for (const auto& [name, t] : tensors) {
    const int64_t bytes = t.numel() * int64_t(t.element_size());
    total += bytes;
    if (!shards.back().empty() && in_current + bytes > max_shard_bytes) {
      shards.emplace_back();
      in_current = 0;
    }
    shards.back()[name] = t;
    in_current += bytes;
  }
  nlohmann::ordered_json index;
  index["metadata"] = {{"total_size", total}};
  index["weight_map"] = nlohmann::ordered_json::object();
  const size_t n = shards.size();
  for (size_t i = 0; i < n; ++i) {
    const auto file = fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, n);
    save_safetensors(dir / file, shards[i], meta);
    for (const auto& [name, t] : shards[i]) index["weight_map"][name] = file;
  }
  write_text_atomically(dir / "model.safetensors.index.json", index.dump(2) + "\n");
}

}  // namespace lamia
