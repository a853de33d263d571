#pragma once
// The block layout of one palette-encoder sample (paper 4.2.1, docs/palette.md):
//   [content] [LaP_1 .. LaP_L] [LdP_1 .. LdP_L] [task_i] [answer tokens of attribute i] [eos]
// built over token id vectors, and padded batches of such samples in the three shapes the
// encoder runs: the full layout (reference path), [content; LaP] per distinct item (pass 1 of
// the fast path) and [LdP; task] per sample (pass 2 of the fast path).
#include <lamia/data/catalog.hpp>

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lamia {

/// A token id as the tokenizers use it (same type as lamia::TokenId in lamia/text).
using PaletteTokenId = std::int32_t;

/// Which block a position belongs to. Values are what block-type tensors hold (int64).
enum class Block : std::int64_t { kPad = 0, kContent = 1, kLaP = 2, kLdP = 3, kTask = 4 };

/// Name of a block ("pad", "content", "LaP", "LdP", "task").
const char* block_name(Block block);
/// Writes block_name(block).
std::ostream& operator<<(std::ostream& os, Block block);

/// Label value of positions that carry no loss (torch's cross_entropy ignore_index default).
inline constexpr std::int64_t kIgnoreLabel = -100;

/// The ids of the tokens the layout uses. lap and ldp hold L ids each, task one id per attribute.
struct PaletteTokens {
  std::vector<PaletteTokenId> lap;
  std::vector<PaletteTokenId> ldp;
  std::vector<PaletteTokenId> task;
  PaletteTokenId eos = -1;
  PaletteTokenId pad = -1;
  /// Prepended to the content block when set.
  std::optional<PaletteTokenId> bos;

  std::int64_t palette_size() const noexcept { return static_cast<std::int64_t>(lap.size()); }
  std::int64_t num_tasks() const noexcept { return static_cast<std::int64_t>(task.size()); }
  /// Throws ValueError unless L >= 1, ldp.size() == L, at least one task, eos and pad set.
  void check() const;
};

/// How items are rendered into blocks.
struct BlockLayoutOptions {
  /// r: the first r attributes form the content block (1 <= r <= m).
  std::int64_t num_content_attributes = 1;
  /// Token budget of each rendered `name: value` piece of the content (>= 1).
  std::int64_t attribute_token_budget = 64;
  /// Token budget of an answer (the attribute value a task generates), eos not counted (>= 0).
  std::int64_t answer_token_budget = 32;
};

/// One item, tokenized: its content block and the answer of each task.
struct TokenizedItem {
  std::vector<PaletteTokenId> content;               ///< bos (if any) + the r rendered pieces
  std::vector<std::vector<PaletteTokenId>> answers;  ///< per attribute, truncated, without eos
};

/// A whole catalog tokenized once, with counts of what the budgets cut.
struct TokenizedCatalog {
  std::vector<TokenizedItem> items;
  std::vector<std::string> item_ids;  ///< the catalog's item ids, same order
  std::vector<std::string> attribute_names;
  std::int64_t num_content_attributes = 0;
  std::int64_t content_truncations = 0;  ///< `name: value` pieces cut to attribute_token_budget
  std::int64_t answer_truncations = 0;   ///< answers cut to answer_token_budget

  std::size_t size() const noexcept { return items.size(); }
  std::int64_t num_attributes() const noexcept { return static_cast<std::int64_t>(attribute_names.size()); }
};

/// Text -> token ids (e.g. [&](std::string_view s) { return tokenizer.encode(s); }).
using EncodeFunction = std::function<std::vector<PaletteTokenId>(std::string_view)>;

/// Tokenizes every item of catalog. Content piece k is `name: value` (with a leading space for
/// k > 0), encoded on its own and cut to attribute_token_budget; the answer of attribute i is
/// its value alone, cut to answer_token_budget. Throws ValueError on a bad r or budget.
TokenizedCatalog tokenize_catalog(const Catalog& catalog, const EncodeFunction& encode,
                                  const BlockLayoutOptions& options,
                                  std::optional<PaletteTokenId> bos = std::nullopt);

/// One (item, task) sample in the full layout.
struct SampleLayout {
  std::vector<PaletteTokenId> tokens;
  std::vector<Block> blocks;
  /// labels[t]: the token position t must predict (tokens[t+1]) where tokens[t+1] is an answer
  /// token or eos, else kIgnoreLabel. The loss is on answer tokens and eos only.
  std::vector<std::int64_t> labels;
  std::int64_t content_length = 0;  ///< tokens before LaP_1
  std::int64_t task_length = 0;     ///< task token + answer + eos
  ItemIndex item = -1;
  std::int64_t task = -1;  ///< 0-based attribute index the task generates

  std::int64_t size() const noexcept { return static_cast<std::int64_t>(tokens.size()); }
};

/// Builds the layout of one sample from token ids. task is 0-based (< tokens.num_tasks()).
/// Throws ValueError on an empty content block or a bad task; IndexError on a bad task index.
SampleLayout build_sample(const std::vector<PaletteTokenId>& content,
                          const std::vector<PaletteTokenId>& answer, std::int64_t task,
                          const PaletteTokens& tokens, ItemIndex item = -1);

/// The sample of (item, task) from a tokenized catalog.
SampleLayout make_sample(const TokenizedCatalog& catalog, ItemIndex item, std::int64_t task,
                          const PaletteTokens& tokens);

/// A right-padded batch of token rows. All tensors are [B, T] int64 on the CPU.
struct PaletteSegment {
  torch::Tensor input_ids;     ///< pad id at padding
  torch::Tensor position_ids;  ///< 0-based positions in the full layout; 0 at padding
  torch::Tensor block_types;   ///< Block values; Block::kPad at padding
  torch::Tensor labels;        ///< next-token targets, kIgnoreLabel where no loss (may be undefined)
  std::int64_t rows() const { return input_ids.defined() ? input_ids.size(0) : 0; }
  std::int64_t length() const { return input_ids.defined() ? input_ids.size(1) : 0; }
  /// Moves every defined tensor to device.
  PaletteSegment to(const torch::Device& device) const;
};

/// A batch of samples in every shape the encoder runs.
struct PaletteBatch {
  /// All four blocks per sample (reference path); undefined when built without it.
  PaletteSegment full;
  torch::Tensor full_lap_index;  ///< [B, L] column of LaP_j in full
  torch::Tensor full_ldp_index;  ///< [B, L] column of LdP_j in full
  /// [content; LaP] once per distinct item (fast path, pass 1; encode()).
  PaletteSegment encode;
  torch::Tensor encode_lap_index;  ///< [U, L] column of LaP_j in encode
  /// [LdP; task] per sample (fast path, pass 2): LdP_j is column j.
  PaletteSegment decode;
  torch::Tensor sample_item_row;  ///< [B] row of each sample's item in encode
  torch::Tensor item_first_sample;  ///< [U] first sample of each distinct item
  std::vector<ItemIndex> items;         ///< the distinct items, rows of encode
  std::vector<ItemIndex> sample_items;  ///< item of each sample
  std::vector<std::int64_t> sample_tasks;
  std::int64_t num_tokens = 0;  ///< non-padding tokens of the samples' full layouts

  std::int64_t num_samples() const noexcept { return static_cast<std::int64_t>(sample_items.size()); }
  std::int64_t num_items() const noexcept { return static_cast<std::int64_t>(items.size()); }
  PaletteBatch to(const torch::Device& device) const;
};

/// Pads samples into a batch. Samples of the same item share one encode row (their content
/// must be equal; the item is told apart by SampleLayout::item, or by position when it is -1).
/// with_full = false leaves the full layout out (the fast path does not need it).
PaletteBatch collate_samples(const std::vector<SampleLayout>& samples, const PaletteTokens& tokens,
                             bool with_full = true);

/// A batch with only the encode segment ([content; LaP] of each item), for encode()/export.
PaletteBatch collate_items(const TokenizedCatalog& catalog, const std::vector<ItemIndex>& items,
                           const PaletteTokens& tokens);

}  // namespace lamia
