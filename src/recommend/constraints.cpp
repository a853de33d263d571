#include <lamia/core/errors.hpp>
#include <lamia/recommend/constraints.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>

namespace lamia {

namespace {

using Lists = std::vector<std::vector<ItemIndex>>;

void check_items(const char* what, const std::vector<ItemIndex>& items, std::int64_t num_items) {
  for (auto item : items) {
    if (item < 0 || item >= num_items) {
      throw IndexError(fmt::format("{}: item {} out of range [0, {}) (the trie's catalog)", what, item, num_items));
    }
  }
}

void check_rows(const char* what, const Lists& lists, const ConstraintContext& ctx) {
  const auto B = ctx.histories.tokens.size(0);
  if (std::int64_t(lists.size()) != B) {
    throw ValueError(fmt::format("{}: one item list per history row expected ({} rows), got {} lists", what, B,
                                 lists.size()));
  }
}

// [rows, num_items] bool on the CPU: true at each listed (known) item of the ctx's rows.
torch::Tensor rows_mask(const Lists& lists, const ConstraintContext& ctx, bool skip_unknown, const char* what) {
  const auto n = ctx.trie.num_items();
  auto mask = torch::zeros({ctx.rows(), n}, torch::kBool);
  auto* p = mask.data_ptr<bool>();
  for (std::int64_t r = 0; r < ctx.rows(); ++r) {
    const auto& list = lists[std::size_t(ctx.row_begin + r)];
    if (!skip_unknown) check_items(what, list, n);
    for (auto item : list) {
      if (item >= 0 && item < n) p[r * n + item] = true;
    }
  }
  return mask;
}

torch::Tensor index_tensor(const std::vector<ItemIndex>& items, torch::Device device) {
  auto t = torch::empty({std::int64_t(items.size())}, torch::kInt64);
  auto* p = t.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < items.size(); ++i) p[i] = items[i];
  return t.to(device);
}

}  // namespace

// ---------------------------------------------------------------- ExcludeHistory

ExcludeHistory::ExcludeHistory(std::vector<std::vector<ItemIndex>> per_user_items)
    : lists_(std::make_shared<const Lists>(std::move(per_user_items))) {}

std::string ExcludeHistory::name() const { return lists_ ? "ExcludeHistory(lists)" : "ExcludeHistory"; }

