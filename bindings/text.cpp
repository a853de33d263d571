// Tokenizers: Tokenizer, ByteLevelBpeTokenizer, load_tokenizer, train_bpe.
#include "options.hpp"
#include "registry.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/text.hpp>

#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <memory>

namespace py = pybind11;
using lamia::TokenId;

namespace {

// str -> UTF-8; bytes -> as is (any bytes, invalid UTF-8 included).
std::string text_arg(const py::handle& text) {
  if (py::isinstance<py::bytes>(text)) return text.cast<std::string>();
  if (py::isinstance<py::str>(text)) return text.cast<std::string>();
  throw py::type_error("text must be str or bytes, got " + std::string(py::str(py::type::of(text).attr("__name__"))));
}

py::str decode_to_str(const std::string& bytes, const std::string& errors) {
  PyObject* s = PyUnicode_DecodeUTF8(bytes.data(), static_cast<Py_ssize_t>(bytes.size()), errors.c_str());
  if (!s) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

std::vector<std::string> texts_arg(const py::iterable& texts) {
  std::vector<std::string> out;
  for (const py::handle& t : texts) out.push_back(text_arg(t));
  return out;
}

}  // namespace

LAMIA_REGISTER_BINDINGS(kOrderText, text) {
  using lamia::ByteLevelBpeTokenizer;
  using lamia::Tokenizer;

  py::class_<Tokenizer, std::shared_ptr<Tokenizer>>(m, "Tokenizer", R"doc(
A tokenizer: text <-> token ids. encode() adds no special tokens and treats
special-token strings in the text as plain text; encode(text, parse_special=True)
maps them to their ids; encode_with_special_tokens() also adds bos/eos as the
model expects (OPT: bos first). Added tokens get ids after the base vocabulary.)doc")
      .def(
          "encode",
          [](const Tokenizer& t, const py::object& text, bool parse_special) {
            const std::string s = text_arg(text);
            py::gil_scoped_release release;
            return t.encode(s, parse_special);
          },
          py::arg("text"), py::arg("parse_special") = false,
          "Token ids of text (str, or bytes of any content). parse_special: map added/special token strings to their ids.")
      .def(
          "encode_with_special_tokens",
          [](const Tokenizer& t, const py::object& text) {
            const std::string s = text_arg(text);
            py::gil_scoped_release release;
            return t.encode_with_special_tokens(s);
          },
          py::arg("text"), "encode(text, parse_special=True) with bos/eos added when the tokenizer adds them.")
      .def(
          "encode_batch",
          [](const Tokenizer& t, const py::iterable& texts, bool parse_special) {
            const std::vector<std::string> all = texts_arg(texts);
            py::gil_scoped_release release;
            std::vector<std::vector<TokenId>> out;
            out.reserve(all.size());
            for (const auto& s : all) out.push_back(t.encode(s, parse_special));
            return out;
          },
          py::arg("texts"), py::arg("parse_special") = false, "encode() of each text, without the GIL.")
      .def(
          "decode",
          [](const Tokenizer& t, const std::vector<TokenId>& ids, const std::string& errors) {
            std::string bytes;
            {
              py::gil_scoped_release release;
              bytes = t.decode(ids);
            }
            return decode_to_str(bytes, errors);
          },
          py::arg("ids"), py::arg("errors") = "replace",
          "The text of ids. Bytes that are not valid UTF-8 (ids that split a character) are handled by errors, as in "
          "bytes.decode: 'replace' (U+FFFD), 'strict' (UnicodeDecodeError), 'surrogateescape', ...")
      .def(
          "decode_bytes",
          [](const Tokenizer& t, const std::vector<TokenId>& ids) { return py::bytes(t.decode(ids)); },
          py::arg("ids"), "The exact bytes of ids.")
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size, "Number of ids, added tokens included.")
      .def("__len__", &Tokenizer::vocab_size)
      .def("add_special_token", &Tokenizer::add_special_token, py::arg("token"),
           "Registers a special token (never split, never produced by merges); returns its id: the existing one, or "
           "the next id after the vocabulary.")
      .def("token_to_id", &Tokenizer::token_to_id, py::arg("token"),
           "Id of a token in its stored spelling (byte-level BPE: 'Ġthe'), or None.")
      .def("id_to_token", &Tokenizer::id_to_token, py::arg("id"), "Stored spelling of a token; IndexError if unknown.")
      .def_property_readonly("added_tokens", &Tokenizer::added_tokens, "Special/added token strings, in id order.")
      .def_property_readonly("bos_token_id", [](const Tokenizer& t) { return t.special_tokens().bos; })
      .def_property_readonly("eos_token_id", [](const Tokenizer& t) { return t.special_tokens().eos; })
      .def_property_readonly("pad_token_id", [](const Tokenizer& t) { return t.special_tokens().pad; })
      .def_property_readonly("unk_token_id", [](const Tokenizer& t) { return t.special_tokens().unk; })
      .def_property_readonly("add_bos_token", &Tokenizer::add_bos_token)
      .def_property_readonly("add_eos_token", &Tokenizer::add_eos_token)
      .def("save", &Tokenizer::save, py::arg("directory"),
           "Writes vocab.json, merges.txt, added_tokens.json, special_tokens_map.json and tokenizer_config.json "
           "(each atomically) to directory.");

