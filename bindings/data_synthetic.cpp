// The synthetic multi-aspect catalog: SyntheticOptions, SyntheticCatalog, generate_synthetic.
// Registered after bindings/data.cpp (kOrderData + 1) so Dataset exists first.
#include "options.hpp"
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

// Copies a row-major int32 table into a new tensor of the given shape.
torch::Tensor int32_tensor(const std::vector<std::int32_t>& values, std::vector<std::int64_t> shape) {
  auto t = torch::empty(shape, torch::kInt32);
  if (!values.empty()) std::memcpy(t.data_ptr<std::int32_t>(), values.data(), values.size() * sizeof(std::int32_t));
  return t;
}

}  // namespace

LAMIA_REGISTER_BINDINGS(kOrderData + 1, data_synthetic) {
  python::bind_options<SyntheticAttribute>(m, "SyntheticAttribute", R"doc(
One text attribute of synthetic items: its name, how it is rendered (style:
'phrase', 'sentences', 'tags' or 'path') and the aspects whose words it mixes.)doc")
      .def(py::init([](const py::object& name, const py::object& style, const py::object& aspects) {
             SyntheticAttribute a;
             python::set_field(a, "name", name, "SyntheticAttribute");
             python::set_field(a, "style", style, "SyntheticAttribute");
             python::set_field(a, "aspects", aspects, "SyntheticAttribute");
             return a;
           }),
           py::arg("name"), py::arg("style"), py::arg("aspects"));

  python::bind_options<SyntheticOptions>(m, "SyntheticOptions", R"doc(
Everything that defines a synthetic catalog; the defaults are the built-in
dataset (2,000 items, 3,000 users, aspects topic 12, region 8, tone 6, format 5).
SyntheticOptions(num_items=500, seed=3) sets fields by keyword. Ranges are
checked by generate_synthetic (ValueError naming the field).)doc")
      .def("validate", &SyntheticOptions::validate, "Raises ValueError naming the first field out of range.")
      .def("effective_attributes", &SyntheticOptions::effective_attributes,
           "The attributes the items get: `attributes`, or those of attribute_layout.");

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
      [](const py::object& options, const py::kwargs& kwargs) {
        auto o = python::options_from_args<SyntheticOptions>(options, kwargs, "generate_synthetic");
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
