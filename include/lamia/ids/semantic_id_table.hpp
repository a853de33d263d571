#pragma once
// SemanticIdTable: the two-way map between items and their semantic IDs.
//
// A semantic ID is L codes (one per palette position or quantizer level) plus
// one index token that tells apart items whose L codes collide, so every ID has
// length L+1 and maps to exactly one item.
//
// Collision rule: items that share all L codes get index tokens 0, 1, 2, ... in the order of a
// seeded hash of their item index (IndexTokenOrder::item_hash, the default), so the index token
// carries no information about the rows' order: on the synthetic catalog, as in many exports,
// item order is popularity order, and ordering by it would leak popularity to whichever tokenizer
// collides most. IndexTokenOrder::item_order keeps the earlier rule (increasing item index). An
// item added later (add_item, e.g. a new item encoded without refitting) takes the
// next free index token of its group, so existing IDs never change.
//
// The prefix trie (what constrained beam search walks) is stored level by level
// in breadth-first order: the children of a node are a contiguous run of nodes,
// sorted by token, so "allowed next tokens" is one slice and "child with token t"
// one binary search. No per-node allocation.
//
// Example:
//   auto table = lamia::SemanticIdTable::from_codes(codes /* n x L int */, {256, 256, 256, 256});
//   auto next = table.allowed_next({12, 5});   // tokens that may follow the prefix (12, 5)
//   lamia::ItemIndex item = table.item({12, 5, 200, 7, 0});
#include <lamia/data/catalog.hpp>

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace lamia {

/// How colliding items are told apart (see the file comment).
enum class IndexTokenOrder {
  item_hash,   ///< by splitmix64(seed ^ item index): stable, unrelated to the rows' order (default)
  item_order,  ///< by increasing item index
};

class SemanticIdTable {
 public:
  using Token = std::int32_t;
  /// A node of the prefix trie: 0 is the root (empty prefix); kNoNode means "absent".
  using Node = std::int32_t;
  static constexpr Node kNoNode = -1;
  /// Version of the binary file format written by save().
  static constexpr std::uint32_t kFormatVersion = 1;

  /// The children of a trie node: size tokens, ascending; child i is node first + i.
  struct Children {
    const Token* tokens = nullptr;
    Node first = kNoNode;
    std::size_t size = 0;
  };

  SemanticIdTable() = default;

  /// Builds the table from n x L codes (row-major), adding index tokens for collisions.
  /// codebook_sizes has L entries; every code must lie in [0, codebook_sizes[l]).
  /// Throws ValueError naming the item and position of an out-of-range code.
  static SemanticIdTable from_codes(const std::int32_t* codes, std::int64_t num_items, std::int64_t num_levels,
                                    std::vector<std::int64_t> codebook_sizes,
                                    IndexTokenOrder order = IndexTokenOrder::item_hash, std::uint64_t seed = 0);
  /// Same from an n x L integer tensor (any integer dtype, CPU). An empty
  /// codebook_sizes means "max code + 1 at each position".
  static SemanticIdTable from_codes(const torch::Tensor& codes, std::vector<std::int64_t> codebook_sizes = {},
                                    IndexTokenOrder order = IndexTokenOrder::item_hash, std::uint64_t seed = 0);

  std::int64_t num_items() const noexcept { return num_items_; }
  /// L: the number of codes before the index token.
  std::int64_t num_levels() const noexcept { return num_levels_; }
  /// L + 1.
  std::int64_t id_length() const noexcept { return num_levels_ + 1; }
  /// L + 1 vocabulary sizes; the last is that of the index token (the largest collision group, >= 1).
  const std::vector<std::int64_t>& codebook_sizes() const noexcept { return codebook_sizes_; }

  /// The L+1 tokens of an item's ID. Throws IndexError for an unknown item.
  std::vector<Token> id(ItemIndex item) const;
  /// Pointer to the L+1 tokens of an item's ID (valid until the table changes).
  const Token* id_data(ItemIndex item) const;
  /// All IDs as an n x (L+1) int64 tensor (a copy).
  torch::Tensor ids() const;
  /// The L codes of every item (the IDs without the index token), n x L int64.
  torch::Tensor codes() const;

  /// The item with this full ID, or nullopt (also for a wrong length).
  std::optional<ItemIndex> find(const std::vector<Token>& id) const;
  /// The item with this full ID; throws IndexError when there is none.
  ItemIndex item(const std::vector<Token>& id) const;
  /// Items whose ID starts with prefix (any length 0..L+1), in ID order.
  std::vector<ItemIndex> items_with_prefix(const std::vector<Token>& prefix) const;
  /// Tokens that may follow prefix (ascending); empty for a full ID or an unknown prefix.
  std::vector<Token> allowed_next(const std::vector<Token>& prefix) const;

  // The prefix trie, for decoders that keep a node per beam.
  Node root() const noexcept { return 0; }
  std::int64_t num_nodes() const noexcept { return static_cast<std::int64_t>(token_.size()); }
  /// The child of node reached by token, or kNoNode.
  Node child(Node node, Token token) const;
  /// The node reached by a prefix, or kNoNode.
  Node walk(const Token* prefix, std::size_t length) const;
  Children children(Node node) const;
  /// Number of items below a node.
  std::int64_t count(Node node) const;
  /// The item at a leaf (depth L+1), or -1 for an inner node.
  ItemIndex leaf_item(Node node) const;

  /// Items whose L codes are shared with at least one other item (those that needed the index token to be told apart).
  std::int64_t num_colliding_items() const noexcept { return num_colliding_items_; }
  /// Number of distinct L-code prefixes.
  std::int64_t num_unique_codes() const noexcept { return num_unique_codes_; }

  /// Appends an item with these L codes; its index token is the next free one of its group.
  /// Returns the new item's index (num_items() before the call). Rebuilds the trie (O(n log n)).
  ItemIndex add_item(const std::vector<Token>& codes);

  /// Writes the versioned binary format atomically (see docs/quantize.md).
  void save(const std::filesystem::path& path) const;
  /// Reads and checks a file written by save(). Throws ValueError naming the file and the problem,
  /// IOError when it cannot be read.
  static SemanticIdTable load(const std::filesystem::path& path);
  /// Readable text: a header line, then "item<TAB>t0 t1 ... tL" per item.
  void dump(std::ostream& out) const;
  std::string dump() const;
  /// Writes dump() to a file atomically.
  void dump(const std::filesystem::path& path) const;

  bool operator==(const SemanticIdTable& other) const;
  bool operator!=(const SemanticIdTable& other) const { return !(*this == other); }

 private:
  void build_trie(const std::string& source);
  void check_item(ItemIndex item) const;

  std::int64_t num_items_ = 0;
  std::int64_t num_levels_ = 0;
  std::vector<std::int64_t> codebook_sizes_;
  std::vector<Token> ids_;  // row-major n x (L+1)
  std::int64_t num_colliding_items_ = 0;
  std::int64_t num_unique_codes_ = 0;
  // Trie, breadth-first: node v has children first_child_[v] .. first_child_[v+1]-1.
  std::vector<Token> token_;             // token on the edge into node v (root: -1)
  std::vector<Node> first_child_;        // num_nodes + 1 entries
  std::vector<std::int32_t> leaf_begin_; // items below v: sorted_items_[leaf_begin_[v] .. leaf_begin_[v]+count)
  std::vector<std::int32_t> leaf_count_;
  std::vector<ItemIndex> sorted_items_;  // items in ID order
  std::vector<std::int32_t> depth_start_; // first node of each depth 0..L+1, plus num_nodes
};

/// FNV-1a 64 over a table's item count, level sizes and every item's ID in item order: the table's
/// identity, recorded by DeviceTrie and by saved recommenders and checkpoints.
std::uint64_t table_checksum(const SemanticIdTable& table);

}  // namespace lamia
