// pylamia: the recommend component (code tokens, the generative recommender, the device trie,
// item constraints, beam search, exact scoring, SASRec). Models cross as pylamia.Decoder (the
// same object: a notebook trains it with torch.optim over model.parameters()); tensors as
// torch.Tensor. beam_search, score_all_items, the losses, the training loops and SasRec.score
// release the GIL.
#include "torch_args.hpp"
#include "options.hpp"
#include "registry.hpp"
#include "sequence_examples.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/recommend.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>
#include <torch/csrc/DynamicTypes.h>
#include <torch/extension.h>
#include <torch/python.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace py = pybind11;
using namespace pybind11::literals;

namespace {

using lamia::ItemIndex;
using lamia::SequenceExample;
using lamia::python::options_from_args;
using lamia::python::to_python;
using Histories = std::vector<std::vector<ItemIndex>>;
using OptionalText = std::optional<lamia::ItemTextTokens>;
using DecoderPtr = std::shared_ptr<lamia::DecoderImpl>;

using lamia::python::examples_from_python;
using lamia::python::type_name;

using lamia::python::to_device;

py::object torch_device(const torch::Device& d) { return py::module_::import("torch").attr("device")(d.str()); }

// The trie with the table it was built from (to encode histories given as lists of items).
struct PyTrie {
  lamia::DeviceTrie trie;
  std::shared_ptr<const lamia::SemanticIdTable> table;
};

lamia::CodeVocabulary vocab_arg(const py::handle& v, const lamia::SemanticIdTable* table, const char* what) {
  if (v.is_none()) {
    if (!table) throw py::type_error(std::string(what) + ": a CodeVocabulary is required");
    return lamia::CodeVocabulary::for_table(*table);
  }
  if (py::isinstance<lamia::CodeVocabulary>(v)) return v.cast<lamia::CodeVocabulary>();
  if (py::isinstance<lamia::SemanticIdTable>(v)) return lamia::CodeVocabulary::for_table(v.cast<const lamia::SemanticIdTable&>());
  throw py::type_error(fmt::format("{}: vocab must be a CodeVocabulary or a SemanticIdTable, got {}", what, type_name(v)));
}

// Items of history a recommender reads, from its position table: 1 + (N + 1) (L + 1) positions.
std::int64_t history_items_of(const lamia::DecoderImpl& model, std::int64_t levels) {
  const auto n = (model.options().max_position_embeddings() - 1) / levels - 1;
  return n >= 1 ? n : 20;
}

// Histories as EncodedHistories, or lists of items encoded with the trie's table.
lamia::EncodedHistories histories_arg(const py::handle& h, const PyTrie& trie, const lamia::DecoderImpl& model,
                                      const std::optional<std::int64_t>& max_items) {
  if (py::isinstance<lamia::EncodedHistories>(h)) return h.cast<lamia::EncodedHistories>();
  const auto lists = h.cast<Histories>();
  const auto n = max_items ? *max_items : history_items_of(model, trie.trie.id_length());
  return lamia::encode_histories(*trie.table, trie.trie.vocabulary(), lists, n);
}

lamia::ConstraintSet constraints_arg(const py::handle& c) {
  if (c.is_none()) return {};
  if (py::isinstance<lamia::ConstraintSet>(c)) return c.cast<lamia::ConstraintSet>();
  if (py::isinstance<lamia::ItemConstraint>(c)) {
    lamia::ConstraintSet s;
    s.add(std::shared_ptr<const lamia::ItemConstraint>(c.cast<std::shared_ptr<lamia::ItemConstraint>>()));
    return s;
  }
  if (py::isinstance<py::list>(c) || py::isinstance<py::tuple>(c)) {
    lamia::ConstraintSet s;
    for (const auto& x : c) {
      if (!py::isinstance<lamia::ItemConstraint>(x))
        throw py::type_error("constraints: every element must be an ItemConstraint (ExcludeHistory, DenyItems, "
                             "AllowItems), got " + type_name(x));
      s.add(std::shared_ptr<const lamia::ItemConstraint>(x.cast<std::shared_ptr<lamia::ItemConstraint>>()));
    }
    return s;
  }
  throw py::type_error("constraints must be None, a ConstraintSet, an ItemConstraint or a list of them, got " +
                       type_name(c));
}

nlohmann::json training_result_json(const lamia::TrainingResult& r) {
  nlohmann::json train = nlohmann::json::array(), valid = nlohmann::json::array();
  for (const auto& t : r.train_history)
    train.push_back({{"step", t.step}, {"loss", t.loss}, {"token_accuracy", t.token_accuracy},
                     {"tokens_per_second", t.tokens_per_second}});
  for (const auto& v : r.validation_history) valid.push_back({{"step", v.step}, {"loss", v.loss}});
  return {{"steps", r.steps},
          {"epochs_completed", r.epochs_completed},
          {"resumed", r.resumed},
          {"resumed_at_step", r.resumed_at_step},
          {"stopped_early", r.stopped_early},
          {"stop_reason", r.stop_reason},
          {"train_history", train},
          {"validation_history", valid},
          {"best_validation_loss", r.best_validation_loss},
          {"best_step", r.best_step},
          {"tokens_per_second", r.tokens_per_second},
          {"seconds", r.seconds}};
}

py::dict batch_dict(const lamia::RecommenderBatch& b) {
  return py::dict("input_ids"_a = b.input_ids, "position_ids"_a = b.position_ids, "attention_mask"_a = b.attention_mask,
                  "labels"_a = b.labels, "tokens"_a = b.tokens, "label_count"_a = b.label_count,
                  "skipped_unknown"_a = b.skipped_unknown);
}

lamia::RecommenderBatch batch_from_dict(const py::dict& d) {
  auto tensor = [&](const char* key) {
    if (!d.contains(key))
      throw lamia::ValueError(fmt::format("recommender_loss: the batch has no '{}' (use make_recommender_batch)", key));
    return d[key].cast<torch::Tensor>();
  };
  auto integer = [&](const char* key) { return d.contains(key) ? d[key].cast<std::int64_t>() : std::int64_t(0); };
  lamia::RecommenderBatch b;
  b.input_ids = tensor("input_ids");
  b.position_ids = tensor("position_ids");
  b.attention_mask = tensor("attention_mask");
  b.labels = tensor("labels");
  b.tokens = integer("tokens");
  b.label_count = integer("label_count");
  b.skipped_unknown = integer("skipped_unknown");
  return b;
}

// The options a model was built with, read back from its decoder (for save_recommender without options).
lamia::RecommenderModelOptions model_options_of(const lamia::DecoderImpl& model, std::int64_t levels) {
  const auto& d = model.options();
  lamia::RecommenderModelOptions o;
  o.hidden_size = d.hidden_size();
  o.num_layers = d.num_layers();
  o.num_heads = d.num_heads();
  o.ffn_dim = d.ffn_dim();
  o.dropout = d.dropout();
  o.max_history_items = history_items_of(model, levels);
  return o;
}

}  // namespace

