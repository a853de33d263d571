#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/core/binary_io.hpp>
#include <lamia/ids/semantic_id_table.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <ostream>
#include <sstream>

namespace lamia {
namespace {
constexpr char kTableMagic[] = "LAMIASID";  // 8 bytes, no terminator written
constexpr std::int64_t kMaxLevels = 4096;
}  // namespace

namespace {
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

SemanticIdTable SemanticIdTable::from_codes(const std::int32_t* codes, std::int64_t num_items,
                                            std::int64_t num_levels, std::vector<std::int64_t> codebook_sizes,
                                            IndexTokenOrder index_order, std::uint64_t seed) {
  if (num_levels < 1 || num_levels > kMaxLevels) {
    throw ValueError(fmt::format("SemanticIdTable: num_levels must be 1 to {}, got {}", kMaxLevels, num_levels));
  }
  if (num_items < 0 || num_items >= std::numeric_limits<std::int32_t>::max()) {
    throw ValueError(fmt::format("SemanticIdTable: num_items must be 0 to 2^31-2, got {}", num_items));
  }
  if (static_cast<std::int64_t>(codebook_sizes.size()) != num_levels) {
    throw ValueError(fmt::format("SemanticIdTable: codebook_sizes must have one entry per level ({}), got {}",
                                 num_levels, codebook_sizes.size()));
  }
  for (std::int64_t l = 0; l < num_levels; ++l) {
    if (codebook_sizes[l] < 1 || codebook_sizes[l] > std::numeric_limits<Token>::max()) {
      throw ValueError(fmt::format("SemanticIdTable: codebook_sizes[{}] must be >= 1, got {}", l, codebook_sizes[l]));
    }
  }
  const std::int64_t L = num_levels;
  for (std::int64_t i = 0; i < num_items; ++i) {
    for (std::int64_t l = 0; l < L; ++l) {
      const auto c = codes[i * L + l];
      if (c < 0 || c >= codebook_sizes[l]) {
        throw ValueError(fmt::format("SemanticIdTable: code of item {} at position {} is {}, expected 0 to {}", i, l,
                                     c, codebook_sizes[l] - 1));
      }
    }
  }
  // Items sorted by their L codes; within equal codes by the index-token order (a seeded hash of
  // the item index, ties by index, or the item index itself).
  std::vector<std::int32_t> order(num_items);
  std::iota(order.begin(), order.end(), 0);
  auto less = [&](std::int32_t a, std::int32_t b) {
    return std::lexicographical_compare(codes + a * L, codes + (a + 1) * L, codes + b * L, codes + (b + 1) * L);
  };
  std::vector<std::uint64_t> key;
  if (index_order == IndexTokenOrder::item_hash) {
    key.resize(std::size_t(num_items));
    for (std::int64_t i = 0; i < num_items; ++i) key[std::size_t(i)] = splitmix64(seed ^ std::uint64_t(i));
  }
  std::sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
    if (less(a, b)) return true;
    if (less(b, a)) return false;
    if (!key.empty() && key[std::size_t(a)] != key[std::size_t(b)]) return key[std::size_t(a)] < key[std::size_t(b)];
    return a < b;
  });

  SemanticIdTable t;
  t.num_items_ = num_items;
  t.num_levels_ = L;
  t.ids_.resize(static_cast<std::size_t>(num_items * (L + 1)));
  std::int64_t max_group = 1;
  for (std::int64_t s = 0; s < num_items;) {
    std::int64_t e = s + 1;
    while (e < num_items && !less(order[s], order[e])) ++e;
    for (std::int64_t r = s; r < e; ++r) {
      const auto item = order[r];
      std::copy(codes + item * L, codes + (item + 1) * L, t.ids_.begin() + item * (L + 1));
      t.ids_[item * (L + 1) + L] = static_cast<Token>(r - s);
    }
    max_group = std::max(max_group, e - s);
    s = e;
  }
  codebook_sizes.push_back(max_group);
  t.codebook_sizes_ = std::move(codebook_sizes);
  t.build_trie("SemanticIdTable");
  return t;
}

