#include <lamia/core/errors.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/nn/lora.hpp>
#include <lamia/nn/safetensors.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

namespace lamia {

// ---------------------------------------------------------------- LoraLinear

LoraLinearImpl::LoraLinearImpl(LoraLinearOptions options_) : options(std::move(options_)) { reset(); }

void LoraLinearImpl::reset() {
  TORCH_CHECK_VALUE(options.in_features() > 0 && options.out_features() > 0,
                    "LoraLinear: in_features and out_features must be > 0, got ", options.in_features(), " and ",
                    options.out_features());
  weight = register_parameter("weight", torch::empty({options.out_features(), options.in_features()}).normal_(0.0, 0.02));
  if (options.bias())
    bias = register_parameter("bias", torch::zeros({options.out_features()}));
  else
    bias = torch::Tensor();
  lora_A = torch::Tensor();
  lora_B = torch::Tensor();
  if (lora_rank_ > 0) {
    const auto r = lora_rank_;
    lora_rank_ = 0;
    const bool was_merged = merged_;
    merged_ = false;
    add_adapter(r, lora_alpha_, lora_dropout_);
    merged_ = was_merged;  // the cloned weight already holds the merged update
  }
}

void LoraLinearImpl::add_adapter(int64_t rank, double alpha, double dropout) {
  if (lora_rank_ > 0) throw ValueError("LoraLinear::add_adapter: this layer already has an adapter");
  if (rank < 1) throw ValueError(fmt::format("LoraLinear::add_adapter: rank must be >= 1, got {}", rank));
  if (!(dropout >= 0 && dropout < 1))
    throw ValueError(fmt::format("LoraLinear::add_adapter: dropout must be in [0, 1), got {}", dropout));
  torch::NoGradGuard no_grad;
  auto opts = weight.options().requires_grad(false);
  const double bound = 1.0 / std::sqrt(double(options.in_features()));  // kaiming_uniform_(a=sqrt(5)), as PEFT
  lora_A = register_parameter("lora_A", torch::empty({rank, options.in_features()}, opts).uniform_(-bound, bound));
  lora_B = register_parameter("lora_B", torch::zeros({options.out_features(), rank}, opts));
  lora_rank_ = rank;
  lora_alpha_ = alpha;
  lora_dropout_ = dropout;
  merged_ = false;
}

torch::Tensor LoraLinearImpl::forward(const torch::Tensor& x) {
  auto y = torch::linear(x, weight, bias);
  auto term = adapter_term(x);
  return term.defined() ? y + term : y;
}

torch::Tensor LoraLinearImpl::adapter_term(const torch::Tensor& x) {
  if (lora_rank_ == 0 || merged_) return {};
  auto xa = lora_dropout_ > 0 ? torch::dropout(x, lora_dropout_, is_training()) : x;
  return torch::linear(torch::linear(xa, lora_A), lora_B) * scaling();
}

void LoraLinearImpl::merge() {
  if (lora_rank_ == 0 || merged_) return;
  torch::NoGradGuard no_grad;
  weight.add_(torch::matmul(lora_B, lora_A), scaling());
  merged_ = true;
}

void LoraLinearImpl::unmerge() {
  if (lora_rank_ == 0 || !merged_) return;
  torch::NoGradGuard no_grad;
  weight.sub_(torch::matmul(lora_B, lora_A), scaling());
  merged_ = false;
}

// ---------------------------------------------------------------- decoder-level

namespace {
const std::vector<std::string>& known_targets() {
  static const std::vector<std::string> all{"q", "k", "v", "out", "fc1", "fc2"};
  return all;
}

std::string canonical_target(const std::string& name) {
  for (const auto& t : known_targets()) {
    if (name == t) return t;
    if (t != "fc1" && t != "fc2" && name == t + "_proj") return t;
  }
  throw ValueError(fmt::format("LoRA target_modules: unknown module \"{}\" (expected q, k, v, out, fc1, fc2)", name));
}

// (name relative to the decoder, layer) for every targeted linear layer.
std::vector<std::pair<std::string, LoraLinear>> targeted(const DecoderImpl& d, const std::vector<std::string>& targets) {
  std::set<std::string> want;
  for (const auto& t : targets) want.insert(canonical_target(t));
  std::vector<std::pair<std::string, LoraLinear>> out;
  for (size_t i = 0; i < d.layer_modules.size(); ++i) {
    const auto& layer = d.layer_modules[i];
    const std::string pre = "layers." + std::to_string(i) + ".";
    const std::pair<const char*, LoraLinear> all[] = {
        {"q", layer->self_attn->q_proj}, {"k", layer->self_attn->k_proj}, {"v", layer->self_attn->v_proj},
        {"out", layer->self_attn->out_proj}, {"fc1", layer->fc1}, {"fc2", layer->fc2}};
    for (const auto& [t, m] : all) {
      if (!want.count(t)) continue;
      const std::string rel = (std::string(t) == "fc1" || std::string(t) == "fc2") ? std::string(t)
                                                                                       : "self_attn." + std::string(t) + "_proj";
      out.emplace_back(pre + rel, m);
    }
  }
  return out;
}

std::vector<std::pair<std::string, LoraLinear>> adapted(const DecoderImpl& d) {
  if (d.lora.rank() <= 0) return {};
  return targeted(d, d.lora.target_modules());
}

const char* kPeftPrefix = "base_model.model.model.decoder.";
}  // namespace

void apply_lora(DecoderImpl& decoder, const LoraOptions& options) {
  if (decoder.lora.rank() > 0) throw ValueError("apply_lora: the decoder already has LoRA adapters");
  if (options.rank() < 1) throw ValueError(fmt::format("apply_lora: rank must be >= 1, got {}", options.rank()));
  if (options.target_modules().empty()) throw ValueError("apply_lora: target_modules is empty");
  auto layers = targeted(decoder, options.target_modules());  // validates names
  for (auto& p : decoder.parameters()) p.set_requires_grad(false);
  for (auto& [name, m] : layers) {
    m->add_adapter(options.rank(), options.alpha(), options.dropout());
    m->lora_A.set_requires_grad(true);
    m->lora_B.set_requires_grad(true);
  }
  LoraOptions stored = options;
  std::vector<std::string> canon;
  for (const auto& t : options.target_modules()) canon.push_back(canonical_target(t));
  stored.target_modules(canon);
  decoder.lora = stored;
}

bool has_lora(const DecoderImpl& decoder) { return decoder.lora.rank() > 0; }

LoraOptions lora_options(const DecoderImpl& decoder) {
  if (decoder.lora.rank() <= 0) throw ValueError("lora_options: the decoder has no LoRA adapters");
  return decoder.lora;
}

void merge_lora(DecoderImpl& decoder) {
  if (decoder.lora.rank() <= 0) throw ValueError("merge_lora: the decoder has no LoRA adapters");
  for (auto& [name, m] : adapted(decoder)) m->merge();
}

void unmerge_lora(DecoderImpl& decoder) {
  if (decoder.lora.rank() <= 0) throw ValueError("unmerge_lora: the decoder has no LoRA adapters");
  for (auto& [name, m] : adapted(decoder)) m->unmerge();
}

std::map<std::string, torch::Tensor> lora_state_dict(const DecoderImpl& decoder) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [name, m] : adapted(decoder)) {
    out[kPeftPrefix + name + ".lora_A.weight"] = m->lora_A;
    out[kPeftPrefix + name + ".lora_B.weight"] = m->lora_B;
  }
  return out;
}