LAMIA_REGISTER_BINDINGS(kOrderRecommend, recommend) {
  using lamia::CodeVocabulary;
  using lamia::SemanticIdTable;
  using lamia::python::bind_options;

  // ---- code tokens ----
  py::class_<CodeVocabulary>(m, "CodeVocabulary", R"doc(
The token layout of a generative recommender: 0 pads, 1 starts a history (BOS), then each ID
level (the L codes, then the index token) owns a run of its codebook size:
token(level, code) = 2 + offset(level) + code. The LM backbone's layout (after_text) has a text
vocabulary first, with its own bos and pad, and the code tokens from text_vocab_size on.)doc")
      .def(py::init<std::vector<std::int64_t>>(), "level_sizes"_a, "One size per ID level (L codes and the index token), each >= 1.")
      .def_static("for_table", &CodeVocabulary::for_table, "table"_a, "The layout of a table's IDs.")
      .def_static(
          "after_text",
          [](const py::object& levels, std::int64_t text_vocab_size, std::int64_t bos, std::int64_t pad) {
            const auto sizes = py::isinstance<SemanticIdTable>(levels) ? levels.cast<const SemanticIdTable&>().codebook_sizes()
                                                                       : levels.cast<std::vector<std::int64_t>>();
            return CodeVocabulary::after_text(sizes, text_vocab_size, bos, pad);
          },
          "level_sizes"_a, "text_vocab_size"_a, "bos"_a, "pad"_a,
          "The LM backbone's layout: text tokens 0 .. text_vocab_size - 1 (bos and pad among them), then the code "
          "tokens. level_sizes: a list or a SemanticIdTable (its codebook sizes).")
      .def_property_readonly("text_vocab_size", &CodeVocabulary::text_vocab_size, "Text tokens before the codes (0: codes only).")
      .def_property_readonly("first_code_token", &CodeVocabulary::first_code_token)
      .def_property_readonly("bos", &CodeVocabulary::bos, "The token that starts every history.")
      .def_property_readonly("pad", &CodeVocabulary::pad, "The padding token.")
      .def_readonly_static("PAD", &CodeVocabulary::kPad)
      .def_readonly_static("BOS", &CodeVocabulary::kBos)
      .def_readonly_static("FIRST_CODE_TOKEN", &CodeVocabulary::kFirstCodeToken)
      .def_property_readonly("size", &CodeVocabulary::size, "Every token, specials included: the decoder's vocabulary size.")
      .def("__len__", &CodeVocabulary::size)
      .def_property_readonly("num_levels", &CodeVocabulary::num_levels, "L + 1.")
      .def_property_readonly("level_sizes", &CodeVocabulary::level_sizes)
      .def("level_begin", &CodeVocabulary::level_begin, "level"_a, "First token of a level.")
      .def("token", &CodeVocabulary::token, "level"_a, "code"_a, "The token of code at level; IndexError out of range.")
      .def("code_of", &CodeVocabulary::code_of, "token"_a, "(level, code) of a code token; IndexError for a special or unknown one.")
      .def(
          "item_tokens",
          [](const CodeVocabulary& v, const SemanticIdTable& table, ItemIndex item) {
            v.check_table(table, "item_tokens");
            if (item < 0 || item >= table.num_items())
              throw lamia::IndexError(fmt::format("item_tokens: item {} is not in the table ({} items)", item, table.num_items()));
            std::vector<std::int64_t> out(std::size_t(v.num_levels()));
            v.item_tokens(table, item, out.data());
            return out;
          },
          "table"_a, "item"_a, "The L+1 tokens of an item's ID.")
      .def("all_item_tokens", &CodeVocabulary::all_item_tokens, "table"_a, "n x (L+1) int64: every item's tokens.")
      .def(
          "check_table", [](const CodeVocabulary& v, const SemanticIdTable& t) { v.check_table(t, "CodeVocabulary"); }, "table"_a,
          "ValueError naming both layouts unless the table's IDs have this layout.")
      .def("to_dict", [](const CodeVocabulary& v) { return to_python(nlohmann::json(v)); })
      .def("__eq__", [](const CodeVocabulary& a, const py::object& b) {
        return py::isinstance<CodeVocabulary>(b) && a == b.cast<const CodeVocabulary&>();
      })
      .def("__ne__", [](const CodeVocabulary& a, const py::object& b) {
        return !(py::isinstance<CodeVocabulary>(b) && a == b.cast<const CodeVocabulary&>());
      })
      .def("__repr__", [](const CodeVocabulary& v) {
        if (v.text_vocab_size() > 0)
          return fmt::format("CodeVocabulary(level_sizes=[{}], size={}, text_vocab_size={}, bos={}, pad={})",
                             fmt::join(v.level_sizes(), ", "), v.size(), v.text_vocab_size(), v.bos(), v.pad());
        return fmt::format("CodeVocabulary(level_sizes=[{}], size={})", fmt::join(v.level_sizes(), ", "), v.size());
      });
  py::setattr(m.attr("CodeVocabulary"), "__hash__", py::none());

  py::class_<lamia::EncodedHistories>(m, "EncodedHistories", R"doc(
Histories in the code-token layout, left-padded so every row ends at the last column.)doc")
      .def_readonly("tokens", &lamia::EncodedHistories::tokens, "[B, T] int64, PAD on the left of shorter rows.")
      .def_readonly("lengths", &lamia::EncodedHistories::lengths, "[B] int64: real tokens per row (1 + items * (L+1)).")
      .def_readonly("position_ids", &lamia::EncodedHistories::position_ids, "[B, T] int64: 0.. over the real tokens.")
      .def_readonly("key_mask", &lamia::EncodedHistories::key_mask, "[B, T] bool: true on real tokens.")
      .def_readonly("skipped_unknown", &lamia::EncodedHistories::skipped_unknown, "History items the table does not know, skipped.")
      .def_readonly("empty_rows", &lamia::EncodedHistories::empty_rows, "Rows with no known item (only BOS).")
      .def(
          "attention_mask", [](const lamia::EncodedHistories& h) { return lamia::causal_padded_mask(h.key_mask); },
          "[B, T, T] bool: causal_padded_mask(key_mask), the first forward pass's mask.")
      .def("__len__", [](const lamia::EncodedHistories& h) { return h.tokens.defined() ? h.tokens.size(0) : 0; })
      .def("to_dict", [](const lamia::EncodedHistories& h) {
        return py::dict("tokens"_a = h.tokens, "lengths"_a = h.lengths, "position_ids"_a = h.position_ids,
                        "key_mask"_a = h.key_mask, "skipped_unknown"_a = h.skipped_unknown, "empty_rows"_a = h.empty_rows);
      });

  m.def(
      "encode_histories",
      [](const SemanticIdTable& table, const py::object& vocab, const Histories& histories, std::int64_t max_items,
         const OptionalText& item_text, std::int64_t item_text_tokens) {
        const auto v = vocab_arg(vocab, &table, "encode_histories");
        py::gil_scoped_release release;
        if (item_text) return lamia::encode_histories(table, v, histories, max_items, *item_text, item_text_tokens);
        if (item_text_tokens > 0) throw lamia::ValueError("encode_histories: item_text_tokens > 0 needs item_text");
        return lamia::encode_histories(table, v, histories, max_items);
      },
      "table"_a, "vocab"_a, "histories"_a, "max_items"_a = 20, "item_text"_a = py::none(), "item_text_tokens"_a = 0,
      "Encodes each history (oldest first), keeping its last max_items known items (0: all); unknown items "
      "are skipped and counted. vocab: a CodeVocabulary (None: the table's). LM backbone: item_text (one "
      "list of text-token ids per item) and item_text_tokens > 0 write each item's first text tokens before its codes.");
  m.def("causal_padded_mask", &lamia::causal_padded_mask, "key_mask"_a,
        "[B, T, T] bool: row i may attend key j iff j <= i and key_mask[j].");

  // ---- the generative recommender ----
  bind_options<lamia::RecommenderModelOptions>(m, "RecommenderModelOptions",
                                               "Size of the recommender transformer (OPT blocks, pre-LN, tied head).")
      .def_static("preset", &lamia::RecommenderModelOptions::preset, "name"_a,
                  "'trm3l', 'trm6l', 'trm12l': the paper's TRM3L/6L/12L (hidden 128, 4 heads, FFN 512).")
      .def("check", &lamia::RecommenderModelOptions::check, "ValueError naming the first field out of range.");

  m.def(
      "recommender_decoder_options",
      [](const py::object& vocab, const py::object& options, const py::kwargs& kwargs) {
        const auto o = options_from_args<lamia::RecommenderModelOptions>(options, kwargs, "recommender_decoder_options");
        return lamia::recommender_decoder_options(vocab_arg(vocab, nullptr, "recommender_decoder_options"), o);
      },
      "vocab"_a, "options"_a = py::none(), "The DecoderOptions of a recommender for a vocabulary.");
  m.def(
      "make_recommender",
      [](const py::object& vocab, const py::object& options, std::uint64_t seed, const py::kwargs& kwargs) -> DecoderPtr {
        const auto o = options_from_args<lamia::RecommenderModelOptions>(options, kwargs, "make_recommender");
        const auto v = vocab_arg(vocab, nullptr, "make_recommender");
        py::gil_scoped_release release;
        return lamia::make_recommender(v, o, seed).ptr();
      },
      "vocab"_a, "options"_a = py::none(), "seed"_a = 0,
      "A new recommender (a pylamia.Decoder) for vocab (a CodeVocabulary or a SemanticIdTable); options: a "
      "RecommenderModelOptions, a dict, or keywords (hidden_size=32, ...). backbone='lm': vocab from "
      "CodeVocabulary.after_text, from scratch or from pretrained= a Hugging Face OPT folder (lora_rank=).");

  m.def(
      "make_recommender_batch",
      [](const SemanticIdTable& table, const py::object& vocab, const py::object& examples, std::int64_t max_history_items,
         bool loss_on_history, const OptionalText& item_text, std::int64_t item_text_tokens) {
        const auto v = vocab_arg(vocab, &table, "make_recommender_batch");
        const auto ex = examples_from_python(examples, "make_recommender_batch");
        std::vector<const SequenceExample*> ptrs;
        for (const auto& e : ex) ptrs.push_back(&e);
        lamia::RecommenderBatch b;
        {
          py::gil_scoped_release release;
          b = lamia::make_recommender_batch(table, v, ptrs, max_history_items, loss_on_history,
                                            item_text ? &*item_text : nullptr, item_text_tokens);
        }
        return batch_dict(b);
      },
      "table"_a, "vocab"_a, "examples"_a, "max_history_items"_a = 20, "loss_on_history"_a = false,
      "item_text"_a = py::none(), "item_text_tokens"_a = 0,
      "One training batch as a dict: input_ids, position_ids [B, T] int64, attention_mask [B, T, T] bool, labels "
      "[B, T] int64 (-100: no loss), tokens, label_count, skipped_unknown. examples: SequenceExamples or "
      "(history, target) pairs. IndexError for a target the table does not know.");
  m.def(
      "make_alignment_batch",
      [](const SemanticIdTable& table, const CodeVocabulary& vocab, const lamia::ItemTextTokens& item_text,
         const std::vector<ItemIndex>& items, std::int64_t max_text_tokens) {
        lamia::RecommenderBatch b;
        {
          py::gil_scoped_release release;
          b = lamia::make_alignment_batch(table, vocab, item_text, items, max_text_tokens);
        }
        return batch_dict(b);
      },
      "table"_a, "vocab"_a, "item_text"_a, "items"_a, "max_text_tokens"_a = 32,
      "The text-token alignment task's batch (paper Figure 5), a dict as make_recommender_batch's: per item "
      "[bos, its first max_text_tokens text tokens, its L+1 code tokens], labels only on the code tokens. vocab: "
      "the LM backbone's (CodeVocabulary.after_text); item_text: one list of text-token ids per item.");
  m.def(
      "grow_token_embeddings",
      [](lamia::DecoderImpl& model, std::int64_t new_vocab_size, std::uint64_t seed) {
        py::gil_scoped_release release;
        lamia::grow_token_embeddings(model, new_vocab_size, seed);
      },
      "model"_a, "new_vocab_size"_a, "seed"_a = 0,
      "Grows the token embedding (and an untied head): old rows kept, new rows the old rows' mean plus small seeded noise.");
  m.def(
      "recommender_loss",
      [](lamia::DecoderImpl& model, const py::dict& batch) {
        const auto b = batch_from_dict(batch);
        lamia::RecommenderLoss l;
        {
          py::gil_scoped_release release;
          l = lamia::recommender_loss(model, b);
        }
        return py::make_tuple(l.loss, l.correct, l.labels);
      },
      "model"_a, "batch"_a,
      "(loss, correct, labels): the mean cross-entropy over the batch's labels (a scalar tensor with autograd, "
      "for a notebook's own optimizer loop), the argmax-correct labels and the labels counted.");
  m.def(
      "recommender_validation_loss",
      [](lamia::DecoderImpl& model, const SemanticIdTable& table, const py::object& examples,
         std::int64_t max_history_items, std::int64_t batch_size, const py::object& vocab, const OptionalText& item_text,
         std::int64_t item_text_tokens) {
        const auto ex = examples_from_python(examples, "recommender_validation_loss");
        const auto v = vocab_arg(vocab, &table, "recommender_validation_loss");
        py::gil_scoped_release release;
        return lamia::recommender_validation_loss(model, table, v, ex, max_history_items, batch_size,
                                                  item_text ? &*item_text : nullptr, item_text_tokens);
      },
      "model"_a, "table"_a, "examples"_a, "max_history_items"_a = 20, "batch_size"_a = 256, "vocab"_a = py::none(),
      "item_text"_a = py::none(), "item_text_tokens"_a = 0,
      "Mean target-token cross-entropy of examples (eval mode, no gradient; the model's mode is restored). vocab: "
      "the model's layout (None: the table's codes-only one).");

  m.def(
      "prod_ranks",
      [](lamia::DecoderImpl& model, const SemanticIdTable& table, const py::object& examples,
         std::int64_t max_history_items, std::int64_t batch_size, const py::object& vocab) {
        const auto ex = examples_from_python(examples, "prod_ranks");
        const auto v = vocab_arg(vocab, &table, "prod_ranks");
        py::gil_scoped_release release;
        return lamia::prod_ranks(model, table, v, ex, max_history_items, batch_size);
      },
      "model"_a, "table"_a, "examples"_a, "max_history_items"_a = 20, "batch_size"_a = 256, "vocab"_a = py::none(),
      "The authors' (RecBench's) 'prod' rank of each example's target: one teacher-forced pass, the product over "
      "ID levels of the target token's rank among its level's tokens. NOT an item ranking: report it under its own "
      "name (hit@K = prod rank <= K).");

  bind_options<lamia::RecommenderTrainerOptions>(
      m, "RecommenderTrainerOptions",
      "Training of a generative recommender: its batches, then the training loop's options (Adam, early stopping, "
      "checkpoints, progress).");
  m.def(
      "train_recommender",
      [](const DecoderPtr& model, const SemanticIdTable& table, const py::object& train, const py::object& valid,
         const py::object& options, const py::object& vocab, const OptionalText& item_text, const py::kwargs& kwargs) {
        const auto o = options_from_args<lamia::RecommenderTrainerOptions>(options, kwargs, "train_recommender");
        const auto tr = examples_from_python(train, "train_recommender");
        const auto va = examples_from_python(valid, "train_recommender");
        const auto v = vocab_arg(vocab, &table, "train_recommender");
        lamia::TrainingResult r;
        {
          py::gil_scoped_release release;
          r = lamia::train_recommender(lamia::Decoder(model), table, v, tr, va, o,
                                       item_text ? *item_text : lamia::ItemTextTokens{});
        }
        return to_python(training_result_json(r));
      },
      "model"_a, "table"_a, "train"_a, "valid"_a = py::none(), "options"_a = py::none(), "vocab"_a = py::none(),
      "item_text"_a = py::none(),
      "Trains model in place (Adam, early stopping on the valid examples' loss, checkpoints that resume). "
      "options: a RecommenderTrainerOptions, a dict, or its fields as keywords (epochs=5, learning_rate=3e-3, "
      "batch_size=64, patience=3, checkpoint_path='run/rec.ckpt', log_every=0, ...). Returns the training "
      "result as a dict (steps, stop_reason, train_history, validation_history, best_validation_loss, ...). "
      "LM backbone: vocab = its CodeVocabulary.after_text, item_text = one list of text-token ids per item "
      "(item_text_tokens, align_epochs).");

  m.def("table_checksum", &lamia::table_checksum, "table"_a, "FNV-1a 64 of a table's IDs and level sizes: its identity, recorded by tries and saved recommenders.");
  m.def(
      "save_recommender",
      [](const std::filesystem::path& dir, const lamia::DecoderImpl& model, const SemanticIdTable& table,
         const py::object& options, const py::object& vocab, const py::kwargs& kwargs) {
        lamia::RecommenderModelOptions o;
        if (options.is_none() && kwargs.empty()) {
          o = model_options_of(model, table.id_length());
        } else {
          o = options_from_args<lamia::RecommenderModelOptions>(options, kwargs, "save_recommender");
        }
        const auto v = vocab_arg(vocab, &table, "save_recommender");
        py::gil_scoped_release release;
        lamia::save_recommender(dir, model, table, v, o);
      },
      "dir"_a, "model"_a, "table"_a, "options"_a = py::none(), "vocab"_a = py::none(),
      "Writes the decoder as a Hugging Face OPT folder plus recommender.json (vocabulary, model options, "
      "table checksum; LoRA adapters in adapter_model.safetensors). options: the RecommenderModelOptions the model "
      "was made with (None: read back from a codes-backbone model); vocab: its layout (None: the table's codes-only one).");
  m.def(
      "load_recommender",
      [](const std::filesystem::path& dir, const SemanticIdTable& table) {
        lamia::LoadedRecommender r;
        {
          py::gil_scoped_release release;
          r = lamia::load_recommender(dir, table);
        }
        return py::make_tuple(DecoderPtr(r.model.ptr()), r.vocab, r.options);
      },
      "dir"_a, "table"_a,
      "(model, vocab, options) from a folder written by save_recommender; ValueError when it was trained on "
      "another table's IDs.");

  // ---- the trie and the constraints ----
  py::class_<PyTrie>(m, "DeviceTrie", R"doc(
The prefix trie of a SemanticIdTable as flat int64 tensors on a device (CSR, breadth-first):
decoding finds every beam's allowed next tokens with one gather. Refuses a table, vocabulary or
model of another layout with ValueError naming both.)doc")
      .def(py::init([](const SemanticIdTable& table, const py::object& vocab, const py::object& device) {
             const auto v = vocab_arg(vocab, &table, "DeviceTrie");
             const auto d = to_device(device);
             py::gil_scoped_release release;
             return PyTrie{lamia::DeviceTrie(table, v, d), std::make_shared<const SemanticIdTable>(table)};
           }),
           "table"_a, "vocab"_a = py::none(), "device"_a = "cpu",
           "vocab: a CodeVocabulary with the table's layout (None: the table's own); device: where the model lives.")
      .def(
          "to", [](const PyTrie& t, const py::object& device) { return PyTrie{t.trie.to(to_device(device)), t.table}; },
          "device"_a, "A copy on another device.")
      .def_property_readonly("device", [](const PyTrie& t) { return torch_device(t.trie.device()); })
      .def_property_readonly("num_nodes", [](const PyTrie& t) { return t.trie.num_nodes(); })
      .def_property_readonly("num_items", [](const PyTrie& t) { return t.trie.num_items(); })
      .def_property_readonly("id_length", [](const PyTrie& t) { return t.trie.id_length(); }, "L + 1: decoding steps.")
      .def_property_readonly("vocabulary", [](const PyTrie& t) { return t.trie.vocabulary(); })
      .def_property_readonly("checksum", [](const PyTrie& t) { return t.trie.checksum(); })
      .def_property_readonly(
          "table", [](const PyTrie& t) { return *t.table; }, "A copy of the table the trie was built from.")
      .def("depth_begin", [](const PyTrie& t, std::int64_t d) { return t.trie.depth_begin(d); }, "depth"_a)
      .def("depth_size", [](const PyTrie& t, std::int64_t d) { return t.trie.depth_size(d); }, "depth"_a)
      .def("max_children", [](const PyTrie& t, std::int64_t d) { return t.trie.max_children(d); }, "depth"_a)
      .def_property_readonly("first_child", [](const PyTrie& t) { return t.trie.first_child(); })
      .def_property_readonly("num_children", [](const PyTrie& t) { return t.trie.num_children(); })
      .def_property_readonly("edge_token", [](const PyTrie& t) { return t.trie.edge_token(); })
      .def_property_readonly("leaf_item", [](const PyTrie& t) { return t.trie.leaf_item(); })
      .def_property_readonly("item_count", [](const PyTrie& t) { return t.trie.item_count(); })
      .def_property_readonly("parent", [](const PyTrie& t) { return t.trie.parent(); })
      .def_property_readonly("item_leaf", [](const PyTrie& t) { return t.trie.item_leaf(); })
      .def(
          "children",
          [](const PyTrie& t, const torch::Tensor& nodes, std::int64_t depth) {
            auto c = t.trie.children(nodes, depth);
            return py::make_tuple(c.nodes, c.valid);
          },
          "nodes"_a, "depth"_a, "(nodes [M, C], valid [M, C]): the children of nodes of one depth, padded.")
      .def(
          "find_items", [](const PyTrie& t, const torch::Tensor& tokens) { return t.trie.find_items(tokens); }, "tokens"_a,
          "The items whose IDs are tokens ([..., L+1] vocabulary tokens), -1 where none.")
      .def("layout", [](const PyTrie& t) { return t.trie.layout(); })
      .def(
          "check_table", [](const PyTrie& t, const SemanticIdTable& table) { t.trie.check_table(table); }, "table"_a,
          "ValueError naming both layouts unless table is the one this trie was built from.")
      .def(
          "check_vocabulary", [](const PyTrie& t, const CodeVocabulary& v) { t.trie.check_vocabulary(v); }, "vocab"_a)
      .def(
          "check_model", [](const PyTrie& t, const lamia::DecoderImpl& model) { t.trie.check_model(model.options().vocab_size(), model.device()); }, "model"_a,
          "ValueError unless the model's vocabulary and device match this trie.")
      .def("__repr__", [](const PyTrie& t) { return fmt::format("DeviceTrie({}, device={})", t.trie.layout(), t.trie.device().str()); });

  py::class_<lamia::ItemConstraint, std::shared_ptr<lamia::ItemConstraint>>(
      m, "ItemConstraint", "One link of a ConstraintSet: bans some items per user (the trie is always applied).")
      .def_property_readonly("name", &lamia::ItemConstraint::name)
      .def("__repr__", &lamia::ItemConstraint::name);
  py::class_<lamia::ExcludeHistory, lamia::ItemConstraint, std::shared_ptr<lamia::ExcludeHistory>>(
      m, "ExcludeHistory",
      "Bans each user's history items: those encoded in the histories (default), or explicit per-user lists.")
      .def(py::init([](const std::optional<Histories>& lists) {
             return lists ? std::make_shared<lamia::ExcludeHistory>(*lists) : std::make_shared<lamia::ExcludeHistory>();
           }),
           "per_user_items"_a = py::none());
  py::class_<lamia::DenyItems, lamia::ItemConstraint, std::shared_ptr<lamia::DenyItems>>(
      m, "DenyItems", "Bans a list of items for every user, or one list per history row (per_user).")
      .def(py::init([](const std::vector<ItemIndex>& items) { return std::make_shared<lamia::DenyItems>(items); }), "items"_a)
      .def_static(
          "per_user", [](const Histories& lists) { return std::make_shared<lamia::DenyItems>(lamia::DenyItems::per_user(lists)); },
          "lists"_a);
  py::class_<lamia::AllowItems, lamia::ItemConstraint, std::shared_ptr<lamia::AllowItems>>(
      m, "AllowItems", "Bans every item not in a list: one list for every user, or one per history row (per_user).")
      .def(py::init([](const std::vector<ItemIndex>& items) { return std::make_shared<lamia::AllowItems>(items); }), "items"_a)
      .def_static(
          "per_user", [](const Histories& lists) { return std::make_shared<lamia::AllowItems>(lamia::AllowItems::per_user(lists)); },
          "lists"_a);

  py::class_<lamia::ConstraintSet>(m, "ConstraintSet", R"doc(
A chain of item constraints on top of the trie: an item is banned when any link bans it.
ConstraintSet().add(ExcludeHistory()).add(DenyItems([3, 17])).)doc")
      .def(py::init([](const py::object& links) { return constraints_arg(links); }), "constraints"_a = py::none(),
           "None, an ItemConstraint or a list of them.")
      .def(
          "add",
          [](py::object self, const std::shared_ptr<lamia::ItemConstraint>& c) {
            self.cast<lamia::ConstraintSet&>().add(std::shared_ptr<const lamia::ItemConstraint>(c));
            return self;
          },
          "constraint"_a, "Appends a link; returns self.")
      .def_property_readonly("empty", &lamia::ConstraintSet::empty)
      .def("__len__", [](const lamia::ConstraintSet& s) { return s.links().size(); })
      .def("describe", &lamia::ConstraintSet::describe, "'trie' or 'trie, ExcludeHistory, DenyItems(2 items)'.")
      .def("__repr__", [](const lamia::ConstraintSet& s) { return "ConstraintSet(" + s.describe() + ")"; })
      .def(
          "banned_items",
          [](const lamia::ConstraintSet& s, const PyTrie& trie, const py::object& histories, std::int64_t max_items) {
            lamia::EncodedHistories h = py::isinstance<lamia::EncodedHistories>(histories)
                                            ? histories.cast<lamia::EncodedHistories>()
                                            : lamia::encode_histories(*trie.table, trie.trie.vocabulary(),
                                                                      histories.cast<Histories>(), max_items);
            py::gil_scoped_release release;
            const lamia::ConstraintContext ctx{trie.trie, h, 0, h.tokens.size(0)};
            return s.banned_items(ctx);
          },
          "trie"_a, "histories"_a, "max_items"_a = 20,
          "[B, num_items] bool on the trie's device: the items banned for each user (e.g. to mask score_all_items).");

  // ---- decoding ----
  bind_options<lamia::BeamSearchOptions>(m, "BeamSearchOptions", "Trie-constrained beam search (batched, KV cache).");
  bind_options<lamia::ExactScoringOptions>(m, "ExactScoringOptions", "Exact full-catalog scoring by walking the trie.");

  m.def(
      "beam_search",
      [](lamia::DecoderImpl& model, const PyTrie& trie, const py::object& histories, const py::object& options,
         const py::object& constraints, std::optional<std::int64_t> max_history_items, const py::kwargs& kwargs) {
        const auto o = options_from_args<lamia::BeamSearchOptions>(options, kwargs, "beam_search");
        const auto cs = constraints_arg(constraints);
        const auto h = histories_arg(histories, trie, model, max_history_items);
        lamia::BeamSearchResult r;
        {
          py::gil_scoped_release release;
          r = lamia::beam_search(model, trie.trie, h, o, cs);
        }
        return py::dict("items"_a = r.items, "scores"_a = r.scores, "counts"_a = r.counts,
                        "stats"_a = py::dict("forward_calls"_a = r.stats.forward_calls,
                                             "forward_seconds"_a = r.stats.forward_seconds,
                                             "total_seconds"_a = r.stats.total_seconds));
      },
      "model"_a, "trie"_a, "histories"_a, "options"_a = py::none(), "constraints"_a = py::none(), py::kw_only(),
      "max_history_items"_a = py::none(),
      "The top-K distinct real items per user. histories: lists of items (oldest first; the last "
      "max_history_items kept, default: what the model's positions hold) or EncodedHistories. options: a "
      "BeamSearchOptions, a dict, or its fields as keywords (top_k=10, beam_width=20, ...). constraints: None, "
      "a ConstraintSet, an ItemConstraint or a list. Returns a dict: items [B, K] int64 (best first, -1 after "
      "a user's last), scores [B, K] float32 log-probabilities, counts [B], stats.");
  m.def(
      "score_all_items",
      [](lamia::DecoderImpl& model, const PyTrie& trie, const py::object& histories, const py::object& options,
         std::optional<std::int64_t> max_history_items, const py::kwargs& kwargs) {
        const auto o = options_from_args<lamia::ExactScoringOptions>(options, kwargs, "score_all_items");
        const auto h = histories_arg(histories, trie, model, max_history_items);
        py::gil_scoped_release release;
        return lamia::score_all_items(model, trie.trie, h, o);
      },
      "model"_a, "trie"_a, "histories"_a, "options"_a = py::none(), py::kw_only(), "max_history_items"_a = py::none(),
      "[B, num_items] float32 on the trie's device: log p(item's ID | history) for every item and user.");
  m.def("beam_exact_agreement", &lamia::beam_exact_agreement, "beam_items"_a, "exact_scores"_a, "k"_a,
        "Share of users whose beam top-k set equals the exact top-k set (-inf exact scores never count).");

  // ---- SASRec ----
  bind_options<lamia::SasRecOptions>(m, "SasRecOptions", "SASRec, the ID-based baseline (OPT blocks, tied item embeddings).");
  bind_options<lamia::SasRecTrainerOptions>(m, "SasRecTrainerOptions",
                                            "Training of SASRec: its batches, then the training loop's options.");
  py::class_<lamia::SasRec>(m, "SasRec", R"doc(
SASRec (Kang & McAuley 2018): a causal transformer over item ids predicting the next item at every
position; loss cross_entropy (full softmax) or bce (sampled negatives). Tokens: 0 pad, 1 start, item i = 2 + i.)doc")
      .def(py::init([](std::int64_t num_items, const py::object& options, std::uint64_t seed, const py::kwargs& kwargs) {
             const auto o = options_from_args<lamia::SasRecOptions>(options, kwargs, "SasRec");
             py::gil_scoped_release release;
             return lamia::SasRec(num_items, o, seed);
           }),
           "num_items"_a, "options"_a = py::none(), "seed"_a = 0,
           "options: a SasRecOptions, a dict, or its fields as keywords (hidden_size=64, loss='bce', ...).")
      .def(
          "score",
          [](lamia::SasRec& s, const Histories& histories, std::int64_t batch_size) {
            py::gil_scoped_release release;
            return s.score(histories, batch_size);
          },
          "histories"_a, "batch_size"_a = 256,
          "[B, num_items] float32 scores of every item after each history (eval mode, no gradient).")
      .def(
          "loss",
          [](lamia::SasRec& s, const Histories& sequences) {
            std::vector<const std::vector<ItemIndex>*> ptrs;
            for (const auto& q : sequences) ptrs.push_back(&q);
            py::gil_scoped_release release;
            return s.loss(ptrs);
          },
          "sequences"_a, "The training loss of sequences (a scalar tensor with autograd), for a notebook's own loop.")
      .def_property_readonly(
          "model", [](const lamia::SasRec& s) { return DecoderPtr(s.model.ptr()); }, "The transformer (a pylamia.Decoder).")
      .def_property_readonly("num_items", &lamia::SasRec::num_items)
      .def_property_readonly("options", [](const lamia::SasRec& s) { return s.options(); });

  m.def(
      "sequences_of",
      [](const py::object& examples) { return lamia::sequences_of(examples_from_python(examples, "sequences_of")); },
      "examples"_a, "One training sequence per user: the longest history + [target] among the user's examples.");
  m.def(
      "train_sasrec",
      [](lamia::SasRec& model, const Histories& sequences, const py::object& valid, const py::object& options,
         const py::kwargs& kwargs) {
        const auto o = options_from_args<lamia::SasRecTrainerOptions>(options, kwargs, "train_sasrec");
        const auto va = examples_from_python(valid, "train_sasrec");
        lamia::TrainingResult r;
        {
          py::gil_scoped_release release;
          r = lamia::train_sasrec(model, sequences, va, o);
        }
        return to_python(training_result_json(r));
      },
      "model"_a, "sequences"_a, "valid"_a = py::none(), "options"_a = py::none(),
      "Trains in place on sequences (e.g. sequences_of(train)); validation loss = mean full-softmax cross-entropy "
      "of the valid examples. options: a SasRecTrainerOptions, a dict, or its fields as keywords. Returns the "
      "training result as a dict.");
  m.def(
      "save_sasrec",
      [](const std::filesystem::path& dir, const lamia::SasRec& model) {
        py::gil_scoped_release release;
        lamia::save_sasrec(dir, model);
      },
      "dir"_a, "model"_a, "Writes the transformer as a Hugging Face OPT folder plus sasrec.json.");
  m.def(
      "load_sasrec",
      [](const std::filesystem::path& dir) {
        py::gil_scoped_release release;
        return lamia::load_sasrec(dir);
      },
      "dir"_a, "Loads a folder written by save_sasrec; ValueError naming the file when it is not one.");
}
