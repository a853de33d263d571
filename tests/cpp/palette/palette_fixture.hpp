#pragma once
// A tiny palette encoder on a small synthetic catalog, shared by the palette tests.
#include <lamia/data/synthetic.hpp>
#include <lamia/palette.hpp>

#include <torch/torch.h>

namespace lamia::testing {

/// num_items items with the synthetic catalog's 4 attributes (title, description, tags, category).
inline Catalog tiny_catalog(std::int64_t num_items, std::uint64_t seed = 7) {
  SyntheticOptions o;
  o.seed = seed;
  o.num_items = num_items;
  o.num_users = 0;
  o.sentences = 1;
  o.filler_per_sentence = 2;
  o.aspect_sizes = {6, 4, 3, 3};
  o.words_per_value = 3;
  o.filler_words = 20;
  return generate_synthetic(o).dataset.catalog;
}

inline ScratchModelOptions tiny_model(std::int64_t hidden = 32, double dropout = 0.0, std::uint64_t seed = 0) {
  ScratchModelOptions m;
  m.vocab_size = 400;
  m.hidden_size = hidden;
  m.num_layers = 2;
  m.num_heads = 2;
  m.ffn_dim = 2 * hidden;
  m.dropout = dropout;
  m.max_position_embeddings = 256;
  m.seed = seed;
  return m;
}

}  // namespace lamia::testing
