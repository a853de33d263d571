#pragma once
// Each bindings/<component>.cpp registers a function that adds its classes to
// pylamia._C; module.cpp calls them in order. Lower order runs first, so a
// component's types exist before later components use them in signatures.
#include <pybind11/pybind11.h>

#include <functional>
#include <vector>

namespace lamia::python {

using Binder = void (*)(pybind11::module_&);

struct BinderEntry {
  int order;
  const char* name;
  Binder bind;
};

std::vector<BinderEntry>& binders();

struct RegisterBinder {
  RegisterBinder(int order, const char* name, Binder bind) { binders().push_back({order, name, bind}); }
};

// Orders, in pipeline order.
inline constexpr int kOrderCore = 0;
inline constexpr int kOrderData = 10;
inline constexpr int kOrderText = 20;
inline constexpr int kOrderNn = 30;
inline constexpr int kOrderPalette = 40;
inline constexpr int kOrderQuantize = 50;
inline constexpr int kOrderEvaluate = 55;
inline constexpr int kOrderRecommend = 57;
inline constexpr int kOrderPipeline = 60;

}  // namespace lamia::python

#define LAMIA_PY_CONCAT2(a, b) a##b
#define LAMIA_PY_CONCAT(a, b) LAMIA_PY_CONCAT2(a, b)
/// LAMIA_REGISTER_BINDINGS(kOrderData, data) { m.def(...); }
#define LAMIA_REGISTER_BINDINGS(order, name)                                                    \
  static void LAMIA_PY_CONCAT(bind_, name)(pybind11::module_ & m);                              \
  static const ::lamia::python::RegisterBinder LAMIA_PY_CONCAT(register_, name)(               \
      ::lamia::python::order, #name, &LAMIA_PY_CONCAT(bind_, name));                            \
  static void LAMIA_PY_CONCAT(bind_, name)(pybind11::module_ & m)
