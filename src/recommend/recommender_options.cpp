// The options of the recommend stage's models, the generative recommender's (presets, check, JSON)
// and SASRec's (check, JSON), apart from the models (the config reader's fuzz target compiles the
// option sources alone: fuzz/fuzz_config.cpp).
#include <lamia/core/errors.hpp>
#include <lamia/recommend/generative_recommender.hpp>
#include <lamia/recommend/sasrec.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <string>

namespace lamia {
namespace {

// Missing keys keep o's values; o changes only when the whole object parsed and passed its check.
template <class Options>
void read_checked(const nlohmann::json& j, Options& o) {
  Options r = o;
  options::from_json(j, r);
  r.check();
  o = r;
}

}  // namespace

RecommenderModelOptions RecommenderModelOptions::preset(const std::string& name) {
  RecommenderModelOptions o;
  if (name == "trm3l") o.num_layers = 3;
  else if (name == "trm6l") o.num_layers = 6;
  else if (name == "trm12l") o.num_layers = 12;
  else throw ValueError(fmt::format("recommender preset '{}' is unknown (allowed: trm3l, trm6l, trm12l)", name));
  return o;
}

void RecommenderModelOptions::check() const {
  check_size("recommender model");
  auto fail = [](const char* field, const std::string& rule, const std::string& got) {
    throw ValueError(fmt::format("recommender model: {} {} (got {})", field, rule, got));
  };
  if (max_history_items < 1 || max_history_items > 100000)
    fail("max_history_items", "must be 1 to 100000", std::to_string(max_history_items));
  if (lora_rank < 0) fail("lora_rank", "must be >= 0", std::to_string(lora_rank));
  if (item_text_tokens < 0) fail("item_text_tokens", "must be >= 0", std::to_string(item_text_tokens));
  if (align_text_tokens < 0) fail("align_text_tokens", "must be >= 0", std::to_string(align_text_tokens));
  if (backbone == RecommenderBackbone::codes) {
    if (!pretrained.empty()) fail("pretrained", "needs backbone 'lm'", pretrained.string());
    if (lora_rank != 0) fail("lora_rank", "needs backbone 'lm'", std::to_string(lora_rank));
    if (item_text_tokens != 0) fail("item_text_tokens", "needs backbone 'lm'", std::to_string(item_text_tokens));
  }
  if (lora_rank > 0 && pretrained.empty())
    fail("lora_rank", "needs a pretrained checkpoint (LoRA adapts its weights)", std::to_string(lora_rank));
}

void to_json(nlohmann::json& j, const RecommenderModelOptions& o) { j = options::to_json(o); }

void from_json(const nlohmann::json& j, RecommenderModelOptions& o) { read_checked(j, o); }

void SasRecOptions::check() const {
  check_size("sasrec");
  auto fail = [](const char* field, const std::string& rule, const std::string& got) {
    throw ValueError(fmt::format("sasrec: {} {} (got {})", field, rule, got));
  };
  if (max_length < 1 || max_length > 100000) fail("max_length", "must be 1 to 100000", std::to_string(max_length));
  if (negatives < 1 || negatives > 100000) fail("negatives", "must be 1 to 100000", std::to_string(negatives));
}

void to_json(nlohmann::json& j, const SasRecOptions& o) { j = options::to_json(o); }

void from_json(const nlohmann::json& j, SasRecOptions& o) { read_checked(j, o); }

}  // namespace lamia
