// The synthetic multi-aspect catalog: SyntheticOptions, SyntheticCatalog, generate_synthetic.
// Registered after bindings/data.cpp (kOrderData + 1) so Dataset exists first.
#include "registry.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/data/synthetic.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>
#include <torch/extension.h>

#include <cstring>

namespace py = pybind11;
using namespace lamia;

namespace {

const char* style_name(AttributeStyle s) {
  switch (s) {
    case AttributeStyle::phrase: return "phrase";
    case AttributeStyle::sentences: return "sentences";
    case AttributeStyle::tags: return "tags";
    case AttributeStyle::path: return "path";
  }
  return "?";
}

AttributeStyle parse_style(const std::string& s) {
  for (auto style : {AttributeStyle::phrase, AttributeStyle::sentences, AttributeStyle::tags, AttributeStyle::path})
    if (s == style_name(style)) return style;
  throw ValueError(fmt::format("style: expected one of phrase, sentences, tags, path, got '{}'", s));
}

// Copies a row-major int32 table into a new tensor of the given shape.
torch::Tensor int32_tensor(const std::vector<std::int32_t>& values, std::vector<std::int64_t> shape) {
  auto t = torch::empty(shape, torch::kInt32);
  if (!values.empty()) std::memcpy(t.data_ptr<std::int32_t>(), values.data(), values.size() * sizeof(std::int32_t));
  return t;
}

// Sets attributes of obj from keyword arguments; unknown names raise TypeError like a Python class would.
void set_fields(py::object obj, const py::kwargs& kwargs) {
  for (const auto& [key, value] : kwargs) {
    auto name = key.cast<std::string>();
    if (name.rfind('_', 0) == 0 || !py::hasattr(py::type::of(obj), name.c_str()))
      throw py::type_error(fmt::format("SyntheticOptions has no field '{}'", name));
    py::setattr(obj, key, value);
  }
}

}  // namespace

