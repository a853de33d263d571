#include <lamia/core/errors.hpp>
#include <lamia/palette/blocks.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <ostream>
#include <unordered_map>

namespace lamia {

const char* block_name(Block block) {
  switch (block) {
    case Block::kPad: return "pad";
    case Block::kContent: return "content";
    case Block::kLaP: return "LaP";
    case Block::kLdP: return "LdP";
    case Block::kTask: return "task";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& os, Block block) { return os << block_name(block); }

void PaletteTokens::check() const {
  if (lap.empty()) {
    throw ValueError("PaletteTokens: palette size L must be at least 1, got 0 LaP tokens");
  }
  if (ldp.size() != lap.size()) {
    throw ValueError(fmt::format("PaletteTokens: expected as many LdP as LaP tokens ({}), got {}",
                                 lap.size(), ldp.size()));
  }
  if (task.empty()) throw ValueError("PaletteTokens: expected at least one task token, got none");
  if (eos < 0) throw ValueError(fmt::format("PaletteTokens: eos id must be set (>= 0), got {}", eos));
  if (pad < 0) throw ValueError(fmt::format("PaletteTokens: pad id must be set (>= 0), got {}", pad));
}

TokenizedCatalog tokenize_catalog(const Catalog& catalog, const EncodeFunction& encode,
                                  const BlockLayoutOptions& options,
                                  std::optional<PaletteTokenId> bos) {
  const auto m = static_cast<std::int64_t>(catalog.num_attributes());
  const auto r = options.num_content_attributes;
  if (m == 0) throw ValueError("tokenize_catalog: the catalog has no attributes");
  if (r < 1 || r > m) {
    throw ValueError(fmt::format(
        "tokenize_catalog: num_content_attributes (r) must be in [1, {}] (the catalog's attributes), got {}",
        m, r));
  }
  if (options.attribute_token_budget < 1) {
    throw ValueError(fmt::format("tokenize_catalog: attribute_token_budget must be >= 1, got {}",
                                 options.attribute_token_budget));
  }
  if (options.answer_token_budget < 0) {
    throw ValueError(fmt::format("tokenize_catalog: answer_token_budget must be >= 0, got {}",
                                 options.answer_token_budget));
  }
  TokenizedCatalog out;
  out.attribute_names = catalog.attribute_names();
  out.num_content_attributes = r;
  out.items.resize(catalog.size());
  out.item_ids.reserve(catalog.size());
  const auto& names = catalog.attribute_names();
  for (std::size_t it = 0; it < catalog.size(); ++it) {
    const auto item = static_cast<ItemIndex>(it);
    auto& dst = out.items[it];
    out.item_ids.push_back(catalog.id(item));
    if (bos) dst.content.push_back(*bos);
    for (std::int64_t a = 0; a < r; ++a) {
      std::string piece = (a > 0 ? " " : "") + names[a] + ": " + catalog.value(item, a);
      auto ids = encode(piece);
      if (static_cast<std::int64_t>(ids.size()) > options.attribute_token_budget) {
        ids.resize(options.attribute_token_budget);
        ++out.content_truncations;
      }
      dst.content.insert(dst.content.end(), ids.begin(), ids.end());
    }
    dst.answers.resize(m);
    for (std::int64_t a = 0; a < m; ++a) {
      auto ids = encode(catalog.value(item, a));
      if (static_cast<std::int64_t>(ids.size()) > options.answer_token_budget) {
        ids.resize(options.answer_token_budget);
        ++out.answer_truncations;
      }
      dst.answers[a] = std::move(ids);
    }
  }
  return out;
}

SampleLayout build_sample(const std::vector<PaletteTokenId>& content,
                          const std::vector<PaletteTokenId>& answer, std::int64_t task,
                          const PaletteTokens& tokens, ItemIndex item) {
  tokens.check();
  if (task < 0 || task >= tokens.num_tasks()) {
    throw IndexError(fmt::format("build_sample: task must be in [0, {}), got {}", tokens.num_tasks(), task));
  }
  if (content.empty()) {
    throw ValueError(fmt::format("build_sample: item {}: the content block is empty (no tokens)", item));
  }
  const auto L = tokens.palette_size();
  SampleLayout s;
  s.item = item;
  s.task = task;
  s.content_length = static_cast<std::int64_t>(content.size());
  s.task_length = 1 + static_cast<std::int64_t>(answer.size()) + 1;
  const auto n = s.content_length + 2 * L + s.task_length;
  s.tokens.reserve(n);
  s.blocks.reserve(n);
  auto push = [&](PaletteTokenId id, Block b) {
    s.tokens.push_back(id);
    s.blocks.push_back(b);
  };
  for (auto id : content) push(id, Block::kContent);
  for (auto id : tokens.lap) push(id, Block::kLaP);
  for (auto id : tokens.ldp) push(id, Block::kLdP);
  push(tokens.task[task], Block::kTask);
  for (auto id : answer) push(id, Block::kTask);
  push(tokens.eos, Block::kTask);
  s.labels.assign(n, kIgnoreLabel);
  // The task token predicts the first answer token; the last answer token predicts eos.
  const auto task_start = s.content_length + 2 * L;
  for (auto t = task_start; t + 1 < n; ++t) s.labels[t] = s.tokens[t + 1];
  return s;
}

SampleLayout make_sample(const TokenizedCatalog& catalog, ItemIndex item, std::int64_t task,
                          const PaletteTokens& tokens) {
  if (item < 0 || static_cast<std::size_t>(item) >= catalog.size()) {
    throw IndexError(fmt::format("make_sample: item must be in [0, {}), got {}", catalog.size(), item));
  }
  if (tokens.num_tasks() != catalog.num_attributes()) {
    throw ValueError(fmt::format("make_sample: {} task tokens for a catalog of {} attributes",
                                 tokens.num_tasks(), catalog.num_attributes()));
  }
  const auto& ti = catalog.items[item];
  if (task < 0 || task >= catalog.num_attributes()) {
    throw IndexError(fmt::format("make_sample: task must be in [0, {}), got {}", catalog.num_attributes(), task));
  }
  return build_sample(ti.content, ti.answers[task], task, tokens, item);
}

PaletteSegment PaletteSegment::to(const torch::Device& device) const {
  PaletteSegment s;
  auto mv = [&](const torch::Tensor& t) { return t.defined() ? t.to(device) : t; };
  s.input_ids = mv(input_ids);
  s.position_ids = mv(position_ids);
  s.block_types = mv(block_types);
  s.labels = mv(labels);
  return s;
}

PaletteBatch PaletteBatch::to(const torch::Device& device) const {
  PaletteBatch b = *this;
  auto mv = [&](const torch::Tensor& t) { return t.defined() ? t.to(device) : t; };
  b.full = full.to(device);
  b.encode = encode.to(device);
  b.decode = decode.to(device);
  b.full_lap_index = mv(full_lap_index);
  b.full_ldp_index = mv(full_ldp_index);
  b.encode_lap_index = mv(encode_lap_index);
  b.sample_item_row = mv(sample_item_row);
  b.item_first_sample = mv(item_first_sample);
  return b;
}

namespace {

// Rows of (token, block, position, label) cut from samples, padded to the longest.
struct RowBuilder {
  std::vector<std::vector<std::int64_t>> ids, pos, blk, lab;
  void add(const SampleLayout& s, std::int64_t begin, std::int64_t end) {
    std::vector<std::int64_t> i, p, b, l;
    for (auto t = begin; t < end; ++t) {
      i.push_back(s.tokens[t]);
      p.push_back(t);
      b.push_back(static_cast<std::int64_t>(s.blocks[t]));
      l.push_back(s.labels[t]);
    }
    ids.push_back(std::move(i));
    pos.push_back(std::move(p));
    blk.push_back(std::move(b));
    lab.push_back(std::move(l));
  }
  PaletteSegment build(std::int64_t pad, bool with_labels) const {
    const auto B = static_cast<std::int64_t>(ids.size());
    std::int64_t T = 0;
    for (const auto& r : ids) T = std::max<std::int64_t>(T, static_cast<std::int64_t>(r.size()));
    auto opts = torch::TensorOptions().dtype(torch::kInt64);
    PaletteSegment seg;
    seg.input_ids = torch::full({B, T}, pad, opts);
    seg.position_ids = torch::zeros({B, T}, opts);
    seg.block_types = torch::full({B, T}, static_cast<std::int64_t>(Block::kPad), opts);
    if (with_labels) seg.labels = torch::full({B, T}, kIgnoreLabel, opts);
    auto I = seg.input_ids.accessor<std::int64_t, 2>();
    auto P = seg.position_ids.accessor<std::int64_t, 2>();
    auto K = seg.block_types.accessor<std::int64_t, 2>();
    for (std::int64_t r = 0; r < B; ++r) {
      for (std::size_t t = 0; t < ids[r].size(); ++t) {
        I[r][t] = ids[r][t];
        P[r][t] = pos[r][t];
        K[r][t] = blk[r][t];
      }
    }
    if (with_labels) {
      auto Lb = seg.labels.accessor<std::int64_t, 2>();
      for (std::int64_t r = 0; r < B; ++r) {
        for (std::size_t t = 0; t < ids[r].size(); ++t) Lb[r][t] = lab[r][t];
      }
    }
    return seg;
  }
};

torch::Tensor lap_columns(const std::vector<std::int64_t>& starts, std::int64_t L) {
  auto out = torch::empty({static_cast<std::int64_t>(starts.size()), L}, torch::kInt64);
  auto a = out.accessor<std::int64_t, 2>();
  for (std::size_t r = 0; r < starts.size(); ++r) {
    for (std::int64_t j = 0; j < L; ++j) a[r][j] = starts[r] + j;
  }
  return out;
}

}  // namespace

PaletteBatch collate_samples(const std::vector<SampleLayout>& samples, const PaletteTokens& tokens,
                             bool with_full) {
  tokens.check();
  if (samples.empty()) throw ValueError("collate_samples: expected at least one sample, got none");
  const auto L = tokens.palette_size();
  PaletteBatch b;
  RowBuilder full, enc, dec;
  std::unordered_map<ItemIndex, std::int64_t> row_of_item;
  std::vector<std::int64_t> sample_row, first_sample, full_lap_start, full_ldp_start, enc_lap_start;
  for (std::size_t k = 0; k < samples.size(); ++k) {
    const auto& s = samples[k];
    if (s.size() != s.content_length + 2 * L + s.task_length ||
        static_cast<std::int64_t>(s.blocks.size()) != s.size() ||
        static_cast<std::int64_t>(s.labels.size()) != s.size()) {
      throw ValueError(fmt::format(
          "collate_samples: sample {} (item {}) does not have the layout of palette size {}", k, s.item, L));
    }
    std::int64_t row = -1;
    if (s.item >= 0) {
      auto it = row_of_item.find(s.item);
      if (it != row_of_item.end()) {
        row = it->second;
        const auto& f = samples[first_sample[row]];
        if (f.content_length != s.content_length ||
            !std::equal(s.tokens.begin(), s.tokens.begin() + s.content_length, f.tokens.begin())) {
          throw ValueError(fmt::format("collate_samples: two samples of item {} have different content", s.item));
        }
      }
    }
    if (row < 0) {
      row = static_cast<std::int64_t>(b.items.size());
      if (s.item >= 0) row_of_item.emplace(s.item, row);
      b.items.push_back(s.item);
      first_sample.push_back(static_cast<std::int64_t>(k));
      enc.add(s, 0, s.content_length + L);
      enc_lap_start.push_back(s.content_length);
    }
    sample_row.push_back(row);
    if (with_full) full.add(s, 0, s.size());
    full_lap_start.push_back(s.content_length);
    full_ldp_start.push_back(s.content_length + L);
    dec.add(s, s.content_length + L, s.size());
    b.sample_items.push_back(s.item);
    b.sample_tasks.push_back(s.task);
    b.num_tokens += s.size();
  }
  if (with_full) {
    b.full = full.build(tokens.pad, true);
    b.full_lap_index = lap_columns(full_lap_start, L);
    b.full_ldp_index = lap_columns(full_ldp_start, L);
  }
  b.encode = enc.build(tokens.pad, false);
  b.encode_lap_index = lap_columns(enc_lap_start, L);
  b.decode = dec.build(tokens.pad, true);
  b.sample_item_row = torch::tensor(sample_row, torch::kInt64);
  b.item_first_sample = torch::tensor(first_sample, torch::kInt64);
  return b;
}

PaletteBatch collate_items(const TokenizedCatalog& catalog, const std::vector<ItemIndex>& items,
                           const PaletteTokens& tokens) {
  tokens.check();
  if (items.empty()) throw ValueError("collate_items: expected at least one item, got none");
  const auto L = tokens.palette_size();
  PaletteBatch b;
  RowBuilder enc;
  std::vector<std::int64_t> starts;
  for (auto item : items) {
    if (item < 0 || static_cast<std::size_t>(item) >= catalog.size()) {
      throw IndexError(fmt::format("collate_items: item must be in [0, {}), got {}", catalog.size(), item));
    }
    const auto& content = catalog.items[item].content;
    if (content.empty()) {
      throw ValueError(fmt::format("collate_items: item {}: the content block is empty (no tokens)", item));
    }
    SampleLayout s;
    s.tokens = content;
    s.blocks.assign(content.size(), Block::kContent);
    for (auto id : tokens.lap) {
      s.tokens.push_back(id);
      s.blocks.push_back(Block::kLaP);
    }
    s.labels.assign(s.tokens.size(), kIgnoreLabel);
    s.content_length = static_cast<std::int64_t>(content.size());
    enc.add(s, 0, s.size());
    starts.push_back(s.content_length);
    b.items.push_back(item);
    b.num_tokens += s.size();
  }
  b.encode = enc.build(tokens.pad, false);
  b.encode_lap_index = lap_columns(starts, L);
  return b;
}

}  // namespace lamia
