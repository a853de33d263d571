#pragma once
// Sequence examples from Python, shared by the evaluate and recommend bindings.
#include <lamia/data/sequences.hpp>

#include <fmt/format.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

namespace lamia::python {

/// The name of a Python object's type, for error messages.
inline std::string type_name(pybind11::handle o) {
  return pybind11::str(pybind11::type::of(o).attr("__name__")).cast<std::string>();
}

/// pylamia.SequenceExample objects or (history, target) pairs (user = position); None gives none.
inline std::vector<SequenceExample> examples_from_python(const pybind11::handle& seq, const char* what) {
  namespace py = pybind11;
  std::vector<SequenceExample> out;
  if (seq.is_none()) return out;
  std::int64_t i = 0;
  for (const auto& o : seq) {
    if (py::isinstance<SequenceExample>(o)) {
      out.push_back(o.cast<const SequenceExample&>());
    } else if ((py::isinstance<py::tuple>(o) || py::isinstance<py::list>(o)) && py::len(o) == 2) {
      SequenceExample e;
      e.user = UserIndex(i);
      e.history = o[py::int_(0)].cast<std::vector<ItemIndex>>();
      e.target = o[py::int_(1)].cast<ItemIndex>();
      out.push_back(std::move(e));
    } else {
      throw py::type_error(fmt::format("{}: example {} must be a SequenceExample or a (history, target) pair, got {}",
                                       what, i, type_name(o)));
    }
    ++i;
  }
  return out;
}

}  // namespace lamia::python
