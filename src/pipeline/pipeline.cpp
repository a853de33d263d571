#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/data/loaders.hpp>
#include <lamia/data/statistics.hpp>
#include <lamia/data/synthetic.hpp>
#include <lamia/nn/checkpoint.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/palette/attention_mask.hpp>
#include <lamia/palette/blocks.hpp>
#include <lamia/palette/evaluation.hpp>
#include <lamia/palette/palette_encoder.hpp>
#include <lamia/palette/palette_file.hpp>
#include <lamia/palette/setup.hpp>
#include <lamia/palette/trainer.hpp>
#include <lamia/pipeline/pipeline.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <ostream>

namespace lamia {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void write_json(const fs::path& path, const nlohmann::json& j) { write_text_atomically(path, j.dump(2) + "\n"); }

/// The dataset and, for the synthetic catalog, its ground-truth aspects.
struct LoadedDataset {
  Dataset dataset;
  torch::Tensor labels;  // n x A int64, or undefined
  std::vector<std::string> label_names;
};

LoadedDataset load(const PipelineDatasetConfig& config) {
  LoadedDataset out;
  if (config.format == "synthetic") {
    auto synth = generate_synthetic(config.synthetic);
    const auto n = std::int64_t(synth.dataset.catalog.size());
    const auto A = std::int64_t(synth.num_aspects());
    out.labels = torch::empty({n, A}, torch::kInt64);
    auto* p = out.labels.data_ptr<std::int64_t>();
    for (std::size_t i = 0; i < synth.item_aspects.size(); ++i) p[i] = synth.item_aspects[i];
    out.label_names = synth.aspect_names;
    out.dataset = std::move(synth.dataset);
  } else {
    LoadOptions options;
    options.lenient = config.lenient;
    out.dataset = load_dataset(config.format, config.path, options);
  }
  if (!config.attributes.empty()) out.dataset.catalog = out.dataset.catalog.select_attributes(config.attributes);
  if (out.dataset.catalog.empty())
    throw ValueError(fmt::format("pipeline: the dataset '{}' has no items", config.format));
  return out;
}

/// One embedding per item for the baselines: the decoder's last hidden state
/// averaged over the item's content tokens (pass 1 of the palette encoder, so
/// the baselines see the same model as the palettes).
torch::Tensor mean_pooled_embeddings(PaletteEncoderImpl& encoder, const TokenizedCatalog& catalog,
                                     std::int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = encoder.is_training();
  encoder.eval();
  const auto n = std::int64_t(catalog.size());
  const auto device = encoder.decoder->parameters().front().device();
  std::vector<torch::Tensor> parts;
  for (std::int64_t begin = 0; begin < n; begin += batch_size) {
    std::vector<ItemIndex> items;
    for (auto i = begin; i < std::min(n, begin + batch_size); ++i) items.push_back(ItemIndex(i));
    auto batch = collate_items(catalog, items, encoder.tokens()).to(device);
    DecoderInput in;
    in.input_ids = batch.encode.input_ids;
    in.position_ids = batch.encode.position_ids;
    in.attention_mask = palette_attention_mask(batch.encode.block_types);
    in.compute_logits = false;
    auto hidden = encoder.decoder->forward(in).last_hidden_state;  // [U, T, E]
    auto content = (batch.encode.block_types == std::int64_t(Block::kContent)).unsqueeze(-1).to(hidden.dtype());
    auto pooled = (hidden * content).sum(1) / content.sum(1).clamp_min(1.0);
    parts.push_back(pooled.to(torch::kCPU, torch::kFloat));
  }
  encoder.train(was_training);
  return torch::cat(parts, 0).contiguous();
}

nlohmann::json loss_record_json(const PaletteLossRecord& r) {
  return {{"step", r.step},
          {"loss", r.loss},
          {"generation_loss", r.generation_loss},
          {"intra_loss", r.intra_loss},
          {"inter_loss", r.inter_loss},
          {"token_accuracy", r.token_accuracy},
          {"tokens_per_second", r.tokens_per_second}};
}

/// Trains the encoder (resuming from dir/trainer.ckpt when a run was interrupted)
/// and reports what "training worked" means: every loss part and the held-out
/// reconstruction accuracy before and after, and how different the palette
/// positions of one item are (mean intra-item cosine).
nlohmann::json train_encoder(PaletteEncoder& encoder, const TokenizedCatalog& catalog, const PipelineConfig& config,
                             const fs::path& dir, std::ostream& log) {
  const auto& pc = config.palette;
  fs::create_directories(dir);
  PaletteTrainerOptions options;
  options.batch_size(pc.batch_size)
      .learning_rate(pc.learning_rate)
      .epochs(pc.epochs)
      .max_steps(pc.max_steps)
      .grad_clip_norm(pc.grad_clip)
      .validation_fraction(pc.holdout_fraction)
      .seed(pc.seed)
      .checkpoint_path((dir / "trainer.ckpt").string())
      .log_every(config.progress ? 25 : 0)
      .log(&log);
  PaletteTrainer trainer(encoder, catalog, options);
  const auto& held_out = trainer.validation_items().empty() ? trainer.train_items() : trainer.validation_items();

  nlohmann::json out;
  const bool resuming = fs::exists(dir / "trainer.ckpt");
  if (!resuming) {  // the untrained baseline (a resumed run has lost it; see its first run's diagnostics)
    out["before"] = loss_record_json(trainer.evaluate(held_out));
    auto palettes = encode_items(*encoder, catalog, held_out);
    if (palettes.size(1) > 1) out["before"]["mean_intra_cosine"] = mean_intra_cosine(palettes);
  }
  PaletteTrainResult result = trainer.train();
  out["after"] = loss_record_json(trainer.evaluate(held_out));
  auto palettes = encode_items(*encoder, catalog, held_out);
  if (palettes.size(1) > 1) out["after"]["mean_intra_cosine"] = mean_intra_cosine(palettes);
  out["held_out_items"] = held_out.size();
  out["steps"] = result.steps;
  out["epochs_completed"] = result.epochs_completed;
  out["resumed"] = result.resumed;
  out["stop_reason"] = result.stop_reason;
  out["tokens_per_second"] = result.tokens_per_second;
  out["train_history"] = nlohmann::json::array();
  for (const auto& r : result.train_history) out["train_history"].push_back(loss_record_json(r));
  out["validation_history"] = nlohmann::json::array();
  for (const auto& r : result.validation_history) out["validation_history"].push_back(loss_record_json(r));
  save_pretrained(*encoder->decoder, dir / "model");
  return out;
}

}  // namespace

