#pragma once
// A tiny palette encoder on a small synthetic catalog, shared by the palette tests.
#include <lamia/data/synthetic.hpp>
#include <lamia/palette.hpp>

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace lamia::testing {

/// The bytes of a file.
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

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

/// Palette tokens with made-up ids (LaP 100 + j, LdP 200 + j, task 300 + i, eos 2, pad 1), for
/// layout and mask tests that need no tokenizer.
inline PaletteTokens make_tokens(std::int64_t L, std::int64_t m) {
  PaletteTokens t;
  for (std::int64_t j = 0; j < L; ++j) t.lap.push_back(static_cast<PaletteTokenId>(100 + j));
  for (std::int64_t j = 0; j < L; ++j) t.ldp.push_back(static_cast<PaletteTokenId>(200 + j));
  for (std::int64_t i = 0; i < m; ++i) t.task.push_back(static_cast<PaletteTokenId>(300 + i));
  t.eos = 2;
  t.pad = 1;
  return t;
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

/// The interrupted-and-resumed training tests' options (CPU and CUDA): seed 11, 3 epochs, validation
/// every 3 steps, checkpoints to ckpt (empty: none).
inline PaletteTrainerOptions resume_test_options(std::int64_t max_steps, const std::string& ckpt,
                                                 torch::Device device = torch::kCPU) {
  return PaletteTrainerOptions().batch_size(8).validation_fraction(0.2).seed(11).device(device).loop(
      PaletteTrainerOptions::default_loop()
          .learning_rate(1e-3)
          .epochs(3)
          .max_steps(max_steps)
          .eval_every(3)
          .patience(100)
          .restore_best(false)
          .log_every(0)
          .checkpoint_path(ckpt));
}

}  // namespace lamia::testing
