#pragma once
// Torch objects given from Python as arguments (torch.device or a string such as "cuda:0"; torch.float64
// or a string such as "float64").
#include <lamia/core/errors.hpp>

#include <torch/csrc/DynamicTypes.h>
#include <torch/extension.h>

#include <string>

namespace lamia::python {

inline torch::Device to_device(const pybind11::object& obj) {
  if (pybind11::isinstance<pybind11::str>(obj)) return torch::Device(obj.cast<std::string>());
  return torch::python::detail::py_object_to_device(obj);
}

inline torch::Dtype to_dtype(const pybind11::object& obj) {
  if (pybind11::isinstance<pybind11::str>(obj)) {
    auto torch_mod = pybind11::module_::import("torch");
    auto name = obj.cast<std::string>();
    if (!pybind11::hasattr(torch_mod, name.c_str())) throw lamia::ValueError("unknown dtype \"" + name + "\"");
    return torch::python::detail::py_object_to_dtype(torch_mod.attr(name.c_str()));
  }
  return torch::python::detail::py_object_to_dtype(obj);
}

/// module.to(device, dtype) in place, either of them None (left as it is).
inline void move_module(torch::nn::Module& module, const pybind11::object& device, const pybind11::object& dtype) {
  if (!device.is_none() && !dtype.is_none())
    module.to(to_device(device), to_dtype(dtype));
  else if (!device.is_none())
    module.to(to_device(device));
  else if (!dtype.is_none())
    module.to(to_dtype(dtype));
}

}  // namespace lamia::python
