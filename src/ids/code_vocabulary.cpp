#include <lamia/core/errors.hpp>
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/ids/detail/left_padded.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>

namespace lamia {

CodeVocabulary::CodeVocabulary(std::vector<std::int64_t> level_sizes) : sizes_(std::move(level_sizes)) {
  if (sizes_.empty()) throw ValueError("CodeVocabulary: level_sizes must not be empty");
  offsets_.assign(1, 0);
  for (std::size_t l = 0; l < sizes_.size(); ++l) {
    if (sizes_[l] < 1 || sizes_[l] > (std::int64_t(1) << 30)) {
      throw ValueError(fmt::format("CodeVocabulary: level_sizes[{}] must be 1 to 2^30, got {}", l, sizes_[l]));
    }
    offsets_.push_back(offsets_.back() + sizes_[l]);
  }
}

CodeVocabulary CodeVocabulary::for_table(const SemanticIdTable& table) {
  return CodeVocabulary(table.codebook_sizes());
}

CodeVocabulary CodeVocabulary::after_text(std::vector<std::int64_t> level_sizes, std::int64_t text_vocab_size,
                                          std::int64_t bos, std::int64_t pad) {
  CodeVocabulary v(std::move(level_sizes));
  if (text_vocab_size < 1) {
    throw ValueError(fmt::format("CodeVocabulary::after_text: text_vocab_size must be >= 1, got {}", text_vocab_size));
  }
  if (bos < 0 || bos >= text_vocab_size || pad < 0 || pad >= text_vocab_size) {
    throw ValueError(fmt::format("CodeVocabulary::after_text: bos ({}) and pad ({}) must be text tokens, in [0, {})",
                                 bos, pad, text_vocab_size));
  }
  v.text_size_ = text_vocab_size;
  v.bos_ = bos;
  v.pad_ = pad;
  return v;
}

std::int64_t CodeVocabulary::level_begin(std::int64_t level) const {
  if (level < 0 || level >= num_levels()) {
    throw IndexError(fmt::format("CodeVocabulary: level {} out of range [0, {})", level, num_levels()));
  }
  return first_code_token() + offsets_[level];
}

std::int64_t CodeVocabulary::token(std::int64_t level, std::int64_t code) const {
  const auto begin = level_begin(level);
  if (code < 0 || code >= sizes_[level]) {
    throw IndexError(fmt::format("CodeVocabulary: code {} out of range [0, {}) at level {}", code, sizes_[level], level));
  }
  return begin + code;
}

std::pair<std::int64_t, std::int64_t> CodeVocabulary::code_of(std::int64_t token) const {
  if (token < first_code_token() || token >= size()) {
    throw IndexError(fmt::format("CodeVocabulary: token {} is not a code token (codes are {} to {})", token,
                                 first_code_token(), size() - 1));
  }
  const auto rel = token - first_code_token();
  const auto level = std::int64_t(std::upper_bound(offsets_.begin(), offsets_.end(), rel) - offsets_.begin()) - 1;
  return {level, rel - offsets_[level]};
}

void CodeVocabulary::check_table(const SemanticIdTable& table, const char* what) const {
  if (table.codebook_sizes() != sizes_) {
    throw ValueError(fmt::format("{}: built for semantic IDs with level sizes [{}], but the table has [{}]", what,
                                 fmt::join(sizes_, ", "), fmt::join(table.codebook_sizes(), ", ")));
  }
}

void CodeVocabulary::item_tokens(const SemanticIdTable& table, ItemIndex item, std::int64_t* out) const {
  const auto* id = table.id_data(item);
  for (std::int64_t l = 0; l < num_levels(); ++l) out[l] = first_code_token() + offsets_[l] + id[l];
}

torch::Tensor CodeVocabulary::all_item_tokens(const SemanticIdTable& table) const {
  check_table(table, "CodeVocabulary::all_item_tokens");
  auto out = torch::empty({table.num_items(), num_levels()}, torch::kInt64);
  auto* p = out.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < table.num_items(); ++i) item_tokens(table, ItemIndex(i), p + i * num_levels());
  return out;
}

void to_json(nlohmann::json& j, const CodeVocabulary& vocab) {
  j = {{"level_sizes", vocab.level_sizes()}};
  if (vocab.text_vocab_size() > 0) {
    j["text_vocab_size"] = vocab.text_vocab_size();
    j["bos"] = vocab.bos();
    j["pad"] = vocab.pad();
  }
}