  py::class_<ByteLevelBpeTokenizer, Tokenizer, std::shared_ptr<ByteLevelBpeTokenizer>>(
      m, "ByteLevelBpeTokenizer", "GPT-2 / OPT byte-level BPE.")
      .def_static(
          "from_files",
          [](const std::filesystem::path& vocab, const std::filesystem::path& merges) {
            return std::shared_ptr<ByteLevelBpeTokenizer>(ByteLevelBpeTokenizer::from_files(vocab, merges));
          },
          py::arg("vocab_json"), py::arg("merges_txt"), "Loads GPT-2's vocab.json (encoder.json) and merges.txt (vocab.bpe).")
      .def_property_readonly("num_merges", &ByteLevelBpeTokenizer::num_merges)
      .def_property_readonly("base_vocab_size", &ByteLevelBpeTokenizer::base_vocab_size,
                             "Ids below this come from the vocabulary; the rest were added.");

  m.def(
      "load_tokenizer",
      [](const std::filesystem::path& directory) {
        return std::shared_ptr<Tokenizer>(lamia::load_tokenizer(directory));
      },
      py::arg("directory"),
      "Loads a Hugging Face tokenizer folder (tokenizer.json, or vocab.json + merges.txt, plus added_tokens.json, "
      "special_tokens_map.json, tokenizer_config.json). OSError if unreadable, ValueError (naming file, line, field) "
      "if malformed or not byte-level BPE.");

  lamia::python::bind_options<lamia::BpeTrainerOptions>(m, "BpeTrainerOptions",
                                                       "Training of a byte-level BPE vocabulary (train_bpe).");
  m.def(
      "train_bpe",
      [](const py::iterable& texts, const py::object& options, const py::kwargs& kwargs) {
        const auto o = lamia::python::options_from_args<lamia::BpeTrainerOptions>(options, kwargs, "train_bpe");
        const std::vector<std::string> all = texts_arg(texts);
        py::gil_scoped_release release;
        return std::make_shared<ByteLevelBpeTokenizer>(lamia::train_bpe(all, o));
      },
      py::arg("texts"), py::arg("options") = py::none(),
      R"doc(Trains a byte-level BPE tokenizer on texts (GPT-2 pre-tokenization); options: a
BpeTrainerOptions or a dict, and/or its fields as keywords (vocab_size=4096, ...).
Vocabulary: special tokens first (default <s>, <pad>, </s>, <unk>, OPT's order;
role tokens are added when missing; pass "" for no such role), then the 256
bytes, then one token per merge, up to vocab_size. A pair must occur
min_frequency times to be merged; ties go to the smaller (left id, right id).)doc");
}
