#pragma once
// What a trained palette encoder is judged by, and how its palettes leave it:
// teacher-forced reconstruction accuracy of attributes from the palette alone, the mean
// intra-item cosine similarity between palette positions, and encoding / exporting every item.
#include <lamia/palette/blocks.hpp>
#include <lamia/palette/palette_encoder.hpp>

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <vector>

namespace lamia {

/// Teacher-forced token accuracy on held-out items: the share of answer tokens (and eos) whose
/// argmax prediction, given the palette and the previous answer tokens, is right.
struct ReconstructionAccuracy {
  double token_accuracy = 0.0;           ///< over all tasks
  std::vector<double> per_attribute;     ///< one per task (attribute), NaN when it has no tokens
  std::int64_t correct_tokens = 0;
  std::int64_t label_tokens = 0;
  double generation_loss = 0.0;          ///< mean cross-entropy per labelled token
};

/// Runs every task of every item in items (fast path, no gradient, eval mode; the module's
/// training mode is restored). batch_size counts samples.
ReconstructionAccuracy reconstruction_accuracy(PaletteEncoderImpl& encoder, const TokenizedCatalog& catalog,
                                               const std::vector<ItemIndex>& items, std::int64_t batch_size = 128);

/// Mean over items of the mean cosine similarity between the L(L-1) ordered pairs of distinct
/// positions of one item. palettes: [n, L, D] with L >= 2 (ValueError otherwise).
double mean_intra_cosine(const torch::Tensor& palettes);

/// The palettes [n, L, E] (float32, CPU) of items, pass 1 only, batch_size items at a time.
torch::Tensor encode_items(PaletteEncoderImpl& encoder, const TokenizedCatalog& catalog,
                           const std::vector<ItemIndex>& items, std::int64_t batch_size = 256);

/// Streams the palettes of every item of catalog (in catalog order, with its item ids) to a
/// palette file (lamia/palette/palette_file.hpp), batch_size items at a time. Returns the count.
std::int64_t export_palettes(PaletteEncoderImpl& encoder, const TokenizedCatalog& catalog,
                             const std::filesystem::path& path, std::int64_t batch_size = 256);

/// One embedding per item for the TIGER-style baselines: the decoder's last hidden state averaged
/// over the item's content tokens (pass 1 of the palette encoder, so the baselines see the same
/// model as the palettes). n x E float32 on the CPU, in catalog order.
torch::Tensor mean_pooled_embeddings(PaletteEncoderImpl& encoder, const TokenizedCatalog& catalog,
                                     std::int64_t batch_size = 256);

}  // namespace lamia