LAMIA_REGISTER_BINDINGS(kOrderData + 1, data_synthetic) {
  py::class_<SyntheticAttribute>(m, "SyntheticAttribute", R"doc(
One text attribute of synthetic items: its name, how it is rendered (style:
'phrase', 'sentences', 'tags' or 'path') and the aspects whose words it mixes.)doc")
      .def(py::init([](std::string name, const std::string& style, std::vector<std::string> aspects) {
             return SyntheticAttribute{std::move(name), parse_style(style), std::move(aspects)};
           }),
           py::arg("name"), py::arg("style"), py::arg("aspects"))
      .def_readwrite("name", &SyntheticAttribute::name)
      .def_property(
          "style", [](const SyntheticAttribute& a) { return std::string(style_name(a.style)); },
          [](SyntheticAttribute& a, const std::string& s) { a.style = parse_style(s); })
      .def_readwrite("aspects", &SyntheticAttribute::aspects)
      .def("__repr__", [](const SyntheticAttribute& a) {
        return fmt::format("SyntheticAttribute(name='{}', style='{}', aspects=[{}])", a.name, style_name(a.style),
                           fmt::join(a.aspects, ", "));
      });

  py::class_<SyntheticOptions>(m, "SyntheticOptions", R"doc(
Everything that defines a synthetic catalog; the defaults are the built-in
dataset (2,000 items, 3,000 users, aspects topic 12, region 8, tone 6, format 5).
SyntheticOptions(num_items=500, seed=3) sets fields by keyword. Fields are
checked by generate_synthetic (ValueError naming the field).)doc")
      .def(py::init([](const py::kwargs& kwargs) {
             auto self = py::cast(SyntheticOptions{});
             set_fields(self, kwargs);
             return self.cast<SyntheticOptions>();
           }))
      .def_readwrite("seed", &SyntheticOptions::seed)
      .def_readwrite("num_items", &SyntheticOptions::num_items)
      .def_readwrite("num_users", &SyntheticOptions::num_users)
      .def_readwrite("aspect_names", &SyntheticOptions::aspect_names)
      .def_readwrite("aspect_sizes", &SyntheticOptions::aspect_sizes)
      .def_readwrite("words_per_value", &SyntheticOptions::words_per_value)
      .def_readwrite("filler_words", &SyntheticOptions::filler_words)
      .def_readwrite("attributes", &SyntheticOptions::attributes)
      .def_readwrite("sentences", &SyntheticOptions::sentences)
      .def_readwrite("filler_per_sentence", &SyntheticOptions::filler_per_sentence)
      .def_readwrite("min_sequence_length", &SyntheticOptions::min_sequence_length)
      .def_readwrite("max_sequence_length", &SyntheticOptions::max_sequence_length)
      .def_readwrite("preferred_values", &SyntheticOptions::preferred_values)
      .def_readwrite("candidates", &SyntheticOptions::candidates)
      .def_readwrite("noise", &SyntheticOptions::noise)
      .def_readwrite("popularity_skew", &SyntheticOptions::popularity_skew)
      .def_readwrite("rating_noise", &SyntheticOptions::rating_noise)
      .def_readwrite("start_timestamp", &SyntheticOptions::start_timestamp)
      .def_readwrite("timestamp_span", &SyntheticOptions::timestamp_span)
      .def_readwrite("max_gap", &SyntheticOptions::max_gap)
      .def("validate", &SyntheticOptions::validate, "Raises ValueError naming the first field out of range.")
      .def(
          "to_json", [](const SyntheticOptions& o) { return nlohmann::json(o).dump(2); },
          "The options as a JSON object (the format `lamia run --config` reads).")
      .def_static(
          "from_json",
          [](const std::string& text) {
            nlohmann::json j;
            try {
              j = nlohmann::json::parse(text);
            } catch (const nlohmann::json::parse_error& e) {
              throw ValueError(fmt::format("SyntheticOptions.from_json: invalid JSON: {}", e.what()));
            }
            return j.get<SyntheticOptions>();
          },
          py::arg("text"), "Options from a JSON object; missing keys keep their defaults, unknown keys raise ValueError.")
      .def("__repr__", [](const SyntheticOptions& o) {
        return fmt::format("SyntheticOptions(seed={}, num_items={}, num_users={}, aspects={})", o.seed, o.num_items,
                           o.num_users, fmt::join(o.aspect_sizes, "x"));
      });

  py::class_<SyntheticCatalog>(m, "SyntheticCatalog", "A generated dataset with its ground-truth aspects.")
      .def_readonly("dataset", &SyntheticCatalog::dataset, "The Dataset (name 'synthetic', items 'i<n>', users 'u<n>').")
      .def_readonly("aspect_names", &SyntheticCatalog::aspect_names)
      .def_readonly("aspect_sizes", &SyntheticCatalog::aspect_sizes)
      .def_readonly("options", &SyntheticCatalog::options)
      .def_readonly("vocabulary", &SyntheticCatalog::vocabulary, "vocabulary[a][v]: the words of value v of aspect a.")
      .def_readonly("value_names", &SyntheticCatalog::value_names, "value_names[a][v]: the name of value v of aspect a.")
      .def_property_readonly("num_aspects", &SyntheticCatalog::num_aspects)
      .def_property_readonly("num_items", [](const SyntheticCatalog& s) { return s.dataset.catalog.size(); })
      .def_property_readonly("num_users", [](const SyntheticCatalog& s) { return s.dataset.interactions.num_users(); })
      .def_property_readonly(
          "item_aspects",
          [](const SyntheticCatalog& s) {
            return int32_tensor(s.item_aspects, {std::int64_t(s.dataset.catalog.size()), std::int64_t(s.num_aspects())});
          },
          "int32 tensor (num_items, num_aspects): the aspect values of each item (a copy).")
      .def(
          "item_aspects_numpy",
          [](const SyntheticCatalog& s) {
            py::array_t<std::int32_t> a({py::ssize_t(s.dataset.catalog.size()), py::ssize_t(s.num_aspects())});
            if (!s.item_aspects.empty())
              std::memcpy(a.mutable_data(), s.item_aspects.data(), s.item_aspects.size() * sizeof(std::int32_t));
            return a;
          },
          "The same table as item_aspects, as an int32 numpy array (a copy).")
      .def_property_readonly(
          "user_preferences",
          [](const SyntheticCatalog& s) {
            return int32_tensor(s.user_preferences, {std::int64_t(s.dataset.interactions.num_users()),
                                                     std::int64_t(s.num_aspects()), s.options.preferred_values});
          },
          "int32 tensor (num_users, num_aspects, preferred_values): each user's preferred values, sorted, "
          "-1 where an aspect has fewer values.")
      .def("aspect", &SyntheticCatalog::aspect, py::arg("item"), py::arg("aspect"), "Value of an aspect of an item.")
      .def_property_readonly("attribute_names",
                             [](const SyntheticCatalog& s) { return s.dataset.catalog.attribute_names(); })
      .def(
          "item_values", [](const SyntheticCatalog& s, ItemIndex item) { return s.dataset.catalog.values(item); },
          py::arg("item"), "The attribute values (texts) of an item, in attribute_names order.")
      .def(
          "interactions_table",
          [](const SyntheticCatalog& s) {
            const auto& in = s.dataset.interactions;
            const auto n = std::int64_t(in.size());
            auto user = torch::empty({n}, torch::kInt32), item = torch::empty({n}, torch::kInt32);
            auto time = torch::empty({n}, torch::kInt64);
            auto rating = torch::empty({n}, torch::kFloat32);
            auto* pu = user.data_ptr<std::int32_t>();
            auto* pi = item.data_ptr<std::int32_t>();
            auto* pt = time.data_ptr<std::int64_t>();
            auto* pr = rating.data_ptr<float>();
            std::size_t k = 0;
            for (std::size_t u = 0; u < in.num_users(); ++u)
              for (const auto& e : in.sequence(UserIndex(u))) {
                pu[k] = std::int32_t(u), pi[k] = e.item, pt[k] = e.timestamp, pr[k] = e.rating;
                ++k;
              }
            py::dict d;
            d["user"] = user;
            d["item"] = item;
            d["timestamp"] = time;
            d["rating"] = rating;
            return d;
          },
          "All interactions as a dict of 1-D tensors (user int32, item int32, timestamp int64, rating float32), "
          "user by user, each in source order.");

  m.def(
      "generate_synthetic",
      [](std::optional<SyntheticOptions> options, const py::kwargs& kwargs) {
        auto self = py::cast(options ? *options : SyntheticOptions{});
        set_fields(self, kwargs);
        auto o = self.cast<SyntheticOptions>();
        py::gil_scoped_release release;
        return generate_synthetic(o);
      },
      py::arg("options") = py::none(),
      R"doc(Generates a synthetic multi-aspect catalog, its users and ground truth.

generate_synthetic() is the built-in default dataset; keyword arguments override
fields of options (generate_synthetic(num_items=500, seed=7)). Deterministic for
the seed: items and users come from per-index random streams, so a smaller
catalog is a prefix of a larger one with the same seed.)doc");
}
