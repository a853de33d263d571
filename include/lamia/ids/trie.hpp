#pragma once
// DeviceTrie: the prefix trie of a SemanticIdTable as flat tensors on the model's device, so that
// a decoding step finds every beam's allowed next tokens with one gather (no loop per beam).
//
// Layout (CSR, breadth-first as in SemanticIdTable): node 0 is the root (empty prefix); the nodes
// of depth d (prefixes of d tokens, d = 0..L+1) are the contiguous run [depth_begin(d),
// depth_begin(d+1)); the children of a node are the contiguous run first_child[v] ..
// first_child[v] + num_children[v] - 1, ascending by token. Per node, edge_token is the
// *vocabulary* token on the edge into it (CodeVocabulary::token(depth - 1, code); kPad at the
// root), so a model's log-probabilities are gathered with it directly. Leaves (depth L+1) are the
// items. The trie records the table's layout (level sizes, item count, a checksum of the IDs) and
// refuses a table, vocabulary or model of another layout with a ValueError naming both.
//
// Memory: 7 int64 tensors of num_nodes (<= 1 + n (L+1)) entries and one of n: 100k items, L = 4:
// about 20 MB. A host copy of depth_begin and max_children is kept for chunking.
//
// Example:
//   auto vocab = lamia::CodeVocabulary::for_table(table);
//   lamia::DeviceTrie trie(table, vocab, model->device());
//   auto step = trie.children(beam_nodes, depth);  // [M, max_children(depth)] nodes + valid mask
#include <lamia/ids/semantic_id_table.hpp>
#include <lamia/ids/code_vocabulary.hpp>

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lamia {

/// The children of M trie nodes, padded to the widest node of their depth.
struct TrieChildren {
  torch::Tensor nodes;  ///< [M, C] int64: child nodes; 0 (the root) where !valid
  torch::Tensor valid;  ///< [M, C] bool: slot c < num_children of the parent
};

class DeviceTrie {
 public:
  DeviceTrie() = default;
  /// Builds the trie of table's IDs with vocab's tokens (vocab must have table's layout: ValueError
  /// naming both otherwise) on device. Copies the table's trie (O(num_nodes)).
  DeviceTrie(const SemanticIdTable& table, const CodeVocabulary& vocab, torch::Device device = torch::kCPU);

  /// A copy on another device.
  DeviceTrie to(torch::Device device) const;
  torch::Device device() const { return device_; }

  std::int64_t num_nodes() const noexcept { return num_nodes_; }
  std::int64_t num_items() const noexcept { return num_items_; }
  /// L + 1: the depth of the leaves, the number of decoding steps.
  std::int64_t id_length() const noexcept { return vocab_.num_levels(); }
  const CodeVocabulary& vocabulary() const noexcept { return vocab_; }
  /// table_checksum() of the table it was built from (the table's identity).
  std::uint64_t checksum() const noexcept { return checksum_; }

  /// First node of depth d (0..L+2; depth_begin(L+2) == num_nodes()).
  std::int64_t depth_begin(std::int64_t depth) const;
  /// Number of nodes at depth d (0..L+1).
  std::int64_t depth_size(std::int64_t depth) const { return depth_begin(depth + 1) - depth_begin(depth); }
  /// The most children any node of depth d has (0 for the leaves, depth L+1).
  std::int64_t max_children(std::int64_t depth) const;

  // Per-node tensors on device(), all int64.
  const torch::Tensor& first_child() const { return first_child_; }    ///< [N]; num_nodes at leaves
  const torch::Tensor& num_children() const { return num_children_; }  ///< [N]
  const torch::Tensor& edge_token() const { return edge_token_; }      ///< [N] vocabulary token into v; kPad at the root
  const torch::Tensor& leaf_item() const { return leaf_item_; }        ///< [N] item at a leaf, -1 elsewhere
  const torch::Tensor& item_count() const { return item_count_; }      ///< [N] items below v
  const torch::Tensor& parent() const { return parent_; }              ///< [N] -1 at the root
  const torch::Tensor& item_leaf() const { return item_leaf_; }        ///< [num_items] the leaf of each item

  /// The children of nodes ([M] int64, all of depth `depth`) as one gather: first_child + arange(C)
  /// masked by num_children, C = max_children(depth).
  TrieChildren children(const torch::Tensor& nodes, std::int64_t depth) const;

  /// The items whose IDs are tokens ([..., L+1] int64 vocabulary tokens, any device), -1 where a row
  /// is no item's ID. Vectorized walk: L+1 gathers.
  torch::Tensor find_items(const torch::Tensor& tokens) const;

  /// "levels [8, 8, 3] (21 tokens), 40 items, IDs checksum 0x0123456789abcdef".
  std::string layout() const;
  /// ValueError "<what>: ... trie ... table ..." naming both layouts unless table is the one this
  /// trie was built from (same level sizes, item count and ID checksum).
  void check_table(const SemanticIdTable& table, const char* what = "DeviceTrie") const;
  /// ValueError naming both layouts unless vocab has this trie's level sizes.
  void check_vocabulary(const CodeVocabulary& vocab, const char* what = "DeviceTrie") const;
  /// ValueError naming the model's vocabulary size and this trie's layout unless they agree, and
  /// naming both devices when the model does not live on the trie's device. Takes the model's
  /// vocabulary size and device (not the model) so that the ids component does not depend on nn.
  void check_model(std::int64_t model_vocab_size, torch::Device model_device, const char* what = "DeviceTrie") const;

 private:
  CodeVocabulary vocab_;
  torch::Device device_ = torch::kCPU;
  std::int64_t num_nodes_ = 0;
  std::int64_t num_items_ = 0;
  std::uint64_t checksum_ = 0;
  std::vector<std::int64_t> depth_begin_;   // L+3 entries
  std::vector<std::int64_t> max_children_;  // L+2 entries
  torch::Tensor first_child_, num_children_, edge_token_, leaf_item_, item_count_, parent_, item_leaf_;
};

}  // namespace lamia
