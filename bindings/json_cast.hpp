#pragma once
// The one nlohmann::json <-> Python conversion of pylamia: dict, list, str, int, float, bool,
// None. Functions that take or return nlohmann::json convert automatically (type caster below);
// to_python / to_json are the same conversion by hand.
//
// Python -> JSON also accepts tuples (arrays), os.PathLike (strings), objects with __index__
// (integers) or __float__ (numbers), and pylamia objects with to_dict() (bound options and
// records). Anything else raises TypeError naming the Python type.
#include <nlohmann/json.hpp>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

namespace lamia::python {

namespace py = pybind11;

inline py::object to_python(const nlohmann::json& j) {
  using V = nlohmann::json::value_t;
  switch (j.type()) {
    case V::null: return py::none();
    case V::boolean: return py::bool_(j.get<bool>());
    case V::number_integer: return py::int_(j.get<std::int64_t>());
    case V::number_unsigned: return py::int_(j.get<std::uint64_t>());
    case V::number_float: return py::float_(j.get<double>());
    case V::string: return py::str(j.get_ref<const std::string&>());
    case V::array: {
      py::list out;
      for (const auto& v : j) out.append(to_python(v));
      return std::move(out);
    }
    case V::object: {
      py::dict out;
      for (const auto& [k, v] : j.items()) out[py::str(k)] = to_python(v);
      return std::move(out);
    }
    default: throw py::type_error(std::string("cannot convert JSON ") + j.type_name() + " to Python");
  }
}

inline nlohmann::json to_json(py::handle o) {
  if (o.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(o)) return o.cast<bool>();
  if (py::isinstance<py::int_>(o)) {
    // Python ints are unbounded: take the C++ value that holds it exactly, or fail.
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(o.ptr(), &overflow);
    if (overflow == 0) return static_cast<std::int64_t>(v);
    if (overflow > 0) {
      const unsigned long long u = PyLong_AsUnsignedLongLong(o.ptr());
      if (!PyErr_Occurred()) return static_cast<std::uint64_t>(u);
      PyErr_Clear();
    }
    throw py::value_error("integer " + py::repr(o).cast<std::string>() + " does not fit in 64 bits");
  }
  if (py::isinstance<py::float_>(o)) return o.cast<double>();
  if (py::isinstance<py::str>(o)) return o.cast<std::string>();
  if (py::isinstance<py::dict>(o)) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : o.cast<py::dict>()) {
      if (!py::isinstance<py::str>(k))
        throw py::type_error("dict keys must be str to convert to JSON, got " + py::repr(k).cast<std::string>());
      out[k.cast<std::string>()] = to_json(v);
    }
    return out;
  }
  if (py::isinstance<py::list>(o) || py::isinstance<py::tuple>(o)) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : o) out.push_back(to_json(v));
    return out;
  }
  if (py::hasattr(o, "__fspath__")) return py::module_::import("os").attr("fspath")(o).cast<std::string>();
  if (py::hasattr(o, "to_dict") && !py::isinstance<py::type>(o)) return to_json(o.attr("to_dict")());
  if (py::hasattr(o, "__index__")) return to_json(py::reinterpret_steal<py::object>(PyNumber_Index(o.ptr())));
  if (py::hasattr(o, "__float__") && !py::hasattr(o, "__len__")) return py::float_(py::reinterpret_borrow<py::object>(o)).cast<double>();
  throw py::type_error("cannot convert " + py::str(py::type::of(o).attr("__name__")).cast<std::string>() +
                       " to JSON (expected None, bool, int, float, str, list, tuple or dict)");
}

}  // namespace lamia::python

namespace pybind11::detail {
/// nlohmann::json arguments and results cross as plain Python values.
template <>
struct type_caster<nlohmann::json> {
  PYBIND11_TYPE_CASTER(nlohmann::json, const_name("object"));
  bool load(handle src, bool) {
    value = lamia::python::to_json(src);
    return true;
  }
  static handle cast(const nlohmann::json& src, return_value_policy, handle) {
    return lamia::python::to_python(src).release();
  }
};
}  // namespace pybind11::detail
