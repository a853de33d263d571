#pragma once
// Building a palette encoder for a catalog in one call: a fresh model trained from scratch (a
// byte-level BPE tokenizer trained on the catalog and a small OPT decoder), or a pretrained
// Hugging Face OPT folder (config.json, safetensors, vocab.json, merges.txt), optionally with LoRA.
//
//   auto setup = make_palette_setup_from_scratch(catalog, PaletteEncoderOptions(4, 2));
//   PaletteTrainer trainer(setup.encoder, setup.catalog);
#include <lamia/core/options.hpp>
#include <lamia/data/catalog.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/palette/blocks.hpp>
#include <lamia/palette/palette_encoder.hpp>
#include <lamia/text/tokenizer.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>

namespace lamia {

/// The parts of a palette encoder that belong together.
struct PaletteSetup {
  std::shared_ptr<Tokenizer> tokenizer;  ///< with the palette tokens added
  PaletteEncoder encoder{nullptr};
  TokenizedCatalog catalog;              ///< the catalog tokenized with the encoder's layout options
};

/// A decoder trained from scratch: its BPE vocabulary, its size (TransformerSize; the defaults are
/// the 4-layer d = 256 model of the benches) and its seed.
struct ScratchModelOptions : TransformerSize {
  ScratchModelOptions() : TransformerSize(/*hidden*/ 256, /*layers*/ 4, /*heads*/ 4, /*dropout*/ 0.1) {}
  std::int64_t vocab_size = 2048;  ///< BPE vocabulary trained on the catalog's texts (>= 260)
  std::int64_t max_position_embeddings = 1024;
  std::uint64_t seed = 0;          ///< torch's generator is seeded with it before the weights are drawn
};

/// The fields of ScratchModelOptions (JSON, Python).
template <class V>
void visit_fields(ScratchModelOptions& o, V&& v) {
  v.field("vocab_size", o.vocab_size, "BPE vocabulary trained on the catalog's texts", options::at_least(260));
  visit_transformer_size_fields(o, v, "decoder blocks");
  v.field("max_position_embeddings", o.max_position_embeddings, "longest sequence the model reads",
          options::at_least(1));
  v.field("seed", o.seed, "torch's generator is seeded with it before the weights are drawn");
}

/// Trains a BPE tokenizer on the catalog's texts, builds a fresh decoder, adds the palette tokens
/// and tokenizes the catalog. Throws ValueError when the options do not fit the catalog.
PaletteSetup make_palette_setup_from_scratch(const Catalog& catalog, const PaletteEncoderOptions& options,
                                             const ScratchModelOptions& model = {});

/// The same around a tokenizer the caller trained (or loaded: `lamia run` saves the catalog's BPE
/// in its tokenizer stage). The palette tokens are added to tokenizer.
PaletteSetup make_palette_setup_from_tokenizer(const Catalog& catalog, std::shared_ptr<Tokenizer> tokenizer,
                                               const PaletteEncoderOptions& options,
                                               const ScratchModelOptions& model = {});
/// Loads a Hugging Face OPT folder (tokenizer and weights), adds the palette tokens and tokenizes
/// the catalog. With lora_rank > 0 LoRA adapters (q, v) are added and the other weights frozen,
/// except the token embeddings (the new tokens must learn).
PaletteSetup make_palette_setup_pretrained(const Catalog& catalog, const std::filesystem::path& hf_dir,
                                           const PaletteEncoderOptions& options, std::int64_t lora_rank = 0);

/// Tokenizes a catalog with a tokenizer for the encoder's layout options (bos when the tokenizer
/// prepends one).
TokenizedCatalog tokenize_catalog(const Catalog& catalog, const Tokenizer& tokenizer,
                                  const PaletteEncoderOptions& options);

}  // namespace lamia
