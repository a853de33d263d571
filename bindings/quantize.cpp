// pylamia: the quantize component (palette quantizer, semantic-ID table,
// residual K-Means, RQ-VAE, TF-IDF embeddings, diagnostics). Tensors cross as
// torch.Tensor; inputs are float32 CPU (copied only when not contiguous), outputs
// are new tensors. fit/encode/train release the GIL.
#include "options.hpp"
#include "registry.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/quantize.hpp>

#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>
#include <torch/extension.h>

#include <sstream>

namespace py = pybind11;
using namespace pybind11::literals;

namespace {

using lamia::python::options_from_args;
using lamia::python::to_python;

// A palette source from Python: a tensor (n x L x D), or an object with num_items, palette_size,
// dim and read_into(begin, end, out) or read(begin, end), such as pylamia.PaletteFileReader.
// read() runs with the GIL taken back; the quantizer itself runs without it.
lamia::PaletteSource palette_source(const py::object& palettes, std::int64_t chunk_items, torch::Tensor& keep) {
  if (THPVariable_Check(palettes.ptr())) {
    keep = palettes.cast<torch::Tensor>();
    auto s = lamia::PaletteSource::from_tensor(keep);
    s.chunk_items = chunk_items;
    return s;
  }
  for (const char* attr : {"num_items", "palette_size", "dim"}) {
    if (!py::hasattr(palettes, attr)) {
      throw lamia::ValueError(std::string("palettes must be a tensor (n x L x D) or a reader with num_items, "
                                          "palette_size, dim and read(begin, end) such as PaletteFileReader; "
                                          "missing '") + attr + "'");
    }
  }
  lamia::PaletteSource s;
  s.num_items = palettes.attr("num_items").cast<std::int64_t>();
  s.num_positions = palettes.attr("palette_size").cast<std::int64_t>();
  s.dim = palettes.attr("dim").cast<std::int64_t>();
  s.chunk_items = chunk_items;
  const bool into = py::hasattr(palettes, "read_into");
  auto buffer = std::make_shared<torch::Tensor>();
  s.read = [palettes, into, buffer, L = s.num_positions, D = s.dim](std::int64_t begin, std::int64_t end) {
    py::gil_scoped_acquire gil;
    if (!into) return palettes.attr("read")(begin, end).cast<torch::Tensor>();
    if (!buffer->defined() || buffer->size(0) < end - begin) *buffer = torch::empty({end - begin, L, D});
    auto out = buffer->narrow(0, 0, end - begin);
    palettes.attr("read_into")(begin, end, out);
    return out;
  };
  return s;
}

py::dict pca_dict(const lamia::Pca& p) {
  auto t = [](const auto& v, std::vector<std::int64_t> shape, auto dtype) {
    return torch::from_blob(const_cast<void*>(static_cast<const void*>(v.data())), shape, dtype).clone();
  };
  return py::dict("mean"_a = t(p.mean, {p.input_dim}, torch::kFloat32),
                  "components"_a = t(p.components, {p.output_dim, p.input_dim}, torch::kFloat32),
                  "explained_variance"_a = t(p.explained_variance, {p.output_dim}, torch::kFloat64),
                  "explained_variance_ratio"_a = p.explained_variance_ratio(),
                  "total_variance"_a = p.total_variance);
}

std::vector<std::int64_t> optional_sizes(const std::optional<std::vector<std::int64_t>>& s) {
  return s ? *s : std::vector<std::int64_t>{};
}

}  // namespace

namespace {

// tfidf_svd_embeddings for texts or a Catalog: the same options either way.
template <typename Input>
torch::Tensor tfidf_svd(const Input& input, const py::object& options, const py::kwargs& kwargs) {
  auto o = options_from_args<lamia::TfidfSvdOptions>(options, kwargs, "tfidf_svd_embeddings");
  py::gil_scoped_release release;
  return lamia::tfidf_svd_embeddings(input, o).embeddings;
}

}  // namespace

