// pylamia: the decoder LM (OPT), LoRA, safetensors and Hugging Face folders.
// Tensors cross without copies: parameters() returns the module's own parameter tensors, so a
// Python optimizer trains them, and forward() outputs carry autograd history.
#include "options.hpp"
#include "torch_args.hpp"
#include "registry.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/nn.hpp>

#include <pybind11/stl.h>
#include <torch/extension.h>
#include <torch/csrc/DynamicTypes.h>
#include <torch/python.h>

#include <optional>

namespace py = pybind11;

namespace {
using namespace lamia;

using lamia::python::to_device;
using lamia::python::to_dtype;

torch::Tensor opt(const std::optional<torch::Tensor>& t) { return t ? *t : torch::Tensor(); }

// DecoderOptions(vocab_size, hidden_size, num_layers, num_heads, **fields): the four required
// fields by position, every other field by keyword (its field list: unknown keywords raise TypeError).
DecoderOptions options_from_positional(int64_t vocab_size, int64_t hidden_size, int64_t num_layers, int64_t num_heads,
                                       const py::kwargs& kwargs, const std::string& owner) {
  DecoderOptions o(vocab_size, hidden_size, num_layers, num_heads);
  lamia::python::apply_kwargs(o, kwargs, owner);
  return o;
}

// LoraOptions from Python: a rank (int), a LoraOptions or a dict, then keywords.
LoraOptions lora_from_args(const py::object& options, const py::kwargs& kwargs) {
  if (py::isinstance<py::int_>(options)) {
    LoraOptions o(options.cast<int64_t>());
    lamia::python::apply_kwargs(o, kwargs, "apply_lora");
    return o;
  }
  return lamia::python::options_from_args<LoraOptions>(options, kwargs, "apply_lora");
}

std::map<std::string, torch::Tensor> own_state_dict(const DecoderImpl& d) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : d.named_parameters()) out[p.key()] = p.value();
  return out;
}

void load_own_state_dict(DecoderImpl& d, const std::map<std::string, torch::Tensor>& sd, bool strict,
                         const std::string& source) {
  auto params = d.named_parameters();
  torch::NoGradGuard ng;
  for (const auto& [name, t] : sd) {
    auto* p = params.find(name);
    if (!p) {
      if (strict) throw lamia::ValueError(source + ": unexpected tensor " + name);
      continue;
    }
    if (p->sizes() != t.sizes())
      throw lamia::ValueError(source + ": tensor " + name + ": expected shape " + c10::str(p->sizes()) + ", found " +
                       c10::str(t.sizes()));
    p->copy_(t);
  }
  if (strict)
    for (const auto& p : params)
      if (!sd.count(p.key())) throw lamia::ValueError(source + ": missing tensor " + p.key() + " (expected shape " +
                                               c10::str(p.value().sizes()) + ")");
}
}  // namespace