PipelineResult run_pipeline(const PipelineConfig& config, const fs::path& out_dir, std::ostream& log) {
  auto say = [&](const std::string& line) {
    if (config.progress) log << "[lamia run] " << line << std::endl;
  };
  if (config.threads > 0) torch::set_num_threads(config.threads);
  torch::manual_seed(config.palette.seed);
  fs::create_directories(out_dir);
  PipelineResult result;
  {
    nlohmann::json effective;
    to_json(effective, config);
    write_json(out_dir / "config.json", effective);
  }

  // 1. Dataset.
  auto t0 = Clock::now();
  LoadedDataset data = load(config.dataset);
  const Catalog& catalog = data.dataset.catalog;
  result.dataset = compute_statistics(data.dataset).to_json();
  write_json(out_dir / "dataset.json", result.dataset);
  say(fmt::format("dataset '{}': {} items, {} users, {} interactions ({:.1f}s)", config.dataset.format,
                  catalog.size(), data.dataset.interactions.num_users(), data.dataset.interactions.size(),
                  seconds_since(t0)));

  // 2-3. A byte-level BPE trained on the catalog's text and a decoder trained
  // from scratch (or a pretrained Hugging Face OPT folder), as a palette encoder.
  t0 = Clock::now();
  const auto m = std::int64_t(catalog.num_attributes());
  const std::int64_t r = config.dataset.content_attributes > 0 ? config.dataset.content_attributes : m;
  const auto& pc = config.palette;
  const auto& mc = config.model;
  PaletteLossOptions losses;
  losses.gamma(pc.gamma).alpha_intra(pc.alpha_intra).alpha_inter(pc.alpha_inter)
      .contrastive(parse_contrastive_mode(pc.contrastive));
  PaletteEncoderOptions encoder_options(m, r);
  encoder_options.palette_size(pc.palette_size)
      .attribute_token_budget(pc.attribute_token_budget)
      .answer_token_budget(pc.answer_token_budget)
      .losses(losses);
  PaletteSetup setup;
  if (mc.pretrained.empty()) {
    ScratchModelOptions scratch;
    scratch.vocab_size = config.tokenizer.vocab_size;
    scratch.hidden_size = mc.hidden_size;
    scratch.num_layers = mc.num_layers;
    scratch.num_heads = mc.num_heads;
    scratch.ffn_dim = mc.ffn_dim;
    scratch.dropout = mc.dropout;
    scratch.max_position_embeddings = mc.max_positions;
    scratch.seed = pc.seed;
    setup = make_palette_setup_from_scratch(catalog, encoder_options, scratch);
  } else {
    setup = make_palette_setup_pretrained(catalog, mc.pretrained, encoder_options, mc.lora_rank);
  }
  setup.tokenizer->save(out_dir / "tokenizer");
  PaletteEncoder encoder = setup.encoder;
  const TokenizedCatalog& tokenized = setup.catalog;
  say(fmt::format("model: tokenizer {} tokens, palette dimension {} ({:.1f}s)", setup.tokenizer->vocab_size(),
                  encoder->palette_dim(), seconds_since(t0)));

  t0 = Clock::now();
  result.training = train_encoder(encoder, tokenized, config, out_dir / "palette_encoder", log);
  result.training["seconds"] = seconds_since(t0);
  say(fmt::format("palette encoder trained: {} ({:.1f}s)", result.training["stop_reason"].get<std::string>(),
                  seconds_since(t0)));

  // 4. Palettes of every item, and one embedding per item for the baselines.
  t0 = Clock::now();
  export_palettes(*encoder, tokenized, out_dir / "palettes.bin");
  std::vector<ItemIndex> all(catalog.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = ItemIndex(i);
  torch::Tensor palettes = load_palettes(out_dir / "palettes.bin").palettes;
  torch::Tensor embeddings = mean_pooled_embeddings(*encoder, tokenized, 256);
  {
    std::vector<std::string> ids;
    for (auto i : all) ids.push_back(catalog.id(i));
    save_palettes(out_dir / "embeddings.bin", ids, embeddings.unsqueeze(1));
  }
  result.training["mean_intra_cosine"] = palettes.size(1) > 1 ? mean_intra_cosine(palettes) : 1.0;
  say(fmt::format("palettes exported: [{}, {}, {}] ({:.1f}s)", palettes.size(0), palettes.size(1), palettes.size(2),
                  seconds_since(t0)));

  // 5. The semantic tokenizers, compared.
  t0 = Clock::now();
  const auto& qc = config.quantize;
  TokenizerComparisonOptions compare;
  compare.pca_dim = qc.pca_dim;
  compare.num_codes = qc.num_codes;
  compare.iterations = qc.iterations;
  compare.restarts = qc.restarts;
  compare.baseline_levels = qc.baseline_levels;
  compare.rqvae_max_epochs = qc.rqvae_max_epochs;
  compare.seed = qc.seed;
  compare.progress = false;
  result.tokenizers = compare_tokenizers(palettes, embeddings, compare, data.labels, data.label_names);
  for (const auto& t : result.tokenizers) {
    t.table.save(out_dir / "semantic_ids" / (t.name + ".bin"));
    t.table.dump(out_dir / "semantic_ids" / (t.name + ".txt"));
  }
  say(fmt::format("tokenizers fitted ({:.1f}s)", seconds_since(t0)));

  result.diagnostics = comparison_json(result.tokenizers);
  result.diagnostics["dataset"] = result.dataset;
  result.diagnostics["palette_encoder"] = result.training;
  if (!data.label_names.empty()) result.diagnostics["labels"] = data.label_names;
  write_json(out_dir / "diagnostics.json", result.diagnostics);
  return result;
}

}  // namespace lamia
