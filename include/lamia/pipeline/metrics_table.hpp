#pragma once
// The recommendation table `lamia run` prints from metrics.json: one row per method, Recall@K and
// NDCG@K of the full ranking (exact scoring; for generative recommenders also the beam's top-K).
#include <nlohmann/json_fwd.hpp>

#include <iosfwd>

namespace lamia {

void print_metrics(std::ostream& out, const nlohmann::json& metrics);

}  // namespace lamia
