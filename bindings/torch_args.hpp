#pragma once
// Torch objects given from Python as arguments (torch.device or a string such as "cuda:0").
#include <torch/extension.h>

namespace lamia::python {

inline torch::Device to_device(const pybind11::object& obj) {
  if (pybind11::isinstance<pybind11::str>(obj)) return torch::Device(obj.cast<std::string>());
  return torch::python::detail::py_object_to_device(obj);
}

}  // namespace lamia::python