SemanticIdTable SemanticIdTable::from_codes(const torch::Tensor& codes, std::vector<std::int64_t> codebook_sizes,
                                            IndexTokenOrder index_order, std::uint64_t seed) {
  TORCH_CHECK_VALUE(codes.dim() == 2, "SemanticIdTable: codes must be 2-D (items x positions), got ", codes.dim(),
                    "-D");
  TORCH_CHECK_VALUE(!codes.is_floating_point() && !codes.is_complex() && codes.scalar_type() != torch::kBool,
                    "SemanticIdTable: codes must be an integer tensor, got ", codes.scalar_type());
  TORCH_CHECK_VALUE(codes.device().is_cpu(), "SemanticIdTable: codes must be on the CPU, got ", codes.device());
  auto c = codes.to(torch::kInt64).contiguous();
  if (codebook_sizes.empty()) {
    for (std::int64_t l = 0; l < c.size(1); ++l) {
      codebook_sizes.push_back(c.size(0) == 0 ? 1 : std::max<std::int64_t>(c.select(1, l).max().item<std::int64_t>() + 1, 1));
    }
  }
  TORCH_CHECK_VALUE(c.numel() == 0 || (c.min().item<std::int64_t>() >= 0 &&
                                       c.max().item<std::int64_t>() <= std::numeric_limits<Token>::max()),
                    "SemanticIdTable: codes must be 0 to 2^31-1");
  auto c32 = c.to(torch::kInt32).contiguous();
  return from_codes(c32.data_ptr<std::int32_t>(), c32.size(0), c32.size(1), std::move(codebook_sizes), index_order,
                    seed);
}

void SemanticIdTable::build_trie(const std::string& source) {
  const std::int64_t n = num_items_, W = num_levels_ + 1;
  const Token* ids = ids_.data();
  sorted_items_.resize(n);
  std::iota(sorted_items_.begin(), sorted_items_.end(), 0);
  std::sort(sorted_items_.begin(), sorted_items_.end(), [&](std::int32_t a, std::int32_t b) {
    return std::lexicographical_compare(ids + a * W, ids + (a + 1) * W, ids + b * W, ids + (b + 1) * W);
  });
  for (std::int64_t r = 1; r < n; ++r) {
    const auto a = sorted_items_[r - 1], b = sorted_items_[r];
    if (std::equal(ids + a * W, ids + (a + 1) * W, ids + b * W)) {
      throw ValueError(fmt::format("{}: items {} and {} have the same ID", source, std::min(a, b), std::max(a, b)));
    }
  }
  token_.assign(1, -1);
  leaf_begin_.assign(1, 0);
  leaf_count_.assign(1, static_cast<std::int32_t>(n));
  first_child_.clear();
  depth_start_.assign(1, 0);
  // Level by level: split each node's run of sorted items by the token at this depth.
  for (std::int64_t depth = 0; depth < W; ++depth) {
    const auto level_begin = depth_start_.back();
    const auto level_end = static_cast<std::int32_t>(token_.size());
    depth_start_.push_back(level_end);
    for (auto v = level_begin; v < level_end; ++v) {
      first_child_.push_back(static_cast<Node>(token_.size()));
      const auto lo = leaf_begin_[v], hi = lo + leaf_count_[v];
      for (auto r = lo; r < hi;) {
        const Token tok = ids[sorted_items_[r] * W + depth];
        auto e = r + 1;
        while (e < hi && ids[sorted_items_[e] * W + depth] == tok) ++e;
        token_.push_back(tok);
        leaf_begin_.push_back(r);
        leaf_count_.push_back(e - r);
        r = e;
      }
    }
  }
  // Leaves (depth L+1) have no children.
  const auto num_nodes = static_cast<std::int32_t>(token_.size());
  while (static_cast<std::int32_t>(first_child_.size()) < num_nodes + 1) first_child_.push_back(num_nodes);
  depth_start_.push_back(num_nodes);
  // Collision statistics: groups are the nodes at depth L.
  num_unique_codes_ = depth_start_[W] - depth_start_[W - 1];
  num_colliding_items_ = 0;
  for (auto v = depth_start_[W - 1]; v < depth_start_[W]; ++v) {
    if (leaf_count_[v] > 1) num_colliding_items_ += leaf_count_[v];
  }
  if (n == 0) num_unique_codes_ = 0;
}

void SemanticIdTable::check_item(ItemIndex item) const {
  if (item < 0 || item >= num_items_) {
    throw IndexError(fmt::format("SemanticIdTable: item {} out of range (table has {} items)", item, num_items_));
  }
}

std::vector<SemanticIdTable::Token> SemanticIdTable::id(ItemIndex item) const {
  const Token* p = id_data(item);
  return {p, p + id_length()};
}

const SemanticIdTable::Token* SemanticIdTable::id_data(ItemIndex item) const {
  check_item(item);
  return ids_.data() + static_cast<std::int64_t>(item) * id_length();
}

