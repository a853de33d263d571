#pragma once
// `lamia inspect`: look into a run folder made by `lamia run` (or the stage commands). Each function
// reads the folder's config.json and artifacts and returns JSON (the CLI prints it as text, pylamia
// returns it as a dict):
//   inspect_item   an item -> its text and its semantic ID under every tokenizer of the run;
//   inspect_prefix a code prefix of one tokenizer -> the items whose IDs start with it;
//   inspect_user   a user -> their history, the held-out next item when they are a test user, and
//                  the generative recommender's top-K (constrained beam search) with scores.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lamia {

/// {"item", "index", "text": {attribute: value}, "ids": {tokenizer: [codes..., index token]}}.
/// ValueError naming the id (and a few known ones) when the catalog has no such item.
nlohmann::json inspect_item(const std::filesystem::path& run_dir, const std::string& item_id);

/// {"tokenizer", "prefix", "count", "items": [{"item", "id", "text"}] (at most limit)}.
/// ValueError when the tokenizer made no IDs in the run or a code is outside its codebook.
nlohmann::json inspect_prefix(const std::filesystem::path& run_dir, const std::string& tokenizer,
                              const std::vector<std::int64_t>& prefix, std::int64_t limit = 20);

/// {"user", "tokenizer", "history": [{"item", "text"}], "held_out": {"item", "rank"} or null,
///  "recommendations": [{"rank", "item", "id", "score", "text"}]}. The history is the user's test
/// example's (the held-out item is what the evaluation hides) or, for a user without one, their whole
/// sequence. Scores are the beam's summed log-probabilities. tokenizer empty: the first of the run's
/// recommend.tokenizers that has a trained recommender.
nlohmann::json inspect_user(const std::filesystem::path& run_dir, const std::string& user_id,
                            const std::string& tokenizer = "", std::int64_t top_k = 10);

}  // namespace lamia
