#pragma once
// Item-level decoding constraints, composable like llama.cpp's sampler chain.
//
// The trie (DeviceTrie) is always applied: decoding only follows prefixes of real IDs. On top of it,
// each ItemConstraint marks, per user, the items it bans; a ConstraintSet combines any number of them
// (an item is banned when any constraint bans it). A trie node stays allowed iff at least one
// non-banned item lies below it: per user, the node's item count minus the banned items below it,
// computed once per batch of users by summing the banned leaves up the trie, depth by depth.
//
// Memory: a batch of B users holds a dense [B, num_items] bool of banned items and a [B, num_nodes]
// int32 of counts, then a [B, num_nodes] bool of allowed nodes (e.g. 64 users, 25k items, L = 4,
// about 110k nodes: 1.6 + 28 + 7 MB). An empty ConstraintSet costs nothing (every node of the trie
// has an item below it).
//
// A user whose every item is banned is an error (ValueError naming the user's row), never a silent
// fall back to unconstrained decoding.
//
// Example:
//   lamia::ConstraintSet constraints;
//   constraints.add(lamia::ExcludeHistory{}).add(lamia::DenyItems({3, 17}));
//   constraints.add(lamia::AllowItems::per_user(candidates));  // one list per history row
//   auto result = lamia::beam_search(*model, trie, histories, options, constraints);
#include <lamia/data/catalog.hpp>
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/ids/trie.hpp>

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lamia {

/// What a constraint sees: the users [row_begin, row_end) of histories, decoded with trie.
struct ConstraintContext {
  const DeviceTrie& trie;
  const EncodedHistories& histories;
  std::int64_t row_begin = 0;
  std::int64_t row_end = 0;
  std::int64_t rows() const { return row_end - row_begin; }
};

/// One link of the chain: marks the items it bans.
class ItemConstraint {
 public:
  virtual ~ItemConstraint() = default;
  /// A short description for error messages, e.g. "DenyItems(3 items)".
  virtual std::string name() const = 0;
  /// Sets banned[r, i] = true for every item i it bans for user row ctx.row_begin + r.
  /// banned: [ctx.rows(), num_items] bool on the trie's device; never clears an entry.
  virtual void apply(const ConstraintContext& ctx, torch::Tensor& banned) const = 0;
};

/// Bans the items of each user's history. Default: the items encoded in the histories' tokens
/// (decoded with the trie: the last max_items known items that encode_histories kept; after a text
/// vocabulary the code tokens only, so item text prompts are skipped). With
/// explicit per-user lists (one per history row, oldest first, any length) those are banned
/// instead; unknown items (< 0 or >= num_items) in them are ignored, as encode_histories skips them.
class ExcludeHistory : public ItemConstraint {
 public:
  ExcludeHistory() = default;
  explicit ExcludeHistory(std::vector<std::vector<ItemIndex>> per_user_items);
  std::string name() const override;
  void apply(const ConstraintContext& ctx, torch::Tensor& banned) const override;

 private:
  std::shared_ptr<const std::vector<std::vector<ItemIndex>>> lists_;
};

/// Bans a list of items: the same list for every user, or one list per history row (per_user).
/// Items out of range throw IndexError naming the item and the catalog size.
class DenyItems : public ItemConstraint {
 public:
  explicit DenyItems(std::vector<ItemIndex> items);
  /// One list per history row.
  static DenyItems per_user(std::vector<std::vector<ItemIndex>> lists);
  std::string name() const override;
  void apply(const ConstraintContext& ctx, torch::Tensor& banned) const override;

 private:
  std::shared_ptr<const std::vector<std::vector<ItemIndex>>> lists_;
  bool per_user_ = false;
};

/// Bans every item that is not in a list: the same list for every user, or one per history row (per_user).
/// Items out of range throw IndexError naming the item and the catalog size.
class AllowItems : public ItemConstraint {
 public:
  explicit AllowItems(std::vector<ItemIndex> items);
  /// One list per history row.
  static AllowItems per_user(std::vector<std::vector<ItemIndex>> lists);
  std::string name() const override;
  void apply(const ConstraintContext& ctx, torch::Tensor& banned) const override;

 private:
  std::shared_ptr<const std::vector<std::vector<ItemIndex>>> lists_;
  bool per_user_ = false;
};

/// The chain: any number of item constraints; the trie is implicit. Cheap to copy (shares the links).
class ConstraintSet {
 public:
  ConstraintSet() = default;
  /// Appends a link (kept by shared pointer).
  ConstraintSet& add(std::shared_ptr<const ItemConstraint> constraint);
  template <class C, class = std::enable_if_t<std::is_base_of<ItemConstraint, std::decay_t<C>>::value>>
  ConstraintSet& add(C&& constraint) {
    return add(std::make_shared<const std::decay_t<C>>(std::forward<C>(constraint)));
  }
  bool empty() const noexcept { return links_.empty(); }
  const std::vector<std::shared_ptr<const ItemConstraint>>& links() const noexcept { return links_; }
  /// "trie" or "trie, ExcludeHistory, DenyItems(2 items)".
  std::string describe() const;

  /// [rows, num_items] bool on the trie's device: the items banned for each user of ctx.
  torch::Tensor banned_items(const ConstraintContext& ctx) const;
  /// [rows, num_nodes] bool on the trie's device: nodes with at least one non-banned item below,
  /// per user; undefined when the set is empty (every node is allowed). Throws ValueError naming
  /// the first user row (ctx.row_begin + r) for which no item is left ("no item satisfies the
  /// constraints"), or when the trie has no item at all.
  torch::Tensor allowed_nodes(const ConstraintContext& ctx) const;

 private:
  std::vector<std::shared_ptr<const ItemConstraint>> links_;
};

namespace functional {
/// [rows, num_nodes] int32: per user, the non-banned items below each node (the node's item count
/// minus its banned items), from banned [rows, num_items] bool: banned leaves summed up the trie.
torch::Tensor allowed_item_counts(const DeviceTrie& trie, const torch::Tensor& banned);
}  // namespace functional

}  // namespace lamia
