#include <lamia/core/errors.hpp>
#include <lamia/nn/checkpoint.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/palette/setup.hpp>
#include <lamia/palette/trainer.hpp>
#include <lamia/text/bpe_trainer.hpp>
#include <lamia/text/byte_level_bpe.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

namespace lamia {

TokenizedCatalog tokenize_catalog(const Catalog& catalog, const Tokenizer& tokenizer,
                                  const PaletteEncoderOptions& options) {
  if (static_cast<std::int64_t>(catalog.num_attributes()) != options.num_attributes()) {
    throw ValueError(fmt::format("tokenize_catalog: the catalog has {} attributes, the encoder options say m = {}",
                                 catalog.num_attributes(), options.num_attributes()));
  }
  const auto special = tokenizer.special_tokens();
  std::optional<PaletteTokenId> bos;
  if (tokenizer.add_bos_token() && special.bos) bos = *special.bos;
  return tokenize_catalog(
      catalog, [&](std::string_view s) { return tokenizer.encode(s); }, options.layout(), bos);
}

PaletteSetup make_palette_setup_from_scratch(const Catalog& catalog, const PaletteEncoderOptions& options,
                                             const ScratchModelOptions& model) {
  if (catalog.empty()) throw ValueError("make_palette_setup_from_scratch: the catalog has no items");
  BpeTrainerOptions bpe;
  bpe.vocab_size = static_cast<std::size_t>(model.vocab_size);
  return make_palette_setup_from_tokenizer(catalog, std::make_shared<ByteLevelBpeTokenizer>(train_bpe(catalog, bpe)),
                                           options, model);
}

PaletteSetup make_palette_setup_from_tokenizer(const Catalog& catalog, std::shared_ptr<Tokenizer> tokenizer,
                                               const PaletteEncoderOptions& options, const ScratchModelOptions& model) {
  options.check();
  if (static_cast<std::int64_t>(catalog.num_attributes()) != options.num_attributes()) {
    throw ValueError(fmt::format("make_palette_setup: the catalog has {} attributes, the options say m = {}",
                                 catalog.num_attributes(), options.num_attributes()));
  }
  if (catalog.empty()) throw ValueError("make_palette_setup: the catalog has no items");
  torch::manual_seed(model.seed);
  Decoder decoder(model.decoder_options(static_cast<std::int64_t>(tokenizer->vocab_size()))
                      .max_position_embeddings(model.max_position_embeddings)
                      .pad_token_id(tokenizer->special_tokens().pad.value_or(1)));
  auto tokens = add_palette_tokens(*tokenizer, *decoder, options.palette_size(), catalog.attribute_names());
  PaletteSetup setup;
  setup.encoder = PaletteEncoder(options, decoder, tokens);
  setup.catalog = tokenize_catalog(catalog, *tokenizer, options);
  setup.tokenizer = std::move(tokenizer);
  return setup;
}

PaletteSetup make_palette_setup_pretrained(const Catalog& catalog, const std::filesystem::path& hf_dir,
                                           const PaletteEncoderOptions& options, std::int64_t lora_rank) {
  options.check();
  if (lora_rank < 0) throw ValueError(fmt::format("make_palette_setup_pretrained: lora_rank must be >= 0, got {}", lora_rank));
  std::shared_ptr<Tokenizer> tokenizer = load_tokenizer(hf_dir);
  auto decoder = load_pretrained(hf_dir);
  auto tokens = add_palette_tokens(*tokenizer, *decoder, options.palette_size(), catalog.attribute_names());
  PaletteSetup setup;
  setup.encoder = PaletteEncoder(options, decoder, tokens);
  if (lora_rank > 0) apply_palette_lora(*setup.encoder, LoraOptions(lora_rank), /*train_embeddings=*/true);
  setup.catalog = tokenize_catalog(catalog, *tokenizer, options);
  setup.tokenizer = std::move(tokenizer);
  return setup;
}

}  // namespace lamia
