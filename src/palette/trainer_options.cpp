// PaletteTrainerOptions' check, apart from the trainer (the config reader's fuzz target compiles
// the option sources alone: fuzz/fuzz_config.cpp).
#include <lamia/core/errors.hpp>
#include <lamia/palette/trainer.hpp>

#include <fmt/format.h>

#include <string>

namespace lamia {

void PaletteTrainerOptions::check() const {
  auto bad = [](const char* name, const std::string& want, const std::string& got) {
    throw ValueError(fmt::format("PaletteTrainerOptions: {} must be {}, got {}", name, want, got));
  };
  if (batch_size_ < 1) bad("batch_size", ">= 1", std::to_string(batch_size_));
  if (!(validation_fraction_ >= 0 && validation_fraction_ < 1)) {
    bad("validation_fraction", "in [0, 1)", fmt::format("{}", validation_fraction_));
  }
  if (group_batches_ < 1) bad("group_batches", ">= 1", std::to_string(group_batches_));
  loop_.check();
}

}  // namespace lamia