torch::Tensor SemanticIdTable::ids() const {
  return torch::from_blob(const_cast<Token*>(ids_.data()), {num_items_, id_length()}, torch::kInt32)
      .to(torch::kInt64);
}

torch::Tensor SemanticIdTable::codes() const { return ids().narrow(1, 0, num_levels_).contiguous(); }

SemanticIdTable::Node SemanticIdTable::child(Node node, Token token) const {
  if (node < 0 || node >= num_nodes()) return kNoNode;
  const auto b = token_.begin() + first_child_[node], e = token_.begin() + first_child_[node + 1];
  const auto it = std::lower_bound(b, e, token);
  if (it == e || *it != token) return kNoNode;
  return static_cast<Node>(it - token_.begin());
}

SemanticIdTable::Node SemanticIdTable::walk(const Token* prefix, std::size_t length) const {
  if (num_nodes() == 0) return kNoNode;
  Node v = root();
  for (std::size_t i = 0; i < length && v != kNoNode; ++i) v = child(v, prefix[i]);
  return v;
}

SemanticIdTable::Children SemanticIdTable::children(Node node) const {
  if (node < 0 || node >= num_nodes()) {
    throw IndexError(fmt::format("SemanticIdTable: trie node {} out of range (0 to {})", node, num_nodes() - 1));
  }
  const auto b = first_child_[node];
  return {token_.data() + b, b, static_cast<std::size_t>(first_child_[node + 1] - b)};
}

std::int64_t SemanticIdTable::count(Node node) const {
  if (node < 0 || node >= num_nodes()) return 0;
  return leaf_count_[node];
}

ItemIndex SemanticIdTable::leaf_item(Node node) const {
  if (node < depth_start_[id_length()] || node >= num_nodes()) return -1;
  return sorted_items_[leaf_begin_[node]];
}

std::optional<ItemIndex> SemanticIdTable::find(const std::vector<Token>& id) const {
  if (static_cast<std::int64_t>(id.size()) != id_length()) return std::nullopt;
  const Node v = walk(id.data(), id.size());
  if (v == kNoNode) return std::nullopt;
  return leaf_item(v);
}

ItemIndex SemanticIdTable::item(const std::vector<Token>& id) const {
  if (static_cast<std::int64_t>(id.size()) != id_length()) {
    throw IndexError(fmt::format("SemanticIdTable: an ID has {} tokens, got {}", id_length(), id.size()));
  }
  if (auto found = find(id)) return *found;
  throw IndexError(fmt::format("SemanticIdTable: no item has the ID ({})", fmt::join(id, ", ")));
}

std::vector<ItemIndex> SemanticIdTable::items_with_prefix(const std::vector<Token>& prefix) const {
  if (static_cast<std::int64_t>(prefix.size()) > id_length()) {
    throw ValueError(fmt::format("SemanticIdTable: a prefix has at most {} tokens, got {}", id_length(),
                                 prefix.size()));
  }
  const Node v = walk(prefix.data(), prefix.size());
  if (v == kNoNode) return {};
  const auto b = sorted_items_.begin() + leaf_begin_[v];
  return {b, b + leaf_count_[v]};
}

std::vector<SemanticIdTable::Token> SemanticIdTable::allowed_next(const std::vector<Token>& prefix) const {
  const Node v = walk(prefix.data(), prefix.size());
  if (v == kNoNode) return {};
  const auto c = children(v);
  return {c.tokens, c.tokens + c.size};
}

ItemIndex SemanticIdTable::add_item(const std::vector<Token>& codes) {
  if (static_cast<std::int64_t>(codes.size()) != num_levels_) {
    throw ValueError(fmt::format("SemanticIdTable::add_item: codes must have {} entries (one per level), got {}",
                                 num_levels_, codes.size()));
  }
  for (std::int64_t l = 0; l < num_levels_; ++l) {
    if (codes[l] < 0 || codes[l] >= codebook_sizes_[l]) {
      throw ValueError(fmt::format("SemanticIdTable::add_item: code at position {} is {}, expected 0 to {}", l,
                                   codes[l], codebook_sizes_[l] - 1));
    }
  }
  if (num_items_ + 1 >= std::numeric_limits<std::int32_t>::max()) {
    throw ValueError("SemanticIdTable::add_item: the table is full (2^31-2 items)");
  }
  const Node group = walk(codes.data(), codes.size());
  // Next free index token: one past the largest in the group (equal to its size
  // for tables built by from_codes, where tokens are 0..g-1).
  Token next = 0;
  if (group != kNoNode) {
    const auto c = children(group);
    next = c.tokens[c.size - 1] + 1;
  }
  const auto item = static_cast<ItemIndex>(num_items_);
  ids_.insert(ids_.end(), codes.begin(), codes.end());
  ids_.push_back(next);
  ++num_items_;
  codebook_sizes_.back() = std::max<std::int64_t>(codebook_sizes_.back(), next + 1);
  build_trie("SemanticIdTable::add_item");
  return item;
}

