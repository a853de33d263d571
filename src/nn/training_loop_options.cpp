// TrainingLoopOptions' check, apart from the loop: the config reader needs it, and its fuzz target
// (fuzz/fuzz_config.cpp) compiles these option sources without the training code.
#include <lamia/core/errors.hpp>
#include <lamia/nn/training_loop.hpp>

#include <fmt/format.h>

#include <cmath>
#include <string>

namespace lamia {

void TrainingLoopOptions::check() const {
  auto fail = [&](const char* what, const std::string& got) {
    throw ValueError(fmt::format("{}: {} (got {})", name_, what, got));
  };
  if (!(learning_rate_ > 0) || !std::isfinite(learning_rate_)) fail("learning_rate must be > 0", fmt::format("{}", learning_rate_));
  if (!(weight_decay_ >= 0) || !std::isfinite(weight_decay_)) fail("weight_decay must be >= 0", fmt::format("{}", weight_decay_));
  if (epochs_ < 0) fail("epochs must be >= 0", std::to_string(epochs_));
  if (max_steps_ < 0) fail("max_steps must be >= 0", std::to_string(max_steps_));
  if (!(grad_clip_norm_ >= 0) || !std::isfinite(grad_clip_norm_)) fail("grad_clip_norm must be >= 0", fmt::format("{}", grad_clip_norm_));
  if (eval_every_ < 0) fail("eval_every must be >= 0", std::to_string(eval_every_));
  if (patience_ < 0) fail("patience must be >= 0", std::to_string(patience_));
  if (!(min_rel_improvement_ >= 0 && min_rel_improvement_ < 1))
    fail("min_rel_improvement must be in [0, 1)", fmt::format("{}", min_rel_improvement_));
  if (checkpoint_every_ < 0) fail("checkpoint_every must be >= 0", std::to_string(checkpoint_every_));
  if (log_every_ < 0) fail("log_every must be >= 0", std::to_string(log_every_));
}

}  // namespace lamia