void save_lora(const DecoderImpl& decoder, const std::filesystem::path& path) {
  if (decoder.lora.rank() <= 0) throw ValueError("save_lora: the decoder has no LoRA adapters");
  std::string targets;
  for (const auto& t : decoder.lora.target_modules()) targets += (targets.empty() ? "" : ",") + t;
  std::map<std::string, std::string> meta{{"format", "pt"},
                                          {"lora_rank", std::to_string(decoder.lora.rank())},
                                          {"lora_alpha", fmt::format("{}", decoder.lora.alpha())},
                                          {"lora_dropout", fmt::format("{}", decoder.lora.dropout())},
                                          {"target_modules", targets}};
  std::map<std::string, torch::Tensor> tensors;
  for (auto& [k, v] : lora_state_dict(decoder)) tensors[k] = v.detach();
  save_safetensors(path, tensors, meta);
}

void load_lora(DecoderImpl& decoder, const std::filesystem::path& path, const LoraOptions* fallback) {
  std::map<std::string, std::string> meta;
  auto tensors = load_safetensors(path, &meta);
  if (decoder.lora.rank() <= 0) {
    if (meta.count("lora_rank")) {
      LoraOptions o(0);
      try {
        o.rank(std::stoll(meta.at("lora_rank")));
        if (meta.count("lora_alpha")) o.alpha(std::stod(meta.at("lora_alpha")));
        if (meta.count("lora_dropout")) o.dropout(std::stod(meta.at("lora_dropout")));
      } catch (const std::exception&) {
        throw ValueError(path.string() + ": __metadata__ lora_rank/lora_alpha/lora_dropout are not numbers");
      }
      std::vector<std::string> targets;
      std::string s = meta.count("target_modules") ? meta.at("target_modules") : "";
      size_t start = 0;
      while (start <= s.size() && !s.empty()) {
        auto end = s.find(',', start);
        targets.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (end == std::string::npos) break;
        start = end + 1;
      }
      o.target_modules(targets);
      apply_lora(decoder, o);
    } else if (fallback) {
      apply_lora(decoder, *fallback);
    } else {
      throw ValueError(path.string() +
                       ": no lora_rank in __metadata__ and the decoder has no adapters; apply_lora first or pass options");
    }
  }
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (auto& [name, m] : adapted(decoder)) {
    if (m->merged()) throw ValueError("load_lora: unmerge the adapters before loading new ones");
    for (auto [suffix, param] : {std::pair<const char*, torch::Tensor>{".lora_A.weight", m->lora_A},
                                 std::pair<const char*, torch::Tensor>{".lora_B.weight", m->lora_B}}) {
      const std::string key = kPeftPrefix + name + suffix;
      auto it = tensors.find(key);
      if (it == tensors.end()) throw ValueError(fmt::format("{}: missing LoRA tensor {}", path.string(), key));
      if (it->second.sizes() != param.sizes())
        throw ValueError(fmt::format("{}: tensor {}: expected shape {}, found {}", path.string(), key,
                                     fmt::join(param.sizes(), "x"), fmt::join(it->second.sizes(), "x")));
      param.copy_(it->second);
      used.insert(key);
    }
  }
  for (auto& [k, v] : tensors)
    if (!used.count(k)) throw ValueError(fmt::format("{}: unexpected tensor {} (not an adapter of this decoder)", path.string(), k));
}

}  // namespace lamia