LAMIA_REGISTER_BINDINGS(kOrderNn, nn) {
  lamia::python::bind_options<DecoderOptions>(
      m, "DecoderOptions",
      "Architecture of an OPT decoder (see Decoder). DecoderOptions(vocab_size, hidden_size, num_layers, num_heads, "
      "**fields) or DecoderOptions(options=None, **fields).")
      .def(py::init([](int64_t V, int64_t D, int64_t L, int64_t H, const py::kwargs& kwargs) {
             return options_from_positional(V, D, L, H, kwargs, "DecoderOptions");
           }),
           py::arg("vocab_size"), py::arg("hidden_size"), py::arg("num_layers"), py::arg("num_heads"),
           "The four required fields by position, any other field by keyword.")
      .def_static("from_hf_config", [](const std::string& path) { return DecoderOptions::from_hf_config(path); },
                  py::arg("config_json"), "Reads a Hugging Face OPT config.json.")
      .def("to_hf_config_json", &DecoderOptions::to_hf_config_json, py::arg("torch_dtype") = "float32")
      .def("validate", &DecoderOptions::validate, "ValueError naming the first inconsistent field.");
  lamia::python::bind_options<LoraOptions>(m, "LoraOptions",
                                           "A LoRA adapter (PEFT-compatible): rank, alpha, dropout, target modules.");

  py::class_<KVCache>(m, "KVCache", "Keys and values of every layer for incremental decoding.")
      .def(py::init<>())
      .def_property_readonly("length", &KVCache::length)
      .def_property_readonly("batch_size", &KVCache::batch_size)
      .def_readwrite("keys", &KVCache::keys)
      .def_readwrite("values", &KVCache::values)
      .def("clear", &KVCache::clear)
      .def("reorder", &KVCache::reorder, py::arg("indices"),
           "Cache row i becomes old row indices[i] (beam search: the parent beam of each new beam).");

  py::class_<DecoderOutput>(m, "DecoderOutput")
      .def_readonly("last_hidden_state", &DecoderOutput::last_hidden_state)
      .def_readonly("logits", &DecoderOutput::logits)
      .def_readonly("hidden_states", &DecoderOutput::hidden_states);

  auto forward = [](DecoderImpl& d, const torch::Tensor& input_ids, std::optional<torch::Tensor> position_ids,
                    std::optional<torch::Tensor> attention_mask, std::optional<torch::Tensor> inputs_embeds,
                    std::optional<torch::Tensor> embeds_mask, bool output_hidden_states, bool compute_logits,
                    KVCache* cache, std::optional<torch::Tensor> token_mask,
                    std::optional<torch::Tensor> output_mask) {
    DecoderInput in;
    in.input_ids = input_ids;
    in.position_ids = opt(position_ids);
    in.attention_mask = opt(attention_mask);
    in.inputs_embeds = opt(inputs_embeds);
    in.embeds_mask = opt(embeds_mask);
    in.token_mask = opt(token_mask);
    in.output_mask = opt(output_mask);
    in.output_hidden_states = output_hidden_states;
    in.compute_logits = compute_logits;
    py::gil_scoped_release release;
    return d.forward(in, cache);
  };
  const char* forward_doc =
      "Runs the decoder. input_ids [B,T] int64; position_ids [B,T] (0-based, default 0..T-1 or past..past+T-1 with a "
      "cache); attention_mask [B,T,T] bool ([B,T,past+T] with a cache; true = may attend; default causal); "
      "inputs_embeds [B,T,E] used where embeds_mask [B,T] is true; token_mask [B,T] bool: the real tokens, the padding's "
      "per-token work is skipped and its outputs are 0 (no real token may attend padding; no cache); output_mask [B,T] bool "
      "(within token_mask): the positions whose final outputs are used, the last layer computes only those (0 elsewhere). Returns a DecoderOutput (logits [B,T,V], "
      "last_hidden_state [B,T,E], hidden_states: num_layers + 1 tensors when requested).";

  py::class_<DecoderImpl, std::shared_ptr<DecoderImpl>>(m, "Decoder",
                                                          "OPT decoder LM, computed as Hugging Face's OPTForCausalLM.")
      .def(py::init([](const DecoderOptions& o) { return std::make_shared<DecoderImpl>(o); }), py::arg("options"))
      .def(py::init([](int64_t V, int64_t D, int64_t L, int64_t H, const py::kwargs& kwargs) {
             return std::make_shared<DecoderImpl>(options_from_positional(V, D, L, H, kwargs, "Decoder"));
           }),
           py::arg("vocab_size"), py::arg("hidden_size"), py::arg("num_layers"), py::arg("num_heads"),
           "The four required DecoderOptions fields by position, any other field by keyword.")
      .def("forward", forward, py::arg("input_ids"), py::arg("position_ids") = py::none(),
           py::arg("attention_mask") = py::none(), py::arg("inputs_embeds") = py::none(),
           py::arg("embeds_mask") = py::none(), py::arg("output_hidden_states") = false,
           py::arg("compute_logits") = true, py::arg("cache") = nullptr, py::arg("token_mask") = py::none(),
           py::arg("output_mask") = py::none(), forward_doc)
      .def("__call__", forward, py::arg("input_ids"), py::arg("position_ids") = py::none(),
           py::arg("attention_mask") = py::none(), py::arg("inputs_embeds") = py::none(),
           py::arg("embeds_mask") = py::none(), py::arg("output_hidden_states") = false,
           py::arg("compute_logits") = true, py::arg("cache") = nullptr, py::arg("token_mask") = py::none(),
           py::arg("output_mask") = py::none(), forward_doc)
      .def_property_readonly("options", &DecoderImpl::options)
      .def("embed_tokens", &DecoderImpl::embed_tokens, py::arg("ids"), "Token embeddings [B,T,E] (pad row has no gradient).")
      .def("resize_token_embeddings", &DecoderImpl::resize_token_embeddings, py::arg("new_vocab_size"))
      .def("parameters", [](DecoderImpl& d) { return d.parameters(); }, "The live parameter tensors (shared, not copies).")
      .def("named_parameters",
           [](DecoderImpl& d) {
             std::vector<std::pair<std::string, torch::Tensor>> out;
             for (const auto& p : d.named_parameters()) out.emplace_back(p.key(), p.value());
             return out;
           })
      .def("num_parameters", [](DecoderImpl& d) {
        int64_t n = 0;
        for (const auto& p : d.parameters()) n += p.numel();
        return n;
      })
      .def("train", [](DecoderImpl& d, bool mode) { d.train(mode); }, py::arg("mode") = true)
      .def("eval", [](DecoderImpl& d) { d.eval(); })
      .def_property_readonly("training", [](const DecoderImpl& d) { return d.is_training(); })
      .def_property_readonly("device", [](const DecoderImpl& d) { return py::module_::import("torch").attr("device")(d.device().str()); })
      .def_property_readonly("dtype", [](const DecoderImpl& d) {
        return py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject*>(torch::getTHPDtype(d.dtype())));
      })
      .def(
          "to",
          [](DecoderImpl& d, py::object device, py::object dtype) {
            lamia::python::move_module(d, device, dtype);
            return &d;
          },
          py::arg("device") = py::none(), py::arg("dtype") = py::none(), py::return_value_policy::reference,
          "Moves / casts the parameters in place (returns self).")
      .def("zero_grad", [](DecoderImpl& d) { d.zero_grad(); })
      .def("state_dict",
           [](DecoderImpl& d) {
             std::map<std::string, torch::Tensor> out;
             for (const auto& [k, v] : own_state_dict(d)) out[k] = v.detach();
             return out;
           },
           "Parameters by name (detached views sharing storage).")
      .def("load_state_dict", [](DecoderImpl& d, const std::map<std::string, torch::Tensor>& sd,
                                 bool strict) { load_own_state_dict(d, sd, strict, "load_state_dict"); },
           py::arg("state_dict"), py::arg("strict") = true)
      .def("save", [](DecoderImpl& d, const std::string& path) {
             std::map<std::string, torch::Tensor> out;
             for (const auto& [k, v] : own_state_dict(d)) out[k] = v.detach();
             save_safetensors(path, out, {{"format", "pt"}});
           }, py::arg("path"), "Writes the parameters (lamia names) to a safetensors file.")
      .def("load", [](DecoderImpl& d, const std::string& path) {
             load_own_state_dict(d, load_safetensors(path), true, path);
           }, py::arg("path"))
      .def("hf_state_dict", [](DecoderImpl& d) {
             std::map<std::string, torch::Tensor> out;
             for (const auto& [k, v] : hf_state_dict(d)) out[k] = v.detach();
             return out;
           })
      .def("load_hf_state_dict", [](DecoderImpl& d, const std::map<std::string, torch::Tensor>& sd) {
             load_hf_state_dict(d, sd);
           }, py::arg("state_dict"))
      .def("save_pretrained",
           [](DecoderImpl& d, const std::string& dir, int64_t max_shard_bytes, py::object dtype) {
             c10::optional<torch::Dtype> dt;
             if (!dtype.is_none()) dt = to_dtype(dtype);
             save_pretrained(d, dir, max_shard_bytes, dt);
           },
           py::arg("dir"), py::arg("max_shard_bytes") = 0, py::arg("dtype") = py::none())
      .def("load_pretrained_weights", [](DecoderImpl& d, const std::string& dir) { load_pretrained_weights(d, dir); },
           py::arg("dir"))
      .def(
          "apply_lora",
          [](DecoderImpl& d, const py::object& options, const py::kwargs& kwargs) {
            apply_lora(d, lora_from_args(options, kwargs));
          },
          py::arg("options") = py::none(),
          "Adds LoRA adapters and freezes the base parameters: apply_lora(rank, **fields) or "
          "apply_lora(LoraOptions | dict, **fields).")
      .def_property_readonly("has_lora", [](const DecoderImpl& d) { return has_lora(d); })
      .def("merge_lora", [](DecoderImpl& d) { merge_lora(d); })
      .def("unmerge_lora", [](DecoderImpl& d) { unmerge_lora(d); })
      .def("lora_state_dict", [](DecoderImpl& d) { return lora_state_dict(d); })
      .def("save_lora", [](DecoderImpl& d, const std::string& path) { save_lora(d, path); }, py::arg("path"))
      .def("load_lora", [](DecoderImpl& d, const std::string& path) { load_lora(d, path); }, py::arg("path"))
      .def("layer_forward",
           [](DecoderImpl& d, int64_t i, const torch::Tensor& x, std::optional<torch::Tensor> mask) {
             TORCH_CHECK_INDEX(i >= 0 && i < int64_t(d.layer_modules.size()), "layer index ", i, " out of range [0, ",
                               d.layer_modules.size(), ")");
             return d.layer_modules[size_t(i)]->forward(x, opt(mask));
           },
           py::arg("layer"), py::arg("x"), py::arg("mask") = py::none(), "One decoder layer on x [B,T,D].")
      .def("layer_attention",
           [](DecoderImpl& d, int64_t i, const torch::Tensor& x, std::optional<torch::Tensor> mask) {
             TORCH_CHECK_INDEX(i >= 0 && i < int64_t(d.layer_modules.size()), "layer index ", i, " out of range [0, ",
                               d.layer_modules.size(), ")");
             return d.layer_modules[size_t(i)]->self_attn->forward(x, opt(mask));
           },
           py::arg("layer"), py::arg("x"), py::arg("mask") = py::none(),
           "The self-attention of one layer (no layer norm, no residual).")
      .def("layer_feed_forward",
           [](DecoderImpl& d, int64_t i, const torch::Tensor& x) {
             TORCH_CHECK_INDEX(i >= 0 && i < int64_t(d.layer_modules.size()), "layer index ", i, " out of range [0, ",
                               d.layer_modules.size(), ")");
             return d.layer_modules[size_t(i)]->feed_forward(x);
           },
           py::arg("layer"), py::arg("x"), "The FFN block of one layer (with its residual and layer norm).");

  m.def(
      "load_pretrained",
      [](const std::string& dir, py::object dtype, py::object device) {
        auto dt = dtype.is_none() ? torch::kFloat : to_dtype(dtype);
        auto dev = device.is_none() ? torch::Device(torch::kCPU) : to_device(device);
        return load_pretrained(dir, dt, dev).ptr();
      },
      py::arg("dir"), py::arg("dtype") = py::none(), py::arg("device") = py::none(),
      "Reads a Hugging Face OPT folder (config.json + model.safetensors or a sharded index).");
  m.def(
      "masked_attention",
      [](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, std::optional<torch::Tensor> mask,
         double dropout_p, bool training) { return functional::masked_attention(q, k, v, opt(mask), dropout_p, training); },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask") = py::none(), py::arg("dropout_p") = 0.0, py::arg("training") = false,
        "softmax(q k^T) v with a bool mask [B,T,S]; fully masked rows give 0.");
  m.def(
      "fused_masked_attention",
      [](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, std::optional<torch::Tensor> mask) {
        return functional::fused_masked_attention(q, k, v, opt(mask));
      },
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask") = py::none(),
      "masked_attention through torch's scaled_dot_product_attention (LibTorch >= 2.1, no dropout); fully masked "
      "rows give 0 here too.");
  m.def("fused_attention_available", &fused_attention_available,
        "Whether this build's LibTorch has scaled_dot_product_attention (>= 2.1), which fused_attention needs.");
  auto policy_dict = [](const KernelPolicy& p) {
    py::dict d;
    d["pack_padding"] = p.pack_padding;
    d["fused_attention"] = p.fused_attention;
    return d;
  };
  m.def("kernel_policy", [policy_dict] { return policy_dict(kernel_policy()); },
        "The decoder's kernel policy now in force: {'pack_padding': bool, 'fused_attention': bool}.");
  m.def(
      "set_kernel_policy",
      [policy_dict](std::optional<bool> pack_padding, std::optional<bool> fused_attention) {
        const auto before = kernel_policy();
        auto p = before;
        if (pack_padding) p.pack_padding = *pack_padding;
        if (fused_attention) p.fused_attention = *fused_attention;
        set_kernel_policy(p);
        return policy_dict(before);
      },
      py::arg("pack_padding") = py::none(), py::arg("fused_attention") = py::none(),
      "Sets how every decoder computes (never what): pack_padding runs the per-token work on the real tokens "
      "only (token_mask), fused_attention uses scaled_dot_product_attention for masked attention. Arguments "
      "left None keep their value. Returns the policy before the call. Process-wide, as torch.backends' flags.");
  m.def(
      "save_safetensors",
      [](const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
         std::optional<std::map<std::string, std::string>> metadata) {
        save_safetensors(path, tensors, metadata.value_or(std::map<std::string, std::string>{}));
      },
      py::arg("path"), py::arg("tensors"), py::arg("metadata") = py::none(), "Writes tensors to a safetensors file atomically.");
  m.def("load_safetensors", [](const std::string& path) { return load_safetensors(path); }, py::arg("path"),
        "Reads every tensor of a safetensors file (CPU, stored dtype).");
  m.def(
      "load_safetensors_metadata",
      [](const std::string& path) { return read_safetensors_header(path).metadata; }, py::arg("path"));
}
