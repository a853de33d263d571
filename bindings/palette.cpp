// pylamia: the palette encoder's losses, attention mask and palette files.
#include "options.hpp"
#include "registry.hpp"
#include "torch_args.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/data/catalog.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/palette.hpp>
#include <lamia/text/tokenizer.hpp>

#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>
#include <torch/extension.h>

#include <algorithm>
#include <numeric>
#include <optional>

namespace py = pybind11;

namespace {

using namespace lamia;

// A palette encoder with what it needs to build its own batches: the Python-side object.
struct PyPaletteEncoder {
  PaletteSetup setup;

  PaletteBatch batch(const std::vector<std::pair<ItemIndex, std::int64_t>>& samples, bool with_full) const {
    if (samples.empty()) throw lamia::ValueError("PaletteEncoder: expected at least one (item, task) sample, got none");
    std::vector<SampleLayout> layouts;
    layouts.reserve(samples.size());
    for (const auto& [item, task] : samples) layouts.push_back(make_sample(setup.catalog, item, task, setup.encoder->tokens()));
    return collate_samples(layouts, setup.encoder->tokens(), with_full).to(setup.encoder->decoder->device());
  }
};

// The options of PaletteEncoder.from_scratch / from_tokenizer / from_pretrained: `encoder` (a
// PaletteEncoderOptions or a dict) and `model` (a ScratchModelOptions or a dict), then keywords, each
// routed to the struct that has a field of that name (the losses' fields too: gamma=0.5); an unknown
// keyword is a TypeError naming it. num_attributes is the catalog's; num_content_attributes 0: all.
PaletteEncoderOptions encoder_from_args(const Catalog& catalog, std::int64_t r, const py::object& encoder,
                                        const py::kwargs& kwargs, const char* owner) {
  auto o = python::options_from_args<PaletteEncoderOptions>(encoder, kwargs, owner, /*flatten=*/true);
  const auto m = static_cast<std::int64_t>(catalog.num_attributes());
  o.num_attributes(m);
  if (r > 0) o.num_content_attributes(r);
  if (o.num_content_attributes() <= 0) o.num_content_attributes(m);
  return o;
}

// Splits keywords between the model's fields and the encoder's (everything else).
std::pair<py::kwargs, py::kwargs> split_model_kwargs(const py::kwargs& kwargs) {
  const auto model_fields = options::field_names<ScratchModelOptions>();
  py::kwargs model, encoder;
  for (const auto& [key, value] : kwargs) {
    const auto name = py::str(key).cast<std::string>();
    if (std::find(model_fields.begin(), model_fields.end(), name) != model_fields.end()) {
      model[key] = value;
    } else {
      encoder[key] = value;
    }
  }
  return {model, encoder};
}

PalettePath parse_path(const std::string& path) {
  if (path == "fast") return PalettePath::kFast;
  if (path == "reference") return PalettePath::kReference;
  throw lamia::ValueError("path must be 'fast' or 'reference', got '" + path + "'");
}

// loss, generation_loss, intra_loss, inter_loss, decorrelation_loss (forward() and combine_losses()).
py::dict loss_dict(const PaletteLossParts& p) {
  py::dict d;
  d["loss"] = p.total;
  d["generation_loss"] = p.generation;
  d["intra_loss"] = p.intra;
  d["inter_loss"] = p.inter;
  d["decorrelation_loss"] = p.decorrelation;
  return d;
}

py::dict output_dict(const PaletteEncoderOutput& o, const PaletteBatch& b) {
  auto d = loss_dict({o.loss, o.generation_loss, o.intra_loss, o.inter_loss, o.decorrelation_loss});
  d["palettes"] = o.palettes;
  d["items"] = b.items;
  d["correct_tokens"] = o.correct_tokens;
  d["label_tokens"] = o.label_tokens;
  d["num_tokens"] = b.num_tokens;
  return d;
}

py::object record_dict(const PaletteLossRecord& r) { return python::to_python(options::to_json(r)); }

}  // namespace

