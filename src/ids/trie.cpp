#include <lamia/core/errors.hpp>
#include <lamia/ids/trie.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>

namespace lamia {

namespace {

std::string layout_of(const std::vector<std::int64_t>& sizes, std::int64_t vocab_size, std::int64_t items,
                      std::uint64_t checksum) {
  return fmt::format("levels [{}] ({} tokens), {} items, IDs checksum {:#018x}", fmt::join(sizes, ", "), vocab_size,
                     items, checksum);
}

}  // namespace

DeviceTrie::DeviceTrie(const SemanticIdTable& table, const CodeVocabulary& vocab, torch::Device device)
    : vocab_(vocab), device_(device) {
  vocab.check_table(table, "DeviceTrie");
  num_nodes_ = table.num_nodes();
  num_items_ = table.num_items();
  checksum_ = table_checksum(table);
  const auto W = table.id_length();  // leaves are at depth W
  const auto N = num_nodes_;

  auto first = torch::empty({N}, torch::kInt64), nchild = torch::empty({N}, torch::kInt64);
  auto edge = torch::empty({N}, torch::kInt64), leaf = torch::full({N}, -1, torch::kInt64);
  auto count = torch::empty({N}, torch::kInt64), parent = torch::full({N}, -1, torch::kInt64);
  auto item_leaf = torch::full({num_items_}, -1, torch::kInt64);
  auto* pf = first.data_ptr<std::int64_t>();
  auto* pn = nchild.data_ptr<std::int64_t>();
  auto* pe = edge.data_ptr<std::int64_t>();
  auto* pl = leaf.data_ptr<std::int64_t>();
  auto* pc = count.data_ptr<std::int64_t>();
  auto* pp = parent.data_ptr<std::int64_t>();
  auto* pi = item_leaf.data_ptr<std::int64_t>();

  depth_begin_.assign(1, 0);
  max_children_.clear();
  pe[0] = CodeVocabulary::kPad;
  // Breadth-first: the children of depth d's nodes are exactly the nodes of depth d+1.
  std::int64_t begin = 0, end = 1;
  for (std::int64_t depth = 0; depth <= W; ++depth) {
    depth_begin_.push_back(end);
    std::int64_t widest = 0, next_end = end;
    for (std::int64_t v = begin; v < end; ++v) {
      const auto c = table.children(SemanticIdTable::Node(v));
      pf[v] = depth < W ? std::int64_t(c.first) : N;
      pn[v] = depth < W ? std::int64_t(c.size) : 0;
      pc[v] = table.count(SemanticIdTable::Node(v));
      widest = std::max(widest, pn[v]);
      for (std::int64_t i = 0; i < pn[v]; ++i) {
        const auto child = std::int64_t(c.first) + i;
        pp[child] = v;
        pe[child] = vocab.token(depth, c.tokens[i]);
        next_end = std::max(next_end, child + 1);
      }
      if (depth == W) {
        pl[v] = table.leaf_item(SemanticIdTable::Node(v));
        pi[pl[v]] = v;
      }
    }
    max_children_.push_back(widest);
    begin = end;
    end = next_end;
  }
  // depth_begin_: the starts of depths 0..W, then N; max_children_: depths 0..W (0 at the leaves).
  TORCH_INTERNAL_ASSERT(std::int64_t(depth_begin_.size()) == W + 2 && depth_begin_.back() == N &&
                        std::int64_t(max_children_.size()) == W + 1);

  first_child_ = first.to(device);
  num_children_ = nchild.to(device);
  edge_token_ = edge.to(device);
  leaf_item_ = leaf.to(device);
  item_count_ = count.to(device);
  parent_ = parent.to(device);
  item_leaf_ = item_leaf.to(device);
}

DeviceTrie DeviceTrie::to(torch::Device device) const {
  DeviceTrie t = *this;
  t.device_ = device;
  for (auto* p : {&t.first_child_, &t.num_children_, &t.edge_token_, &t.leaf_item_, &t.item_count_, &t.parent_,
                  &t.item_leaf_}) {
    if (p->defined()) *p = p->to(device);
  }
  return t;
}

std::int64_t DeviceTrie::depth_begin(std::int64_t depth) const {
  if (depth < 0 || depth >= std::int64_t(depth_begin_.size())) {
    throw IndexError(fmt::format("DeviceTrie: depth {} out of range [0, {}]", depth,
                                 std::int64_t(depth_begin_.size()) - 1));
  }
  return depth_begin_[depth];
}

std::int64_t DeviceTrie::max_children(std::int64_t depth) const {
  if (depth < 0 || depth >= std::int64_t(max_children_.size())) {
    throw IndexError(fmt::format("DeviceTrie: depth {} out of range [0, {}]", depth,
                                 std::int64_t(max_children_.size()) - 1));
  }
  return max_children_[depth];
}

TrieChildren DeviceTrie::children(const torch::Tensor& nodes, std::int64_t depth) const {
  TORCH_CHECK_VALUE(nodes.dim() == 1 && nodes.scalar_type() == torch::kLong,
                    "DeviceTrie::children: nodes must be [M] int64, got ", nodes.scalar_type(), " ", nodes.sizes());
  const auto C = max_children(depth);
  auto v = nodes.to(device_);
  auto slot = torch::arange(C, torch::TensorOptions().dtype(torch::kLong).device(device_));
  auto valid = slot.unsqueeze(0) < num_children_.index_select(0, v).unsqueeze(1);
  auto child = first_child_.index_select(0, v).unsqueeze(1) + slot.unsqueeze(0);
  return {torch::where(valid, child, torch::zeros_like(child)), valid};
}

torch::Tensor DeviceTrie::find_items(const torch::Tensor& tokens) const {
  const auto W = id_length();
  TORCH_CHECK_VALUE(tokens.dim() >= 1 && tokens.size(-1) == W && tokens.scalar_type() == torch::kLong,
                    "DeviceTrie::find_items: tokens must be [..., ", W, "] int64, got ", tokens.scalar_type(), " ",
                    tokens.sizes());
  auto shape = tokens.sizes().vec();
  shape.pop_back();
  auto tok = tokens.to(device_).reshape({-1, W});
  const auto M = tok.size(0);
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(device_);
  auto node = torch::zeros({M}, opts);
  auto found = torch::ones({M}, opts.dtype(torch::kBool));
  for (std::int64_t d = 0; d < W && M > 0; ++d) {
    if (max_children(d) == 0) {
      found.fill_(false);
      break;
    }
    auto c = children(node, d);
    auto match = c.valid & (edge_token_.index_select(0, c.nodes.reshape(-1)).view_as(c.nodes) == tok.select(1, d).unsqueeze(1));
    found &= match.any(1);
    node = c.nodes.gather(1, match.to(torch::kInt32).argmax(1, /*keepdim=*/true)).squeeze(1);
  }
  auto items = torch::where(found, leaf_item_.index_select(0, node), torch::full_like(node, -1));
  return items.view(shape);
}

std::string DeviceTrie::layout() const { return layout_of(vocab_.level_sizes(), vocab_.size(), num_items_, checksum_); }

void DeviceTrie::check_table(const SemanticIdTable& table, const char* what) const {
  const auto sum = table_checksum(table);
  if (table.codebook_sizes() != vocab_.level_sizes() || table.num_items() != num_items_ || sum != checksum_) {
    const auto table_vocab = table.codebook_sizes().empty() ? std::int64_t(0) : CodeVocabulary(table.codebook_sizes()).size();
    throw ValueError(fmt::format("{}: the trie was built for another table: trie {}; table {}", what, layout(),
                                 layout_of(table.codebook_sizes(), table_vocab, table.num_items(), sum)));
  }
}

void DeviceTrie::check_vocabulary(const CodeVocabulary& vocab, const char* what) const {
  if (vocab != vocab_) {
    throw ValueError(fmt::format("{}: the vocabulary has levels [{}] ({} tokens), the trie {}", what,
                                 fmt::join(vocab.level_sizes(), ", "), vocab.size(), layout()));
  }
}

void DeviceTrie::check_model(std::int64_t model_vocab_size, torch::Device model_device, const char* what) const {
  const auto V = model_vocab_size;
  if (V != vocab_.size()) {
    throw ValueError(fmt::format(
        "{}: the model has a vocabulary of {} tokens, but the trie's layout is {} (a model and a trie built for "
        "different tables)",
        what, V, layout()));
  }
  if (model_device != device_) {
    throw ValueError(fmt::format("{}: the model is on {}, the trie on {} (build the trie with the model's device or "
                                 "call trie.to(model->device()))",
                                 what, model_device.str(), device_.str()));
  }
}

}  // namespace lamia
