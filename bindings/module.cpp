// pylamia._C: the compiled part of pylamia. Exceptions: lamia::ValueError and
// c10::ValueError -> ValueError, IndexError -> IndexError, IOError -> OSError.
#include "registry.hpp"

#include <lamia/core/errors.hpp>

#include <c10/util/Exception.h>
#include <pybind11/pybind11.h>

#include <algorithm>

namespace py = pybind11;

namespace lamia::python {
std::vector<BinderEntry>& binders() {
  static std::vector<BinderEntry> all;
  return all;
}
}  // namespace lamia::python

PYBIND11_MODULE(_C, m) {
  m.doc() = "lamia: semantic IDs from item palettes (compiled core)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const lamia::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const lamia::IOError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const lamia::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const lamia::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (const c10::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what_without_backtrace());
    } catch (const c10::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what_without_backtrace());
    } catch (const c10::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what_without_backtrace());
    } catch (const c10::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
    }
  });
  auto& all = lamia::python::binders();
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
  for (const auto& b : all) b.bind(m);
}