void from_json(const nlohmann::json& j, CodeVocabulary& vocab) {
  if (!j.is_object() || !j.contains("level_sizes") || !j.at("level_sizes").is_array()) {
    throw ValueError("CodeVocabulary: expected {\"level_sizes\": [...]}");
  }
  std::vector<std::int64_t> sizes;
  for (const auto& v : j.at("level_sizes")) {
    if (!v.is_number_integer()) throw ValueError("CodeVocabulary: level_sizes must hold integers");
    sizes.push_back(v.get<std::int64_t>());
  }
  if (!j.contains("text_vocab_size")) {
    vocab = CodeVocabulary(std::move(sizes));
    return;
  }
  for (const char* key : {"text_vocab_size", "bos", "pad"}) {
    if (!j.contains(key) || !j.at(key).is_number_integer()) {
      throw ValueError(fmt::format("CodeVocabulary: '{}' must be an integer after a text vocabulary", key));
    }
  }
  vocab = CodeVocabulary::after_text(std::move(sizes), j.at("text_vocab_size").get<std::int64_t>(),
                                     j.at("bos").get<std::int64_t>(), j.at("pad").get<std::int64_t>());
}

EncodedHistories encode_histories(const SemanticIdTable& table, const CodeVocabulary& vocab,
                                  const std::vector<std::vector<ItemIndex>>& histories, std::int64_t max_items) {
  vocab.check_table(table, "encode_histories");
  if (max_items < 0) throw ValueError(fmt::format("encode_histories: max_items must be >= 0, got {}", max_items));
  const auto W = vocab.num_levels();
  std::int64_t skipped = 0, empty = 0;
  std::vector<std::vector<std::int64_t>> rows(histories.size());
  std::vector<ItemIndex> kept;
  for (std::size_t b = 0; b < histories.size(); ++b) {
    kept.clear();
    for (auto item : histories[b]) {
      if (item < 0 || item >= table.num_items()) ++skipped;
      else kept.push_back(item);
    }
    if (max_items > 0 && std::int64_t(kept.size()) > max_items) kept.erase(kept.begin(), kept.end() - max_items);
    if (kept.empty()) ++empty;
    auto& row = rows[b];
    row.resize(std::size_t(1 + std::int64_t(kept.size()) * W));
    row[0] = vocab.bos();
    for (std::size_t i = 0; i < kept.size(); ++i) vocab.item_tokens(table, kept[i], row.data() + 1 + i * std::size_t(W));
  }
  auto out = detail::left_padded_histories(
      std::int64_t(rows.size()), [&](std::int64_t b) -> const std::vector<std::int64_t>& { return rows[std::size_t(b)]; },
      vocab.pad());
  out.skipped_unknown = skipped;
  out.empty_rows = empty;
  return out;
}

namespace detail {

EncodedHistories left_padded_histories(std::int64_t B, const std::function<const std::vector<std::int64_t>&(std::int64_t)>& row,
                                       std::int64_t pad) {
  EncodedHistories out;
  std::int64_t T = 0;
  for (std::int64_t b = 0; b < B; ++b) T = std::max<std::int64_t>(T, std::int64_t(row(b).size()));
  out.tokens = torch::full({B, T}, pad, torch::kInt64);
  out.position_ids = torch::zeros({B, T}, torch::kInt64);
  out.key_mask = torch::zeros({B, T}, torch::kBool);
  out.lengths = torch::empty({B}, torch::kInt64);
  auto* tok = out.tokens.data_ptr<std::int64_t>();
  auto* pos = out.position_ids.data_ptr<std::int64_t>();
  auto* key = out.key_mask.data_ptr<bool>();
  auto* len = out.lengths.data_ptr<std::int64_t>();
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& r = row(b);
    const auto n = std::int64_t(r.size());
    const auto start = T - n;
    len[b] = n;
    for (std::int64_t t = 0; t < n; ++t) {
      tok[b * T + start + t] = r[std::size_t(t)];
      pos[b * T + start + t] = t;
      key[b * T + start + t] = true;
    }
  }
  return out;
}

}  // namespace detail

torch::Tensor causal_padded_mask(const torch::Tensor& key_mask) {
  TORCH_CHECK_VALUE(key_mask.dim() == 2 && key_mask.scalar_type() == torch::kBool,
                    "causal_padded_mask: key_mask must be [B, T] bool, got ", key_mask.sizes(), " ",
                    key_mask.scalar_type());
  const auto T = key_mask.size(1);
  auto causal = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(key_mask.device())).tril();
  // A padding row attends nothing (the decoder yields zeros there); real rows attend real keys up to themselves.
  return causal.unsqueeze(0) & key_mask.unsqueeze(1) & key_mask.unsqueeze(2);
}

}  // namespace lamia