void SemanticIdTable::save(const std::filesystem::path& path) const {
  detail::BinaryWriter w;
  w.put_bytes(std::string_view(kTableMagic, 8));
  w.put<std::uint32_t>(kFormatVersion);
  w.put<std::uint32_t>(static_cast<std::uint32_t>(num_levels_));
  w.put<std::uint64_t>(static_cast<std::uint64_t>(num_items_));
  for (auto s : codebook_sizes_) w.put<std::uint64_t>(static_cast<std::uint64_t>(s));
  w.put_array(ids_.data(), ids_.size());
  w.put_checksum();
  write_file_atomically(path, [&](std::ostream& out) { out.write(w.bytes().data(), w.bytes().size()); });
}

SemanticIdTable SemanticIdTable::load(const std::filesystem::path& path) {
  detail::BinaryReader r(path);
  r.expect_header(std::string_view(kTableMagic, 8), "lamia semantic-ID table", kFormatVersion);
  const auto L = r.get<std::uint32_t>("num_levels");
  if (L < 1 || L > kMaxLevels) r.fail(fmt::format("field 'num_levels' is {}, expected 1 to {}", L, kMaxLevels));
  const auto n = r.get_size("num_items", 0, std::numeric_limits<std::int32_t>::max() - 1);
  std::vector<std::int64_t> sizes(L + 1);
  for (std::uint32_t l = 0; l <= L; ++l) {
    sizes[l] = static_cast<std::int64_t>(r.get_size("codebook_sizes", 1, std::numeric_limits<Token>::max()));
  }
  const std::uint64_t count = n * (L + 1);
  r.expect_remaining(count * sizeof(Token), fmt::format("{} items x {} tokens", n, L + 1));
  r.verify_checksum();
  SemanticIdTable t;
  t.num_items_ = static_cast<std::int64_t>(n);
  t.num_levels_ = L;
  t.codebook_sizes_ = sizes;
  t.ids_ = r.get_vector<Token>(count, "ids");
  r.expect_end();
  for (std::uint64_t i = 0; i < n; ++i) {
    for (std::uint32_t l = 0; l <= L; ++l) {
      const Token tok = t.ids_[i * (L + 1) + l];
      if (tok < 0 || tok >= sizes[l]) {
        r.fail(fmt::format("inconsistent sizes: token {} of item {} is {}, but codebook_sizes[{}] is {}", l, i, tok,
                           l, sizes[l]));
      }
    }
  }
  t.build_trie(path.string());
  return t;
}

void SemanticIdTable::dump(std::ostream& out) const {
  out << fmt::format("# lamia semantic-ID table: {} items, {} codes + index token; codebook sizes {}; "
                     "{} items needed the index token\n",
                     num_items_, num_levels_, fmt::join(codebook_sizes_, " "), num_colliding_items_);
  out << "# item\tid\n";
  for (std::int64_t i = 0; i < num_items_; ++i) {
    const Token* p = ids_.data() + i * id_length();
    out << i << '\t' << fmt::format("{}", fmt::join(p, p + id_length(), " ")) << '\n';
  }
}

std::string SemanticIdTable::dump() const {
  std::ostringstream s;
  dump(s);
  return s.str();
}

void SemanticIdTable::dump(const std::filesystem::path& path) const { write_text_atomically(path, dump()); }

bool SemanticIdTable::operator==(const SemanticIdTable& other) const {
  return num_items_ == other.num_items_ && num_levels_ == other.num_levels_ &&
         codebook_sizes_ == other.codebook_sizes_ && ids_ == other.ids_;
}

std::uint64_t table_checksum(const SemanticIdTable& table) {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&](std::uint64_t v) { h = (h ^ v) * 1099511628211ULL; };
  mix(std::uint64_t(table.num_items()));
  for (auto s : table.codebook_sizes()) mix(std::uint64_t(s));
  for (std::int64_t i = 0; i < table.num_items(); ++i) {
    const auto* id = table.id_data(ItemIndex(i));
    for (std::int64_t l = 0; l < table.id_length(); ++l) mix(std::uint64_t(std::uint32_t(id[l])));
  }
  return h;
}

}  // namespace lamia
