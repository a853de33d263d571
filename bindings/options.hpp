#pragma once
// bind_options<T>(m, "Name", "doc"): the Python class of an Options struct (or a record) from its
// field list (lamia/core/options.hpp), bound once:
//   - a property per field (nested options are returned by reference: o.kmeans.num_codes = 8
//     changes o); setting a value of the wrong type or out of range raises ValueError naming the
//     field; lists, enums (strings), paths (str) and optionals (None) cross as plain values;
//   - Name(options=None, **kwargs): defaults from the C++ struct itself, then `options` (another
//     Name or a dict), then the keywords; an unknown keyword raises TypeError naming it;
//   - to_dict(), to_json(indent=2), Name.from_json(text), Name.fields() (name, type, default, doc),
//     __repr__, __eq__, copy.copy / copy.deepcopy and pickling.
// options_from_args<T>(options, kwargs, "Owner") builds a T the same way for a constructor that
// takes options (PaletteQuantizer(options=None, **kwargs)).
#include "json_cast.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/core/options.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

namespace lamia::python {

namespace py = pybind11;

template <class T>
bool set_field(T& o, std::string_view name, py::handle value, const std::string& owner);

namespace options_detail {

template <class M>
bool is_bound() {
  return py::detail::get_type_info(typeid(M)) != nullptr;
}

// Getter of one field: nested options by reference (kept alive by self), records in lists as
// bound objects when their class is bound, everything else through JSON.
struct Getter {
  std::string_view want;
  py::handle self;
  py::object& out;
  template <class M, class... Check>
  void field(const char* name, M& member, const char*, const Check&...) {
    if (out || want != name) return;
    if constexpr (options::is_options_v<M>) {
      if (is_bound<M>()) {
        out = py::cast(&member, py::return_value_policy::reference_internal, self);
        return;
      }
    } else if constexpr (options::detail::is_vector<M>::value) {
      using E = typename M::value_type;
      if constexpr (options::is_options_v<E>) {
        if (is_bound<E>()) {
          out = py::cast(member, py::return_value_policy::copy);
          return;
        }
      }
    }
    out = to_python(options::Codec<M>::write(member));
  }
};

// Fields that are themselves options structs: flattened keywords may name their fields.
template <class T>
struct NestedSetter {
  std::string_view want;
  const nlohmann::json& value;
  const options::Where& where;
  int& found;
  template <class M, class... Check>
  void field(const char* name, M& member, const char*, const Check&...) {
    if constexpr (options::is_options_v<M>) {
      if (found == 0 && options::read_field(member, want, value, where.key(name))) found = 1;
    }
  }
};

template <class T>
struct Properties {
  py::class_<T>& cls;
  std::string owner;
  template <class M, class... Check>
  void field(const char* fname, M&, const char* fdoc, const Check&... checks) {
    const std::string field = fname;
    std::string doc = fmt::format("{} ({}", fdoc, lamia::options::Codec<M>::expected());
    ((doc += ", " + checks.str()), ...);
    doc += ")";
    auto owner_ = owner;
    cls.def_property(
        fname,
        [field](py::object self) {
          py::object out;
          lamia::options::visit(self.template cast<T&>(), options_detail::Getter{field, self, out});
          return out;
        },
        [field, owner_](T& self, py::object value) { set_field(self, field, value, owner_); }, doc.c_str());
  }
};

}  // namespace options_detail

/// Sets field `name` of o from a Python value; false when T has no such field.
template <class T>
bool set_field(T& o, std::string_view name, py::handle value, const std::string& owner) {
  return options::read_field(o, name, to_json(value), options::Where{owner, ""});
}

/// T from defaults, then `options` (a T or a dict), then keywords. With flatten, a keyword that
/// is not a field of T may name a field of one of T's nested options (num_codes for kmeans.num_codes).
template <class T>
void apply_kwargs(T& o, const py::kwargs& kwargs, const std::string& owner, bool flatten = false);

template <class T>
T options_from_args(py::handle options, const py::kwargs& kwargs, const std::string& owner, bool flatten = false) {
  T o = lamia::options::Defaults<T>::make();
  const std::string type = lamia::options::type_name<T>();
  if (!options.is_none()) {
    if (py::isinstance<T>(options)) {
      o = options.template cast<T>();
    } else if (py::isinstance<py::dict>(options)) {
      lamia::options::from_json(to_json(options), o, lamia::options::Where{owner, ""});
    } else {
      throw py::type_error(fmt::format("{}: options must be a {} or a dict, got {}", owner, type,
                                       py::str(py::type::of(options).attr("__name__")).template cast<std::string>()));
    }
  }
  apply_kwargs(o, kwargs, owner, flatten);
  return o;
}

/// Sets fields of o from keyword arguments (see options_from_args); an unknown keyword raises
/// TypeError naming it. For constructors with required positional fields (Decoder, DecoderOptions).
template <class T>
void apply_kwargs(T& o, const py::kwargs& kwargs, const std::string& owner, bool flatten) {
  for (const auto& [key, value] : kwargs) {
    const auto name = key.template cast<std::string>();
    if (set_field(o, name, value, owner)) continue;
    int found = 0;
    if (flatten) {
      const auto j = to_json(value);
      const lamia::options::Where where{owner, ""};
      lamia::options::visit(o, options_detail::NestedSetter<T>{name, j, where, found});
    }
    if (found == 0) {
      throw py::type_error(fmt::format("{}() got an unexpected keyword argument '{}' (fields: {})", owner, name,
                                       fmt::join(lamia::options::field_names<T>(), ", ")));
    }
  }
}

/// A field-table docstring: "name (type, default x): doc" per field.
template <class T>
std::string fields_doc(const char* doc) {
  std::string out = doc;
  out += "\n\nFields:\n";
  for (const auto& row : lamia::options::describe<T>()) {
    out += fmt::format("  {} ({}, default {}", row["name"].template get<std::string>(), row["type"].template get<std::string>(),
                       row["default"].dump());
    if (row.contains("check")) out += ", " + row["check"].template get<std::string>();
    out += "): " + row["doc"].template get<std::string>() + "\n";
  }
  return out;
}

template <class T>
py::class_<T> bind_options(py::module_& m, const char* name, const char* doc) {
  const std::string owner = name;
  py::class_<T> cls(m, name, fields_doc<T>(doc).c_str());
  cls.def(py::init([owner](py::object options, py::kwargs kwargs) { return options_from_args<T>(options, kwargs, owner); }),
          py::arg("options") = py::none(),
          "Defaults of the C++ struct, then `options` (another instance or a dict), then keyword arguments.");

  T proto = lamia::options::Defaults<T>::make();
  lamia::options::visit(proto, options_detail::Properties<T>{cls, owner});

  cls.def("to_dict", [](const T& o) { return to_python(lamia::options::to_json(o)); },
          "The fields as a dict of plain values (nested options as dicts).");
  cls.def(
      "to_json", [](const T& o, int indent) { return lamia::options::to_json(o).dump(indent); },
      py::arg("indent") = 2, "The fields as JSON text (the format of the config file's sections).");
  cls.def_static(
      "from_json",
      [owner](const std::string& text) {
        nlohmann::json j;
        try {
          j = nlohmann::json::parse(text);
        } catch (const nlohmann::json::parse_error& e) {
          throw lamia::ValueError(fmt::format("{}.from_json: invalid JSON: {}", owner, e.what()));
        }
        T o = lamia::options::Defaults<T>::make();
        lamia::options::from_json(j, o, lamia::options::Where{owner, ""});
        return o;
      },
      py::arg("text"), "From JSON text: missing keys keep their defaults, unknown keys and wrong types raise ValueError.");
  cls.def_static(
      "fields", [] { return to_python(lamia::options::describe<T>()); },
      "One dict per field: name, type, default, doc (and check, values where there are).");
  cls.def("__eq__", [](const T& a, py::object b) {
    if (!py::isinstance<T>(b)) return false;
    return lamia::options::equal(a, b.template cast<const T&>());
  });
  cls.def("__ne__", [](const T& a, py::object b) {
    if (!py::isinstance<T>(b)) return true;
    return !lamia::options::equal(a, b.template cast<const T&>());
  });
  cls.attr("__hash__") = py::none();
  cls.def("__repr__", [owner](const T& o) {
    // Field order, Python reprs of the values.
    const auto j = lamia::options::to_json(o);
    std::vector<std::string> shown;
    for (const auto& f : lamia::options::field_names<T>())
      shown.push_back(f + "=" + py::repr(to_python(j.at(f))).template cast<std::string>());
    return fmt::format("{}({})", owner, fmt::join(shown, ", "));
  });
  cls.def("__copy__", [](const T& o) { return T(o); });
  cls.def("__deepcopy__", [](const T& o, py::dict) { return T(o); }, py::arg("memo"));
  cls.def(py::pickle([](const T& o) { return lamia::options::to_json(o).dump(); },
                     [owner](const std::string& text) {
                       T o = lamia::options::Defaults<T>::make();
                       lamia::options::from_json(nlohmann::json::parse(text), o, lamia::options::Where{owner, ""});
                       return o;
                     }));
  return cls;
}

}  // namespace lamia::python