void ExcludeHistory::apply(const ConstraintContext& ctx, torch::Tensor& banned) const {
  if (lists_) {
    check_rows("ExcludeHistory", *lists_, ctx);
    banned |= rows_mask(*lists_, ctx, /*skip_unknown=*/true, "ExcludeHistory").to(banned.device());
    return;
  }
  // The items encoded in the rows' tokens: [BOS, id_1 ..., id_n ...] right-aligned.
  const auto& h = ctx.histories;
  const auto W = ctx.trie.id_length();
  const auto T = h.tokens.size(1);
  const auto dev = ctx.trie.device();
  torch::Tensor slots, valid;  // [R, m, W] tokens of m item slots, [R, m] which slots hold an item
  if (ctx.trie.vocabulary().text_vocab_size() > 0) {
    // The LM layout may hold an item text prompt before each ID: a row's code tokens (those after
    // the text vocabulary) are its items' IDs, oldest first.
    const auto first_code = ctx.trie.vocabulary().text_vocab_size();
    auto tok = h.tokens.narrow(0, ctx.row_begin, ctx.rows()).to(torch::kCPU).contiguous();
    auto key = h.key_mask.narrow(0, ctx.row_begin, ctx.rows()).to(torch::kCPU).contiguous();
    const auto* t = tok.data_ptr<std::int64_t>();
    const auto* k = key.data_ptr<bool>();
    std::vector<std::vector<std::int64_t>> codes(std::size_t(ctx.rows()));
    std::int64_t m = 0;
    for (std::int64_t r = 0; r < ctx.rows(); ++r) {
      for (std::int64_t i = r * T; i < (r + 1) * T; ++i)
        if (k[i] && t[i] >= first_code) codes[std::size_t(r)].push_back(t[i]);
      m = std::max<std::int64_t>(m, std::int64_t(codes[std::size_t(r)].size()) / W);
    }
    if (m <= 0 || ctx.rows() == 0) return;
    slots = torch::zeros({ctx.rows(), m, W}, torch::kInt64);
    valid = torch::zeros({ctx.rows(), m}, torch::kBool);
    auto* sp = slots.data_ptr<std::int64_t>();
    auto* vp = valid.data_ptr<bool>();
    for (std::int64_t r = 0; r < ctx.rows(); ++r) {
      const auto& c = codes[std::size_t(r)];
      std::copy(c.begin(), c.end(), sp + r * m * W);
      std::fill(vp + r * m, vp + r * m + std::int64_t(c.size()) / W, true);
    }
    slots = slots.to(dev);
    valid = valid.to(dev);
  } else {
    const auto m = (T - 1) / W;  // item slots of the longest row
    if (m <= 0 || ctx.rows() == 0) return;
    slots = h.tokens.narrow(0, ctx.row_begin, ctx.rows()).narrow(1, T - m * W, m * W).to(dev).reshape({-1, m, W});
    auto items_here = (h.lengths.narrow(0, ctx.row_begin, ctx.rows()).to(dev) - 1).div(W, "floor");  // [R]
    auto slot = torch::arange(m, torch::TensorOptions().dtype(torch::kLong).device(dev));
    valid = slot.unsqueeze(0) >= (m - items_here).unsqueeze(1);  // right-aligned: the last n slots
  }
  auto items = ctx.trie.find_items(slots);  // [R, m], -1 if not an ID
  valid &= items >= 0;
  const auto n = ctx.trie.num_items();
  auto idx = torch::where(valid, items, torch::full_like(items, n));
  auto ext = torch::zeros({ctx.rows(), n + 1}, banned.options());
  ext.scatter_(1, idx, true);
  banned |= ext.narrow(1, 0, n);
}

// ---------------------------------------------------------------- DenyItems / AllowItems

DenyItems::DenyItems(std::vector<ItemIndex> items) : lists_(std::make_shared<const Lists>(Lists{std::move(items)})) {}
DenyItems DenyItems::per_user(std::vector<std::vector<ItemIndex>> lists) {
  DenyItems c(std::vector<ItemIndex>{});
  c.lists_ = std::make_shared<const Lists>(std::move(lists));
  c.per_user_ = true;
  return c;
}

std::string DenyItems::name() const {
  return per_user_ ? fmt::format("DenyItems({} lists)", lists_->size())
                   : fmt::format("DenyItems({} items)", lists_->front().size());
}

void DenyItems::apply(const ConstraintContext& ctx, torch::Tensor& banned) const {
  if (per_user_) {
    check_rows("DenyItems", *lists_, ctx);
    banned |= rows_mask(*lists_, ctx, /*skip_unknown=*/false, "DenyItems").to(banned.device());
    return;
  }
  check_items("DenyItems", lists_->front(), ctx.trie.num_items());
  if (lists_->front().empty()) return;
  banned.index_fill_(1, index_tensor(lists_->front(), banned.device()), true);
}

AllowItems::AllowItems(std::vector<ItemIndex> items) : lists_(std::make_shared<const Lists>(Lists{std::move(items)})) {}
AllowItems AllowItems::per_user(std::vector<std::vector<ItemIndex>> lists) {
  AllowItems c(std::vector<ItemIndex>{});
  c.lists_ = std::make_shared<const Lists>(std::move(lists));
  c.per_user_ = true;
  return c;
}

std::string AllowItems::name() const {
  return per_user_ ? fmt::format("AllowItems({} lists)", lists_->size())
                   : fmt::format("AllowItems({} items)", lists_->front().size());
}

