#include "context.hpp"

#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/data/loaders.hpp>
#include <lamia/data/sequences.hpp>
#include <lamia/data/synthetic.hpp>
#include <lamia/nn/checkpoint.hpp>
#include <lamia/text/tokenizer.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

namespace lamia {

void PipelineContext::say(const std::string& line) const {
  if (config.progress) log << "[lamia run] " << line << std::endl;
}

void PipelineContext::write_json(const std::string& relative, const nlohmann::json& j) const {
  write_text_atomically(path(relative), j.dump(2) + "\n");
}

nlohmann::json PipelineContext::read_json(const std::string& relative) const {
  const auto p = path(relative);
  try {
    return nlohmann::json::parse(read_file(p));
  } catch (const nlohmann::json::exception& e) {
    throw ParseError({p.string(), 0, ""}, fmt::format("invalid JSON: {}", e.what()));
  }
}

LoadedDataset& PipelineContext::dataset() {
  if (dataset_) return *dataset_;
  const auto& dc = config.dataset;
  LoadedDataset out;
  if (dc.format == "synthetic") {
    auto synth = generate_synthetic(dc.synthetic);
    const auto n = std::int64_t(synth.dataset.catalog.size());
    const auto A = std::int64_t(synth.num_aspects());
    out.labels = torch::empty({n, A}, torch::kInt64);
    auto* p = out.labels.data_ptr<std::int64_t>();
    for (std::size_t i = 0; i < synth.item_aspects.size(); ++i) p[i] = synth.item_aspects[i];
    out.label_names = synth.aspect_names;
    out.dataset = std::move(synth.dataset);
  } else {
    LoadOptions options;
    options.lenient = dc.lenient;
    options.unknown_items = dc.unknown_items;
    out.dataset = load_dataset(dc.format, dc.path, options);
  }
  if (!dc.attributes.empty()) out.dataset.catalog = out.dataset.catalog.select_attributes(dc.attributes);
  if (dc.drop_items_without_text) {
    auto kept = drop_items_without_text(out.dataset);
    if (out.labels.defined() && kept.items_dropped) {
      const auto rows = torch::tensor(std::vector<std::int64_t>(kept.source_items.begin(), kept.source_items.end()));
      out.labels = out.labels.index_select(0, rows);
    }
    out.dataset = std::move(kept.dataset);
    out.items_without_text = kept.items_dropped;
    out.interactions_without_text = kept.interactions_dropped;
  }
  if (out.dataset.catalog.empty()) throw ValueError(fmt::format("pipeline: the dataset '{}' has no items", dc.format));
  dataset_ = std::move(out);
  return *dataset_;
}

const ProcessedSequences& PipelineContext::sequences() {
  if (!sequences_) {
    auto options = config.sequences.filter;
    // The semantic IDs cover every catalog item: sequences must index the same catalog (a config that
    // asks otherwise is refused by validate(), pipeline_config.cpp).
    options.drop_items_without_text = false;
    sequences_ = build_sequences(dataset().dataset, options);
  }
  return *sequences_;
}

const SplitDataset& PipelineContext::split() {
  if (split_) return *split_;
  const auto& sc = config.sequences;
  const auto examples = sc.train_examples == "last_item" ? TrainExamples::last_item : TrainExamples::all_prefixes;
  if (sc.protocol == "user_holdout") {
    auto order = load_or_create_user_order(path("users.order"), sequences().user_ids(), sc.user_order_seed);
    auto holdout = sc.holdout;
    holdout.train_examples = examples;
    split_ = split_user_holdout(sequences(), order, holdout);
  } else {
    LeaveOneOutOptions loo;
    loo.train_examples = examples;
    split_ = split_leave_one_out(sequences(), loo);
  }
  return *split_;
}

PaletteSetup& PipelineContext::palette_setup() {
  if (setup_) return *setup_;
  const auto& catalog = dataset().dataset.catalog;
  const auto m = std::int64_t(catalog.num_attributes());
  const auto& mc = config.model;
  // The config's encoder options with the catalog's m; r = 0 is all attributes.
  PaletteEncoderOptions encoder_options = config.palette.encoder;
  if (encoder_options.num_attributes() != 0 && encoder_options.num_attributes() != m)
    throw ValueError(fmt::format("config: key 'palette.encoder.num_attributes': the catalog has {} attributes, got {}",
                                 m, encoder_options.num_attributes()));
  encoder_options.num_attributes(m);
  if (encoder_options.num_content_attributes() == 0) encoder_options.num_content_attributes(m);
  if (mc.pretrained.empty()) {
    ScratchModelOptions scratch = mc.scratch;
    scratch.vocab_size = config.tokenizer.vocab_size;
    // The tokenizer stage trained and saved the catalog's BPE; the model is built around it.
    std::shared_ptr<Tokenizer> tokenizer = load_tokenizer(path("tokenizer"));
    setup_ = make_palette_setup_from_tokenizer(catalog, tokenizer, encoder_options, scratch);
  } else {
    setup_ = make_palette_setup_pretrained(catalog, mc.pretrained, encoder_options, mc.lora_rank);
  }
  return *setup_;
}

void PipelineContext::load_trained_palette_encoder() {
  if (palette_encoder_trained) return;
  auto& setup = palette_setup();
  load_pretrained_weights(*setup.encoder->decoder, path("palette_encoder/model"));
  palette_encoder_trained = true;
}

const SemanticIdTable& PipelineContext::table(const std::string& name) {
  auto it = tables_.find(name);
  if (it != tables_.end()) return it->second;
  return tables_[name] = SemanticIdTable::load(path("semantic_ids/" + name + ".bin"));
}

}  // namespace lamia