LAMIA_REGISTER_BINDINGS(kOrderPalette, palette) {
  using namespace lamia;
  python::bind_options<PaletteLossOptions>(m, "PaletteLossOptions",
                                           "Weights, margins and reduction of the palette encoder's losses (the paper's defaults).");
  python::bind_options<PaletteEncoderOptions>(
      m, "PaletteEncoderOptions",
      "The palette encoder's layout and losses; PaletteEncoder.from_* set num_attributes from the catalog.");
  python::bind_options<ScratchModelOptions>(m, "ScratchModelOptions",
                                            "The OPT-architecture decoder a palette encoder trains from scratch.");
  python::bind_options<PaletteTrainerOptions>(m, "PaletteTrainerOptions",
                                              "Options of PaletteTrainer; defaults are the paper's where it gives them.");
  m.def(
      "intra_palette_loss",
      [](const torch::Tensor& palettes, double alpha, const std::string& reduction, const std::string& centring) {
        return functional::intra_palette_loss(palettes, alpha, parse_reduction(reduction),
                                              options::enum_from_string<IntraCentring>(centring, "centring"));
      },
      py::arg("palettes"), py::arg("alpha") = 0.1, py::arg("reduction") = "mean", py::arg("centring") = "none",
      R"doc(Intra-palette hinge loss sum_i sum_{j!=k} max(0, cos(B_ij, B_ik) - alpha)^2.

palettes: [B, L, D] float tensor (autograd flows through). reduction: "mean" (over the
B*L*(L-1) ordered pairs, default) or "sum" (the paper's formula). 0 when L = 1.
centring: "none" (the paper) or "batch" (each position's mean over the B items subtracted first).
Raises ValueError when L = 0 or the shape is not [B, L, D].)doc");
  m.def(
      "decorrelation_loss",
      [](const torch::Tensor& palettes, const std::string& reduction) {
        return functional::decorrelation_loss(palettes, parse_reduction(reduction));
      },
      py::arg("palettes"), py::arg("reduction") = "mean",
      R"doc(Cross-correlation penalty between palette positions: sum over i != j of ||C_ij||_F^2, where
C_ij = Z_i^T Z_j / B and Z_j is position j standardised over the B items ((x - mean) / sqrt(var + 1e-6),
biased variance). "mean" divides by L*(L-1)*D (a copy of a position with uncorrelated dimensions
gives 1, independent positions about D/B), "sum" does not. 0 when L = 1 or B = 1.)doc");
  m.def(
      "inter_palette_loss",
      [](const torch::Tensor& palettes, double alpha, const std::string& reduction) {
        return functional::inter_palette_loss(palettes, alpha, parse_reduction(reduction));
      },
      py::arg("palettes"), py::arg("alpha") = 0.25, py::arg("reduction") = "mean",
      R"doc(Inter-palette hinge loss sum_j sum_{i!=k} max(0, cos(B_ij, B_kj) - alpha)^2.

palettes: [B, L, D] float tensor. reduction: "mean" (over the L*B*(B-1) ordered pairs,
default) or "sum". A batch of one item has no pairs: the loss is 0 (no NaN).)doc");
  m.def(
      "palette_generation_loss",
      [](const torch::Tensor& logits, const torch::Tensor& labels, const std::string& reduction) {
        return functional::generation_loss(logits, labels, parse_reduction(reduction));
      },
      py::arg("logits"), py::arg("labels"), py::arg("reduction") = "mean",
      "Next-token cross-entropy of logits [B, T, V] against labels [B, T] (-100 = no loss).");
  m.def(
      "palette_attention_mask",
      [](const torch::Tensor& block_types, const std::string& routing, const std::optional<torch::Tensor>& tasks) {
        return palette_attention_mask(block_types, options::enum_from_string<TaskRouting>(routing, "task_routing"),
                                      tasks ? *tasks : torch::Tensor());
      },
      py::arg("block_types"), py::arg("task_routing") = "all", py::arg("sample_tasks") = py::none(),
      R"doc(The hierarchical attention mask [B, T, T] (bool, True = query row may attend key
column) of block-type ids [B, T] (int64: 0 pad, 1 content, 2 LaP, 3 LdP, 4 task).
task_routing "one_position" (needs sample_tasks [B], each row's 0-based task): task rows read only
LdP_(task mod L), and LdP rows read only themselves.)doc");
  m.def(
      "save_palettes",
      [](const std::filesystem::path& path, const std::vector<std::string>& item_ids, const torch::Tensor& palettes) {
        py::gil_scoped_release release;
        save_palettes(path, item_ids, palettes);
      },
      py::arg("path"), py::arg("item_ids"), py::arg("palettes"),
      "Writes palettes [n, L, D] (converted to float32) and their item ids atomically to a versioned file.");
  m.def(
      "load_palettes",
      [](const std::filesystem::path& path) {
        PaletteFile f;
        {
          py::gil_scoped_release release;
          f = load_palettes(path);
        }
        return py::make_tuple(f.item_ids, f.palettes);
      },
      py::arg("path"),
      R"doc(Reads a palette file: (item_ids: list[str], palettes: torch.Tensor [n, L, D] float32).
Raises OSError when the file cannot be read, ValueError when it is corrupted or of another version.)doc");
  py::class_<PaletteFileReader>(m, "PaletteFileReader", R"doc(
A palette file read a range of items at a time, for catalogs whose palettes do not fit in
memory. The header and item ids are checked on open; with verify_checksum the file is read
once to check its crc32. Pass it to PaletteQuantizer.fit / encode to quantize from disk:

    reader = pylamia.PaletteFileReader("palettes.bin")
    report = pylamia.PaletteQuantizer().fit(reader)     # one chunk of items in memory at a time
)doc")
      .def(py::init<const std::filesystem::path&, bool>(), py::arg("path"), py::arg("verify_checksum") = true,
           py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("num_items", &PaletteFileReader::num_items)
      .def_property_readonly("palette_size", &PaletteFileReader::palette_size)
      .def_property_readonly("dim", &PaletteFileReader::dim)
      .def_property_readonly("item_ids", &PaletteFileReader::item_ids)
      .def_property_readonly("path", &PaletteFileReader::path)
      .def("__len__", &PaletteFileReader::num_items)
      .def("read", &PaletteFileReader::read, py::arg("begin"), py::arg("end"), py::call_guard<py::gil_scoped_release>(),
           "Palettes of items [begin, end) as a new float32 tensor [end - begin, L, D].")
      .def(
          "read_into",
          [](const PaletteFileReader& r, std::int64_t begin, std::int64_t end, const torch::Tensor& out) {
            TORCH_CHECK_VALUE(out.scalar_type() == torch::kFloat32 && out.device().is_cpu() && out.is_contiguous() &&
                                  out.numel() == std::max<std::int64_t>(end - begin, 0) * r.palette_size() * r.dim(),
                              "read_into: out must be a contiguous float32 CPU tensor of ", end - begin, " x ",
                              r.palette_size(), " x ", r.dim(), " values, got ", out.sizes(), " ", out.scalar_type());
            py::gil_scoped_release release;
            r.read_into(begin, end, out.data_ptr<float>());
          },
          py::arg("begin"), py::arg("end"), py::arg("out"), "Same as read() into out (a reusable buffer).")
      .def("verify_checksum", &PaletteFileReader::verify_checksum, py::call_guard<py::gil_scoped_release>(),
           "Reads the palettes once and checks the crc32 (ValueError on a mismatch).");

  py::class_<PyPaletteEncoder, std::shared_ptr<PyPaletteEncoder>>(m, "PaletteEncoder", R"doc(
A palette encoder (decoder LM + palette tokens) bound to a catalog. Samples are (item, task)
pairs: item is the catalog index, task the 0-based attribute the task generates.
forward() returns the loss parts and the palettes as tensors in the autograd graph, and
parameters() the module's real tensors, so a notebook can run its own optimizer loop:

    enc = pylamia.PaletteEncoder.from_scratch(catalog, num_content_attributes=2, hidden_size=64)
    opt = torch.optim.Adam(enc.parameters(), lr=1e-3)
    out = enc.forward([(0, 0), (1, 3)]); out["loss"].backward(); opt.step()
)doc")
      .def_static(
          "from_scratch",
          [](const Catalog& catalog, std::int64_t r, const py::object& encoder, const py::object& model,
             const py::kwargs& kwargs) {
            auto [model_kw, encoder_kw] = split_model_kwargs(kwargs);
            const auto o = encoder_from_args(catalog, r, encoder, encoder_kw, "PaletteEncoder.from_scratch");
            const auto mo = python::options_from_args<ScratchModelOptions>(model, model_kw, "PaletteEncoder.from_scratch");
            auto p = std::make_shared<PyPaletteEncoder>();
            py::gil_scoped_release release;
            p->setup = make_palette_setup_from_scratch(catalog, o, mo);
            return p;
          },
          py::arg("catalog"), py::arg("num_content_attributes") = 0, py::kw_only(), py::arg("encoder") = py::none(),
          py::arg("model") = py::none(),
          "A fresh model: a BPE tokenizer trained on the catalog's texts, a new OPT decoder, the palette tokens\n"
          "added. encoder: PaletteEncoderOptions (or a dict), model: ScratchModelOptions (or a dict); keywords set\n"
          "single fields of either (palette_size=4, gamma=0.1, hidden_size=64, ...; TypeError for an unknown one).\n"
          "num_content_attributes 0: every attribute.")
      .def_static(
          "from_tokenizer",
          [](const Catalog& catalog, std::shared_ptr<Tokenizer> tokenizer, std::int64_t r, const py::object& encoder,
             const py::object& model, const py::kwargs& kwargs) {
            auto [model_kw, encoder_kw] = split_model_kwargs(kwargs);
            const auto o = encoder_from_args(catalog, r, encoder, encoder_kw, "PaletteEncoder.from_tokenizer");
            const auto mo = python::options_from_args<ScratchModelOptions>(model, model_kw, "PaletteEncoder.from_tokenizer");
            auto p = std::make_shared<PyPaletteEncoder>();
            py::gil_scoped_release release;
            p->setup = make_palette_setup_from_tokenizer(catalog, std::move(tokenizer), o, mo);
            return p;
          },
          py::arg("catalog"), py::arg("tokenizer"), py::arg("num_content_attributes") = 0, py::kw_only(),
          py::arg("encoder") = py::none(), py::arg("model") = py::none(),
          "Same as from_scratch around a tokenizer you trained (train_bpe) or loaded; the palette tokens are\n"
          "added to that tokenizer. The model's vocab_size is the tokenizer's.")
      .def_static(
          "from_pretrained",
          [](const Catalog& catalog, const std::filesystem::path& dir, std::int64_t r, std::int64_t lora_rank,
             const py::object& encoder, const py::kwargs& kwargs) {
            const auto o = encoder_from_args(catalog, r, encoder, kwargs, "PaletteEncoder.from_pretrained");
            auto p = std::make_shared<PyPaletteEncoder>();
            py::gil_scoped_release release;
            p->setup = make_palette_setup_pretrained(catalog, dir, o, lora_rank);
            return p;
          },
          py::arg("catalog"), py::arg("model_dir"), py::arg("num_content_attributes") = 0, py::arg("lora_rank") = 0,
          py::kw_only(), py::arg("encoder") = py::none(),
          "A Hugging Face OPT folder (tokenizer + weights); lora_rank > 0 adds LoRA adapters and freezes the rest\n"
          "but the token embeddings. encoder and keywords as in from_scratch.")
      .def(
          "forward",
          [](PyPaletteEncoder& self, const std::vector<std::pair<ItemIndex, std::int64_t>>& samples,
             std::optional<std::string> path) {
            const auto p = path ? parse_path(*path) : self.setup.encoder->options().path();
            auto b = self.batch(samples, p == PalettePath::kReference);
            return output_dict(self.setup.encoder->forward(b, p), b);
          },
          py::arg("samples"), py::arg("path") = py::none(),
          R"doc(Dual forward on (item, task) samples. Returns a dict: loss, generation_loss, intra_loss,
inter_loss, decorrelation_loss (0-d tensors with autograd), palettes ([U, L, E], one row per distinct item, in the
order of "items"), items, correct_tokens, label_tokens, num_tokens. path: "fast" or "reference".)doc")
      .def(
          "combine_losses",
          [](PyPaletteEncoder& self, const torch::Tensor& generation, const torch::Tensor& palettes,
             double grad_scale) {
            return loss_dict(PaletteLossImpl(self.setup.encoder->options().losses())
                                 .combine_scaled(generation, palettes, grad_scale));
          },
          py::arg("generation_loss"), py::arg("palettes"), py::arg("grad_scale") = 1.0,
          R"doc(The total loss of forward() from a generation loss and palettes [N, L, E] (one row per distinct
item) under this encoder's loss options: generation + gamma (intra + inter) (+ the decorrelation term).
grad_scale multiplies the gradient, not the value, of the intra/inter/decorrelation terms: for
data-parallel training on the palettes of the whole batch (pylamia.distributed). Returns a dict: loss,
generation_loss, intra_loss, inter_loss, decorrelation_loss.)doc")
      .def(
          "collate",
          [](PyPaletteEncoder& self, const std::vector<std::pair<ItemIndex, std::int64_t>>& samples, bool with_full) {
            auto b = self.batch(samples, with_full);
            auto seg = [](const PaletteSegment& s) {
              py::dict d;
              d["input_ids"] = s.input_ids;
              d["position_ids"] = s.position_ids;
              d["block_types"] = s.block_types;
              if (s.labels.defined()) d["labels"] = s.labels;
              return d;
            };
            py::dict d;
            if (with_full) {
              d["full"] = seg(b.full);
              d["full_lap_index"] = b.full_lap_index;
              d["full_ldp_index"] = b.full_ldp_index;
            }
            d["encode"] = seg(b.encode);
            d["encode_lap_index"] = b.encode_lap_index;
            d["decode"] = seg(b.decode);
            d["sample_item_row"] = b.sample_item_row;
            d["items"] = b.items;
            d["num_tokens"] = b.num_tokens;
            return d;
          },
          py::arg("samples"), py::arg("with_full") = false,
          R"doc(The padded batch forward() builds, as tensors: "encode" ([content; LaP] per distinct item),
"decode" ([LdP; task] per sample) and with_full "full" (all four blocks), each a dict of
input_ids, position_ids (positions in the full layout), block_types, labels ([B, T] int64).)doc")
      .def(
          "encode",
          [](PyPaletteEncoder& self, const std::vector<ItemIndex>& items) {
            auto b = collate_items(self.setup.catalog, items, self.setup.encoder->tokens())
                         .to(self.setup.encoder->decoder->device());
            return self.setup.encoder->encode(b);
          },
          py::arg("items"), "Pass 1 only: the palettes [len(items), L, E] of these items (autograd on).")
      .def(
          "encode_items",
          [](PyPaletteEncoder& self, std::optional<std::vector<ItemIndex>> items, std::int64_t batch_size) {
            std::vector<ItemIndex> all;
            if (items) {
              all = *items;
            } else {
              all.resize(self.setup.catalog.size());
              std::iota(all.begin(), all.end(), 0);
            }
            py::gil_scoped_release release;
            return encode_items(*self.setup.encoder, self.setup.catalog, all, batch_size);
          },
          py::arg("items") = py::none(), py::arg("batch_size") = 256,
          "Palettes [n, L, E] float32 on the CPU, no gradient, eval mode (all items by default).")
      .def(
          "export_palettes",
          [](PyPaletteEncoder& self, const std::filesystem::path& path, std::int64_t batch_size) {
            py::gil_scoped_release release;
            return export_palettes(*self.setup.encoder, self.setup.catalog, path, batch_size);
          },
          py::arg("path"), py::arg("batch_size") = 256,
          "Streams the palettes of every item with its id to a palette file (see load_palettes). Returns the count.")
      .def(
          "reconstruction_accuracy",
          [](PyPaletteEncoder& self, const std::vector<ItemIndex>& items, std::int64_t batch_size) {
            ReconstructionAccuracy r;
            {
              py::gil_scoped_release release;
              r = reconstruction_accuracy(*self.setup.encoder, self.setup.catalog, items, batch_size);
            }
            py::dict d;
            d["token_accuracy"] = r.token_accuracy;
            d["per_attribute"] = r.per_attribute;
            d["correct_tokens"] = r.correct_tokens;
            d["label_tokens"] = r.label_tokens;
            d["generation_loss"] = r.generation_loss;
            return d;
          },
          py::arg("items"), py::arg("batch_size") = 128,
          "Teacher-forced token accuracy of every task of these items from the palette alone.")
      .def("parameters", [](PyPaletteEncoder& self) { return self.setup.encoder->parameters(); },
           "The module's parameters (the real tensors: optimizers and .grad work on them).")
      .def(
          "named_parameters",
          [](PyPaletteEncoder& self) {
            py::dict d;
            for (const auto& p : self.setup.encoder->named_parameters()) d[py::str(p.key())] = p.value();
            return d;
          },
          "Parameters by name (e.g. 'decoder.embed_tokens.weight').")
      .def("train", [](PyPaletteEncoder& self, bool mode) { self.setup.encoder->train(mode); }, py::arg("mode") = true)
      .def("eval", [](PyPaletteEncoder& self) { self.setup.encoder->eval(); })
      .def("zero_grad", [](PyPaletteEncoder& self) { self.setup.encoder->zero_grad(); })
      .def(
          "to",
          [](PyPaletteEncoder& self, const py::object& device, const py::object& dtype) {
            python::move_module(*self.setup.encoder, device, dtype);
          },
          py::arg("device") = py::none(), py::arg("dtype") = py::none(),
          "Moves / casts the parameters in place (device: torch.device or a string; dtype: torch.float64 or \"float64\").")
      .def("save", [](PyPaletteEncoder& self, const std::string& path) { torch::save(self.setup.encoder, path); },
           py::arg("path"), "Writes the module's parameters and buffers (torch::save archive).")
      .def("load",
           [](PyPaletteEncoder& self, const std::string& path) {
             // Onto the model's device: a plain torch::load would move the parameters to where they were saved.
             torch::load(self.setup.encoder, path, self.setup.encoder->decoder->device());
           },
           py::arg("path"), "Reads parameters written by save() into this model (same architecture), on its device.")
      .def_property_readonly("tokenizer", [](PyPaletteEncoder& self) { return self.setup.tokenizer; })
      .def_property_readonly("decoder", [](PyPaletteEncoder& self) { return self.setup.encoder->decoder.ptr(); })
      .def_property_readonly("options", [](PyPaletteEncoder& self) { return self.setup.encoder->options(); },
                             "A copy of the encoder's PaletteEncoderOptions (its losses: options.losses).")
      .def_property_readonly("palette_size", [](PyPaletteEncoder& self) { return self.setup.encoder->options().palette_size(); })
      .def_property_readonly("palette_dim", [](PyPaletteEncoder& self) { return self.setup.encoder->palette_dim(); })
      .def_property_readonly("num_items", [](PyPaletteEncoder& self) { return self.setup.catalog.size(); })
      .def_property_readonly("num_tasks", [](PyPaletteEncoder& self) { return self.setup.catalog.num_attributes(); })
      .def_property_readonly("item_ids", [](PyPaletteEncoder& self) { return self.setup.catalog.item_ids; })
      .def_property_readonly("content_truncations", [](PyPaletteEncoder& self) { return self.setup.catalog.content_truncations; })
      .def_property_readonly("special_tokens",
                             [](PyPaletteEncoder& self) {
                               const auto& t = self.setup.encoder->tokens();
                               py::dict d;
                               d["lap"] = t.lap;
                               d["ldp"] = t.ldp;
                               d["task"] = t.task;
                               d["eos"] = t.eos;
                               d["pad"] = t.pad;
                               return d;
                             },
                             "Ids of the LaP, LdP and task tokens, eos and pad.");

  py::class_<PaletteTrainer, std::shared_ptr<PaletteTrainer>>(m, "PaletteTrainer", R"doc(
Trains a PaletteEncoder: (item, task) samples of the training items, length-grouped batches,
Adam, gradient clipping, early stopping on held-out items, checkpoints with exact resume.
A non-finite loss raises ValueError naming the step and the batch's item ids.)doc")
      .def(py::init([](std::shared_ptr<PyPaletteEncoder> enc, const py::object& options, const py::kwargs& kwargs) {
             auto o = python::options_from_args<PaletteTrainerOptions>(options, kwargs, "PaletteTrainer");
             // The trainer keeps a reference to the tokenized catalog: keep the encoder alive with it.
             std::shared_ptr<PaletteTrainer> t(new PaletteTrainer(enc->setup.encoder, enc->setup.catalog, o),
                                               [enc](PaletteTrainer* p) { delete p; });
             return t;
           }),
           py::arg("encoder"), py::arg("options") = py::none(),
           "options: a PaletteTrainerOptions or a dict; keywords set its fields (PaletteTrainer(enc, epochs=3)).")
      .def(
          "train",
          [](PaletteTrainer& t) {
            PaletteTrainResult r;
            {
              py::gil_scoped_release release;
              r = t.train();
            }
            return python::to_python(options::to_json(r));
          },
          "Trains; returns a dict (steps, stop_reason, train_history, validation_history, best_validation_loss, ...).")
      .def(
          "evaluate",
          [](PaletteTrainer& t, std::optional<std::vector<ItemIndex>> items) {
            PaletteLossRecord r;
            {
              py::gil_scoped_release release;
              r = t.evaluate(items ? *items : t.validation_items());
            }
            return record_dict(r);
          },
          py::arg("items") = py::none(), "Mean losses and token accuracy on items (default: the validation items).")
      .def("save_checkpoint", [](PaletteTrainer& t, const std::filesystem::path& p) { t.save_checkpoint(p); }, py::arg("path"))
      .def("load_checkpoint", [](PaletteTrainer& t, const std::filesystem::path& p) { t.load_checkpoint(p); }, py::arg("path"))
      .def("epoch_batches", &PaletteTrainer::epoch_batches, py::arg("epoch"),
           "The (item, task) batches of an epoch, in training order (deterministic in seed and epoch).")
      .def_property_readonly("options", &PaletteTrainer::options, "The PaletteTrainerOptions (a copy).")
      .def_property_readonly("step", &PaletteTrainer::step)
      .def_property_readonly("train_items", &PaletteTrainer::train_items)
      .def_property_readonly("validation_items", &PaletteTrainer::validation_items);
}
