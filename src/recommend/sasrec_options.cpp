// SASRec's options (check, JSON), apart from the model (the config reader's fuzz target compiles
// the option sources alone: fuzz/fuzz_config.cpp).
#include <lamia/core/errors.hpp>
#include <lamia/recommend/sasrec.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <string>

namespace lamia {

void SasRecOptions::check() const {
  check_size("sasrec");
  auto fail = [](const char* field, const std::string& rule, const std::string& got) {
    throw ValueError(fmt::format("sasrec: {} {} (got {})", field, rule, got));
  };
  if (max_length < 1 || max_length > 100000) fail("max_length", "must be 1 to 100000", std::to_string(max_length));
  if (negatives < 1 || negatives > 100000) fail("negatives", "must be 1 to 100000", std::to_string(negatives));
}

void to_json(nlohmann::json& j, const SasRecOptions& o) { j = options::to_json(o); }

void from_json(const nlohmann::json& j, SasRecOptions& o) {
  SasRecOptions r = o;
  options::from_json(j, r);
  r.check();
  o = r;
}

}  // namespace lamia