void AllowItems::apply(const ConstraintContext& ctx, torch::Tensor& banned) const {
  if (per_user_) {
    check_rows("AllowItems", *lists_, ctx);
    banned |= rows_mask(*lists_, ctx, /*skip_unknown=*/false, "AllowItems").logical_not().to(banned.device());
    return;
  }
  check_items("AllowItems", lists_->front(), ctx.trie.num_items());
  auto allowed = torch::zeros({ctx.trie.num_items()}, banned.options());
  if (!lists_->front().empty()) allowed.index_fill_(0, index_tensor(lists_->front(), banned.device()), true);
  banned |= allowed.logical_not().unsqueeze(0);
}

// ---------------------------------------------------------------- ConstraintSet

ConstraintSet& ConstraintSet::add(std::shared_ptr<const ItemConstraint> constraint) {
  if (!constraint) throw ValueError("ConstraintSet::add: the constraint is null");
  links_.push_back(std::move(constraint));
  return *this;
}

std::string ConstraintSet::describe() const {
  std::string s = "trie";
  for (const auto& c : links_) s += ", " + c->name();
  return s;
}

torch::Tensor ConstraintSet::banned_items(const ConstraintContext& ctx) const {
  TORCH_CHECK_VALUE(ctx.row_begin >= 0 && ctx.row_begin <= ctx.row_end && ctx.row_end <= ctx.histories.tokens.size(0),
                    "ConstraintSet: rows [", ctx.row_begin, ", ", ctx.row_end, ") out of range for ",
                    ctx.histories.tokens.size(0), " history rows");
  auto banned = torch::zeros({ctx.rows(), ctx.trie.num_items()},
                             torch::TensorOptions().dtype(torch::kBool).device(ctx.trie.device()));
  for (const auto& c : links_) c->apply(ctx, banned);
  return banned;
}

torch::Tensor ConstraintSet::allowed_nodes(const ConstraintContext& ctx) const {
  if (ctx.trie.num_items() == 0) {
    throw ValueError(fmt::format("constrained decoding: user row {}: no item satisfies the constraints ({}): the trie "
                                 "has no item",
                                 ctx.row_begin, describe()));
  }
  if (links_.empty()) return {};
  auto allowed = functional::allowed_item_counts(ctx.trie, banned_items(ctx)) > 0;
  auto root = allowed.select(1, 0);
  if (ctx.rows() > 0 && !root.all().item<bool>()) {
    const auto r = root.logical_not().to(torch::kInt32).argmax().item<std::int64_t>();
    throw ValueError(fmt::format("constrained decoding: user row {}: no item satisfies the constraints ({})",
                                 ctx.row_begin + r, describe()));
  }
  return allowed;
}

namespace functional {

torch::Tensor allowed_item_counts(const DeviceTrie& trie, const torch::Tensor& banned) {
  TORCH_CHECK_VALUE(banned.dim() == 2 && banned.size(1) == trie.num_items() && banned.scalar_type() == torch::kBool,
                    "allowed_item_counts: banned must be [rows, ", trie.num_items(), "] bool, got ",
                    banned.scalar_type(), " ", banned.sizes());
  const auto R = banned.size(0);
  auto counts = torch::zeros({R, trie.num_nodes()}, torch::TensorOptions().dtype(torch::kInt32).device(trie.device()));
  if (trie.num_items() == 0) return counts;
  counts.index_copy_(1, trie.item_leaf(), banned.to(trie.device()).logical_not().to(torch::kInt32));
  // Leaves up to the root: each depth's counts are added to their parents (one index_add per depth).
  for (std::int64_t d = trie.id_length(); d >= 1; --d) {
    const auto b = trie.depth_begin(d), n = trie.depth_size(d);
    if (n == 0) continue;
    counts.index_add_(1, trie.parent().narrow(0, b, n), counts.narrow(1, b, n).clone());
  }
  return counts;
}

}  // namespace functional

}  // namespace lamia