LAMIA_REGISTER_BINDINGS(kOrderQuantize, quantize) {
  using lamia::SemanticIdTable;
  using Tokens = std::vector<SemanticIdTable::Token>;
  using lamia::python::bind_options;

  bind_options<lamia::KMeansOptions>(m, "KMeansOptions", "K-Means (faiss) with seeded restarts; the best final objective is kept.");
  bind_options<lamia::PcaOptions>(m, "PcaOptions", "How a PCA is fitted: exact or randomized solver, on all items or a sample.");
  bind_options<lamia::PaletteQuantizerOptions>(m, "PaletteQuantizerOptions",
                                               "LAMIA's quantizer: per palette position PCA (D -> pca_dim), then K-Means.");
  bind_options<lamia::ResidualKMeansOptions>(m, "ResidualKMeansOptions", "Residual K-Means baseline: L levels of K-Means on residuals.");
  bind_options<lamia::TfidfSvdOptions>(m, "TfidfSvdOptions", "TF-IDF (sklearn's defaults) + randomised truncated SVD.");
  bind_options<lamia::RqVaeTrainOptions>(m, "RqVaeTrainOptions", "Training of an RQ-VAE: Adam, early stopping, dead-code resets.");
  bind_options<lamia::PaletteDiagnosticsOptions>(m, "PaletteDiagnosticsOptions",
                                                "Palette diagnostics: the ridge probes' penalty, held-out share, seed and item cap.");

  py::class_<SemanticIdTable>(m, "SemanticIdTable", R"doc(
Items <-> semantic IDs (L codes + 1 index token), with a prefix trie.

Items sharing all L codes get index tokens 0, 1, 2, ... in the order of a seeded hash of
the item index (never row or popularity order); a new item
(add_item) takes the next free index token of its group, so existing IDs never change.)doc")
      .def_static(
          "from_codes",
          [](const torch::Tensor& codes, std::optional<std::vector<std::int64_t>> sizes) {
            return SemanticIdTable::from_codes(codes, optional_sizes(sizes));
          },
          "codes"_a, "codebook_sizes"_a = py::none(),
          "Builds the table from n x L integer codes; codebook_sizes defaults to max code + 1 per position.")
      .def_static("load", &SemanticIdTable::load, "path"_a,
                  "Reads a table file; ValueError naming the file for a corrupted one, OSError when unreadable.")
      .def("save", &SemanticIdTable::save, "path"_a, "Writes the binary format atomically.")
      .def(
          "dump", [](const SemanticIdTable& t) { return t.dump(); }, "Readable text: one 'item<TAB>id' line per item.")
      .def(
          "dump_to", [](const SemanticIdTable& t, const std::filesystem::path& p) { t.dump(p); }, "path"_a,
          "Writes dump() to a file atomically.")
      .def_property_readonly("num_items", &SemanticIdTable::num_items)
      .def_property_readonly("num_levels", &SemanticIdTable::num_levels)
      .def_property_readonly("id_length", &SemanticIdTable::id_length)
      .def_property_readonly("codebook_sizes", &SemanticIdTable::codebook_sizes,
                             "L + 1 vocabulary sizes; the last is the index token's (largest collision group).")
      .def_property_readonly("num_colliding_items", &SemanticIdTable::num_colliding_items)
      .def_property_readonly("num_unique_codes", &SemanticIdTable::num_unique_codes)
      .def_property_readonly("num_nodes", &SemanticIdTable::num_nodes)
      .def("__len__", &SemanticIdTable::num_items)
      .def("__eq__", [](const SemanticIdTable& a, const SemanticIdTable& b) { return a == b; })
      .def("id", &SemanticIdTable::id, "item"_a, "The L+1 tokens of an item; IndexError when unknown.")
      .def("ids", &SemanticIdTable::ids, "All IDs, n x (L+1) int64.")
      .def("codes", &SemanticIdTable::codes, "All L codes, n x L int64.")
      .def("item", &SemanticIdTable::item, "id"_a, "The item with this ID; IndexError when none.")
      .def("find", &SemanticIdTable::find, "id"_a, "The item with this ID, or None.")
      .def("items_with_prefix", &SemanticIdTable::items_with_prefix, "prefix"_a, "Items whose ID starts with prefix.")
      .def("allowed_next", &SemanticIdTable::allowed_next, "prefix"_a,
           "Tokens that may follow prefix, ascending (empty for a full or unknown prefix).")
      .def(
          "walk", [](const SemanticIdTable& t, const Tokens& prefix) { return t.walk(prefix.data(), prefix.size()); },
          "prefix"_a, "Trie node of a prefix (-1 when absent).")
      .def("child", &SemanticIdTable::child, "node"_a, "token"_a)
      .def(
          "children",
          [](const SemanticIdTable& t, SemanticIdTable::Node node) {
            auto c = t.children(node);
            return py::make_tuple(Tokens(c.tokens, c.tokens + c.size), c.first);
          },
          "node"_a, "(tokens, first child node) of a trie node; child i is node first + i.")
      .def("add_item", &SemanticIdTable::add_item, "codes"_a,
           "Appends an item with these L codes (next free index token); returns its index.");

  py::class_<lamia::PaletteQuantizer>(m, "PaletteQuantizer", R"doc(
LAMIA's training-free quantizer: per palette position, PCA (D -> pca_dim) then
K-Means (faiss, num_codes centroids); a code is the nearest centroid.)doc")
      .def(py::init([](const py::object& options, const py::kwargs& kwargs) {
             return lamia::PaletteQuantizer(
                 options_from_args<lamia::PaletteQuantizerOptions>(options, kwargs, "PaletteQuantizer", true));
           }),
           py::arg("options") = py::none(),
           "options: a PaletteQuantizerOptions or a dict; keywords set its fields, the K-Means ones directly "
           "(PaletteQuantizer(pca_dim=64, num_codes=256) sets kmeans.num_codes).")
      .def(
          "fit",
          [](lamia::PaletteQuantizer& q, const py::object& palettes, std::int64_t chunk_items) {
            torch::Tensor keep;
            const auto source = palette_source(palettes, chunk_items, keep);
            lamia::PaletteFitReport r;
            {
              py::gil_scoped_release release;
              r = q.fit(source);
            }
            return to_python(r.to_json());
          },
          "palettes"_a, py::kw_only(), "chunk_items"_a = 4096,
          "Fits on n x L x D float32 palettes, or on a PaletteFileReader one chunk of items at a time "
          "(three passes); returns the fit report as a dict.")
      .def(
          "encode",
          [](const lamia::PaletteQuantizer& q, const py::object& palettes, std::int64_t chunk_items) {
            torch::Tensor keep;
            const auto source = palette_source(palettes, chunk_items, keep);
            py::gil_scoped_release release;
            return q.encode(source);
          },
          "palettes"_a, py::kw_only(), "chunk_items"_a = 4096,
          "Codes (m x L int64) of m x L x D palettes (a tensor or a PaletteFileReader), without refitting.")
      .def("training_codes", &lamia::PaletteQuantizer::training_codes)
      .def("table", &lamia::PaletteQuantizer::table, "The semantic-ID table of the training items.")
      .def("centroids", &lamia::PaletteQuantizer::centroids, "position"_a)
      .def(
          "pca", [](const lamia::PaletteQuantizer& q, std::int64_t j) { return pca_dict(q.pca(j)); }, "position"_a,
          "dict: mean, components (d x D), explained_variance, explained_variance_ratio, total_variance.")
      .def("save", &lamia::PaletteQuantizer::save, "path"_a)
      .def_static("load", &lamia::PaletteQuantizer::load, "path"_a)
      .def_property_readonly("fitted", &lamia::PaletteQuantizer::fitted)
      .def_property_readonly("num_positions", &lamia::PaletteQuantizer::num_positions)
      .def_property_readonly("input_dim", &lamia::PaletteQuantizer::input_dim)
      .def_property_readonly("reduced_dim", &lamia::PaletteQuantizer::reduced_dim)
      .def_property_readonly("codebook_sizes", &lamia::PaletteQuantizer::codebook_sizes)
      .def_property_readonly("report", [](const lamia::PaletteQuantizer& q) { return to_python(q.report().to_json()); })
      .def_property_readonly("options", &lamia::PaletteQuantizer::options, "The PaletteQuantizerOptions (a copy).");

  m.def(
      "kmeans",
      [](const torch::Tensor& x, const py::object& options, const py::kwargs& kwargs) {
        auto xc = x;
        TORCH_CHECK_VALUE(x.dim() == 2 && x.scalar_type() == torch::kFloat32 && x.device().is_cpu(),
                          "kmeans: x must be a 2-D float32 CPU tensor, got ", x.dim(), "-D ", x.scalar_type());
        xc = x.contiguous();
        const auto o = options_from_args<lamia::KMeansOptions>(options, kwargs, "kmeans");
        lamia::KMeansResult r;
        {
          py::gil_scoped_release release;
          r = lamia::kmeans(xc.data_ptr<float>(), xc.size(0), xc.size(1), o);
        }
        auto cents = torch::from_blob(r.centroids.data(), {r.num_codes, r.dim}, torch::kFloat32).clone();
        auto assign = torch::from_blob(r.assignment.data(), {xc.size(0)}, torch::kInt32).to(torch::kInt64);
        return py::dict("centroids"_a = cents, "assignment"_a = assign, "objective"_a = r.objective,
                        "best_restart"_a = r.best_restart, "inertia"_a = r.inertia);
      },
      "x"_a, "options"_a = py::none(),
      "K-Means (faiss) with a KMeansOptions (or a dict, or its fields as keywords) of n x d float32 rows: dict with centroids, assignment, objective (per restart, per "
      "iteration), best_restart, inertia.");

  py::class_<lamia::ResidualKMeans>(m, "ResidualKMeans", "Training-free residual K-Means baseline (L levels of k).")
      .def(py::init([](const py::object& options, const py::kwargs& kwargs) {
             return lamia::ResidualKMeans(
                 options_from_args<lamia::ResidualKMeansOptions>(options, kwargs, "ResidualKMeans", true));
           }),
           py::arg("options") = py::none(),
           "options: a ResidualKMeansOptions or a dict; keywords set its fields, the K-Means ones directly.")
      .def(
          "fit",
          [](lamia::ResidualKMeans& rk, const torch::Tensor& x) {
            lamia::ResidualKMeansReport r;
            {
              py::gil_scoped_release release;
              r = rk.fit(x);
            }
            return to_python(r.to_json());
          },
          "embeddings"_a)
      .def("encode", &lamia::ResidualKMeans::encode, "embeddings"_a, py::call_guard<py::gil_scoped_release>())
      .def("reconstruct", &lamia::ResidualKMeans::reconstruct, "codes"_a)
      .def("codebook", &lamia::ResidualKMeans::codebook, "level"_a)
      .def("training_codes", &lamia::ResidualKMeans::training_codes)
      .def("table", &lamia::ResidualKMeans::table)
      .def_property_readonly("codebook_sizes", &lamia::ResidualKMeans::codebook_sizes)
      .def_property_readonly("options", &lamia::ResidualKMeans::options, "The ResidualKMeansOptions (a copy).");

  m.def(
      "residual_kmeans",
      [](const torch::Tensor& x, const py::object& options, const py::kwargs& kwargs) {
        const auto o = options_from_args<lamia::ResidualKMeansOptions>(options, kwargs, "residual_kmeans", true);
        py::gil_scoped_release release;
        return lamia::residual_kmeans(x, o);
      },
      "embeddings"_a, "options"_a = py::none(),
      "Fits residual K-Means on n x D embeddings and returns the SemanticIdTable.");

  py::class_<lamia::RqVae>(m, "RqVae", "TIGER's RQ-VAE: MLP encoder/decoder, residual codebooks, straight-through.")
      .def(py::init([](std::int64_t input_dim, std::vector<std::int64_t> hidden_dims, std::int64_t latent_dim,
                       std::int64_t num_levels, std::int64_t num_codes, double beta, std::uint64_t seed) {
             return lamia::RqVae(lamia::RqVaeOptions(input_dim)
                                     .hidden_dims(hidden_dims)
                                     .latent_dim(latent_dim)
                                     .num_levels(num_levels)
                                     .num_codes(num_codes)
                                     .beta(beta)
                                     .seed(seed));
           }),
           "input_dim"_a, py::kw_only(), "hidden_dims"_a = std::vector<std::int64_t>{512, 256, 128},
           "latent_dim"_a = 32, "num_levels"_a = 3, "num_codes"_a = 256, "beta"_a = 0.25, "seed"_a = 0)
      .def(
          "train",
          [](lamia::RqVae& model, const torch::Tensor& x, const py::object& options, const py::kwargs& kwargs) {
            const auto o = options_from_args<lamia::RqVaeTrainOptions>(options, kwargs, "RqVae.train");
            lamia::RqVaeTrainReport r;
            {
              py::gil_scoped_release release;
              r = lamia::train_rq_vae(model, x, o);
            }
            return to_python(r.to_json());
          },
          "embeddings"_a, "options"_a = py::none(),
          "Trains with Adam and early stopping (RqVaeTrainOptions, a dict, or its fields as keywords); returns the "
          "training report as a dict.")
      .def(
          "encode", [](lamia::RqVae& model, const torch::Tensor& x) { return model->encode(x); }, "embeddings"_a,
          py::call_guard<py::gil_scoped_release>())
      .def(
          "decode_codes", [](lamia::RqVae& model, const torch::Tensor& c) { return model->decode_codes(c); },
          "codes"_a)
      .def(
          "table",
          [](lamia::RqVae& model, const torch::Tensor& x) {
            return SemanticIdTable::from_codes(model->encode(x), model->codebook_sizes());
          },
          "embeddings"_a, "The SemanticIdTable of these items' codes.")
      .def_property_readonly("codebook_sizes", [](lamia::RqVae& model) { return model->codebook_sizes(); });

  m.def("tfidf_svd_embeddings", &tfidf_svd<std::vector<std::string>>, "texts"_a, "options"_a = py::none(),
        "TfidfSvdOptions (or a dict, or its fields as keywords). TF-IDF (sklearn's defaults) + truncated SVD of one text per item: n x dim float32.");
  m.def("tfidf_svd_embeddings", &tfidf_svd<lamia::Catalog>, "catalog"_a, "options"_a = py::none(),
        "Same for a Catalog: each item's attribute values joined with spaces.");
  m.def("tokenize_words", &lamia::tokenize_words, "text"_a, "Lowercased words (the TF-IDF tokenisation).");

  m.def(
      "normalized_mutual_info",
      [](const torch::Tensor& a, const torch::Tensor& b) { return lamia::normalized_mutual_info(a, b); }, "a"_a,
      "b"_a, "NMI with arithmetic-mean normalisation (sklearn's normalized_mutual_info_score).");
  m.def(
      "adjusted_mutual_info",
      [](const torch::Tensor& a, const torch::Tensor& b) { return lamia::adjusted_mutual_info(a, b); }, "a"_a, "b"_a,
      "AMI with arithmetic-mean normalisation (sklearn's adjusted_mutual_info_score): ~0 for independent labelings.");
  m.def(
      "mutual_info_scores",
      [](const torch::Tensor& a, const torch::Tensor& b) {
        lamia::MutualInfoScores s;
        {
          py::gil_scoped_release release;
          s = lamia::mutual_info_scores(a, b);
        }
        return py::dict("mutual_info"_a = s.mutual_info, "expected_mutual_info"_a = s.expected_mutual_info,
                        "entropy_a"_a = s.entropy_a, "entropy_b"_a = s.entropy_b, "nmi"_a = s.nmi,
                        "expected_nmi"_a = s.expected_nmi, "ami"_a = s.ami);
      },
      "a"_a, "b"_a,
      "MI, its expectation under random labelings of the same cluster sizes, both entropies, NMI, NMI's chance "
      "level (expected_nmi) and AMI, as a dict.");
  m.def(
      "probe_split",
      [](std::int64_t n, const py::object& options, const py::kwargs& kwargs) {
        auto s = lamia::probe_split(n, options_from_args<lamia::PaletteDiagnosticsOptions>(options, kwargs, "probe_split"));
        return py::make_tuple(s.train, s.test);
      },
      "n"_a, "options"_a = py::none(),
      "(train, test) item indices of diagnose_palettes' ridge fits for n items: a seeded shuffle (PaletteDiagnosticsOptions: "
      "seed, test_fraction, max_probe_items).");
  m.def(
      "diagnose_palettes",
      [](const torch::Tensor& palettes, std::optional<torch::Tensor> labels, std::vector<std::string> names,
         const py::object& options, const py::kwargs& kwargs) {
        auto o = options_from_args<lamia::PaletteDiagnosticsOptions>(options, kwargs, "diagnose_palettes");
        nlohmann::json d;
        {
          py::gil_scoped_release release;
          d = lamia::diagnose_palettes(palettes, labels ? *labels : torch::Tensor(), o, names);
        }
        return to_python(d);
      },
      "palettes"_a, "labels"_a = py::none(), "label_names"_a = std::vector<std::string>{}, "options"_a = py::none(),
      "Diagnostics of palettes [n, L, D] as a dict (docs/quantize.md): per position the norm share of the mean "
      "offset, the raw and centred intra cosines, the held-out R^2 of ridge regressions between positions, and with "
      "labels [n, A] a ridge-classifier probe's held-out accuracy per (position, label column) beside the chance "
      "accuracy. Options: PaletteDiagnosticsOptions (or a dict, or its fields as keywords).");
  m.def(
      "diagnose_codes",
      [](const torch::Tensor& codes, std::optional<std::vector<std::int64_t>> sizes,
         std::optional<torch::Tensor> labels, std::vector<std::string> names) {
        return to_python(
            lamia::diagnose_codes(codes, optional_sizes(sizes), labels ? *labels : torch::Tensor(), names));
      },
      "codes"_a, "codebook_sizes"_a = py::none(), "labels"_a = py::none(), "label_names"_a = std::vector<std::string>{},
      "Diagnostics of n x L codes as a dict (see docs/quantize.md).");
  m.def(
      "diagnose_table",
      [](const SemanticIdTable& t, std::optional<torch::Tensor> labels, std::vector<std::string> names) {
        return to_python(lamia::diagnose_table(t, labels ? *labels : torch::Tensor(), names));
      },
      "table"_a, "labels"_a = py::none(), "label_names"_a = std::vector<std::string>{},
      "Diagnostics of a table's L codes as a dict.");
}
