#pragma once
// Puts a module in eval mode for a scope and restores its mode after (palette internals).
#include <torch/nn/module.h>

namespace lamia::detail {

struct EvalScope {
  torch::nn::Module& m;
  bool was_training;
  explicit EvalScope(torch::nn::Module& module) : m(module), was_training(module.is_training()) { m.eval(); }
  ~EvalScope() { m.train(was_training); }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;
};

}  // namespace lamia::detail
