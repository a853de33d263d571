#pragma once
// torch::Device as an options field (lamia/core/options.hpp): "cpu", "cuda", "cuda:1", ...
#include <lamia/core/options.hpp>

#include <c10/core/Device.h>
#include <c10/util/Exception.h>

#include <string>

template <>
struct lamia::options::Codec<c10::Device> {
  static json write(const c10::Device& d) { return d.str(); }
  static void read(const json& j, c10::Device& out, const Where& w) {
    if (!j.is_string()) w.fail(expected(), j);
    try {
      out = c10::Device(j.get<std::string>());
    } catch (const c10::Error&) {
      w.fail(expected(), j);
    }
  }
  static std::string expected() { return "a device string ('cpu', 'cuda', 'cuda:1', ...)"; }
};
