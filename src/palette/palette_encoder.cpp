#include <lamia/core/errors.hpp>
#include <lamia/nn/lora.hpp>
#include <lamia/palette/attention_mask.hpp>
#include <lamia/palette/palette_encoder.hpp>
#include <lamia/text/tokenizer.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

namespace lamia {

const char* palette_path_name(PalettePath path) {
  return path == PalettePath::kFast ? "fast" : "reference";
}

BlockLayoutOptions PaletteEncoderOptions::layout() const {
  BlockLayoutOptions l;
  l.num_content_attributes = num_content_attributes_;
  l.attribute_token_budget = attribute_token_budget_;
  l.answer_token_budget = answer_token_budget_;
  return l;
}

void PaletteEncoderOptions::check() const {
  if (palette_size_ < 1 || palette_size_ > kMaxPaletteSize) {
    throw ValueError(fmt::format("PaletteEncoderOptions: palette_size (L) must be in [1, {}], got {}",
                                 kMaxPaletteSize, palette_size_));
  }
  if (num_attributes_ < 1) {
    throw ValueError(fmt::format("PaletteEncoderOptions: num_attributes (m) must be >= 1, got {}", num_attributes_));
  }
  if (num_content_attributes_ < 1 || num_content_attributes_ > num_attributes_) {
    throw ValueError(fmt::format("PaletteEncoderOptions: num_content_attributes (r) must be in [1, {}], got {}",
                                 num_attributes_, num_content_attributes_));
  }
  if (attribute_token_budget_ < 1) {
    throw ValueError(fmt::format("PaletteEncoderOptions: attribute_token_budget must be >= 1, got {}",
                                 attribute_token_budget_));
  }
  if (answer_token_budget_ < 0) {
    throw ValueError(fmt::format("PaletteEncoderOptions: answer_token_budget must be >= 0, got {}", answer_token_budget_));
  }
  if (losses_.gamma() < 0) throw ValueError(fmt::format("PaletteEncoderOptions: gamma must be >= 0, got {}", losses_.gamma()));
  if (!(losses_.decorrelation_weight() >= 0)) {
    throw ValueError(fmt::format("PaletteEncoderOptions: losses.decorrelation_weight must be >= 0, got {}",
                                 losses_.decorrelation_weight()));
  }
}

PaletteTokens add_palette_tokens(Tokenizer& tokenizer, DecoderImpl& decoder, std::int64_t palette_size,
                                 const std::vector<std::string>& attribute_names) {
  if (palette_size < 1 || palette_size > kMaxPaletteSize) {
    throw ValueError(fmt::format("add_palette_tokens: palette size L must be in [1, {}], got {}", kMaxPaletteSize,
                                 palette_size));
  }
  if (attribute_names.empty()) throw ValueError("add_palette_tokens: expected at least one attribute, got none");
  const auto special = tokenizer.special_tokens();
  if (!special.eos) throw ValueError("add_palette_tokens: the tokenizer has no eos token (answers end with eos)");
  PaletteTokens t;
  for (std::int64_t j = 1; j <= palette_size; ++j) t.lap.push_back(tokenizer.add_special_token(fmt::format("<LaP_{}>", j)));
  for (std::int64_t j = 1; j <= palette_size; ++j) t.ldp.push_back(tokenizer.add_special_token(fmt::format("<LdP_{}>", j)));
  for (const auto& name : attribute_names) t.task.push_back(tokenizer.add_special_token(fmt::format("<task_{}>", name)));
  t.eos = *special.eos;
  t.pad = special.pad ? *special.pad : static_cast<PaletteTokenId>(decoder.options().pad_token_id());
  if (tokenizer.add_bos_token() && special.bos) t.bos = *special.bos;
  const auto vocab = static_cast<std::int64_t>(tokenizer.vocab_size());
  if (vocab > decoder.options().vocab_size()) decoder.resize_token_embeddings(vocab);
  return t;
}

PaletteEncoderImpl::PaletteEncoderImpl(PaletteEncoderOptions options, Decoder decoder_, PaletteTokens tokens)
    : options_(std::move(options)), tokens_(std::move(tokens)) {
  options_.check();
  tokens_.check();
  if (!decoder_) throw ValueError("PaletteEncoder: the decoder is empty (nullptr)");
  if (tokens_.palette_size() != options_.palette_size()) {
    throw ValueError(fmt::format("PaletteEncoder: options say L = {}, the tokens have {} LaP tokens",
                                 options_.palette_size(), tokens_.palette_size()));
  }
  if (tokens_.num_tasks() != options_.num_attributes()) {
    throw ValueError(fmt::format("PaletteEncoder: options say m = {} attributes, the tokens have {} task tokens",
                                 options_.num_attributes(), tokens_.num_tasks()));
  }
  const auto vocab = decoder_->options().vocab_size();
  auto check_id = [&](PaletteTokenId id, const char* what) {
    if (id < 0 || id >= vocab) {
      throw ValueError(fmt::format("PaletteEncoder: {} token id {} is outside the decoder's vocabulary of {} "
                                   "(call add_palette_tokens to grow it)", what, id, vocab));
    }
  };
  for (auto id : tokens_.lap) check_id(id, "LaP");
  for (auto id : tokens_.ldp) check_id(id, "LdP");
  for (auto id : tokens_.task) check_id(id, "task");
  check_id(tokens_.eos, "eos");
  check_id(tokens_.pad, "pad");
  if (tokens_.bos) check_id(*tokens_.bos, "bos");
  decoder = register_module("decoder", std::move(decoder_));
}

void PaletteEncoderImpl::reset() {}

std::shared_ptr<torch::nn::Module> PaletteEncoderImpl::clone(const c10::optional<torch::Device>& device) const {
  // Built by hand rather than through Cloneable: the decoder is rebuilt from its options and every
  // tensor copied by name, so the copy shares nothing with the original.
  torch::NoGradGuard no_grad;
  Decoder fresh(decoder->options());
  if (has_lora(*decoder)) apply_lora(*fresh, lora_options(*decoder));
  fresh->to(decoder->device(), decoder->dtype());
  auto copy_all = [](const torch::OrderedDict<std::string, torch::Tensor>& from,
                     torch::OrderedDict<std::string, torch::Tensor> to, const char* what) {
    TORCH_INTERNAL_ASSERT(from.size() == to.size(), "PaletteEncoder::clone: ", what, " count differs");
    for (const auto& item : from) {
      auto* dst = to.find(item.key());
      TORCH_INTERNAL_ASSERT(dst, "PaletteEncoder::clone: no ", what, " '", item.key(), "' in the copy");
      dst->copy_(item.value());
      if (dst->is_leaf()) dst->set_requires_grad(item.value().requires_grad());
    }
  };
  copy_all(decoder->named_parameters(), fresh->named_parameters(), "parameter");
  copy_all(decoder->named_buffers(), fresh->named_buffers(), "buffer");
  auto copy = std::make_shared<PaletteEncoderImpl>(options_, fresh, tokens_);
  copy->train(is_training());
  if (device) copy->to(*device);
  return copy;
}

std::int64_t PaletteEncoderImpl::palette_dim() const {
  const auto& o = decoder->options();
  return o.word_embed_proj_dim() > 0 ? o.word_embed_proj_dim() : o.hidden_size();
}

namespace {

// hidden [B, T, E] at columns index [B, L] -> [B, L, E].
torch::Tensor gather_rows(const torch::Tensor& hidden, const torch::Tensor& index) {
  auto idx = index.to(hidden.device()).unsqueeze(-1).expand({index.size(0), index.size(1), hidden.size(2)});
  return hidden.gather(1, idx);
}

void check_batch_device(const PaletteSegment& seg, const torch::Device&, const char* name) {
  // The decoder moves its inputs to its device; only the segment's presence is checked here.
  TORCH_CHECK_VALUE(seg.input_ids.defined(), "PaletteEncoder: the batch has no ", name,
                    " segment (collate_samples with with_full = true for the reference path)");
}

// The decoder skips the padding (no block attends it), so the padded rows cost no GEMM; with an
// output_mask its last layer also skips the rows whose outputs are never read.
torch::Tensor real_tokens(const PaletteSegment& seg) {
  return seg.block_types != static_cast<std::int64_t>(Block::kPad);
}

}  // namespace

torch::Tensor PaletteEncoderImpl::encode(const PaletteBatch& batch) {
  const auto& enc = batch.encode;
  auto device = decoder->device();
  check_batch_device(enc, device, "encode");
  DecoderInput in;
  in.input_ids = enc.input_ids;
  in.position_ids = enc.position_ids;
  in.attention_mask = palette_attention_mask(enc.block_types);
  in.token_mask = real_tokens(enc);
  in.output_mask = enc.block_types == static_cast<std::int64_t>(Block::kLaP);  // only the palettes are read
  in.compute_logits = false;
  auto out = decoder->forward(in);
  return gather_rows(out.last_hidden_state, batch.encode_lap_index);
}

// The mask of a segment with one row per sample (decode, full), under the options' task routing.
torch::Tensor PaletteEncoderImpl::sample_mask(const PaletteSegment& segment, const PaletteBatch& batch) const {
  if (options_.task_routing() == TaskRouting::kAll) return palette_attention_mask(segment.block_types);
  auto tasks = torch::tensor(batch.sample_tasks, torch::kInt64).to(segment.block_types.device());
  return palette_attention_mask(segment.block_types, options_.task_routing(), tasks);
}

PaletteEncoderOutput PaletteEncoderImpl::forward(const PaletteBatch& batch) { return forward(batch, options_.path()); }

PaletteEncoderOutput PaletteEncoderImpl::forward(const PaletteBatch& batch, PalettePath path) {
  const auto L = options_.palette_size();
  TORCH_CHECK_VALUE(batch.num_samples() > 0, "PaletteEncoder::forward: the batch has no samples (use encode() for "
                    "batches from collate_items)");
  auto device = decoder->device();
  if (path == PalettePath::kFast) {
    auto palettes = encode(batch);  // [U, L, E]
    const auto& dec = batch.decode;
    check_batch_device(dec, device, "decode");
    auto per_sample = palettes.index_select(0, batch.sample_item_row.to(device));  // [B, L, E]
    const auto B = dec.rows(), T = dec.length();
    auto rest = torch::zeros({B, T - L, per_sample.size(2)}, per_sample.options());
    DecoderInput in;
    in.input_ids = dec.input_ids;
    in.position_ids = dec.position_ids;
    in.attention_mask = sample_mask(dec, batch);
    in.inputs_embeds = torch::cat({per_sample, rest}, 1);
    in.embeds_mask = dec.block_types == static_cast<std::int64_t>(Block::kLdP);
    in.token_mask = real_tokens(dec);
    in.output_mask = dec.labels != kIgnoreLabel;  // only the LM head's rows are read
    in.compute_logits = false;
    return finish(decoder->forward(in).last_hidden_state, dec.labels, palettes);
  }
  const auto& full = batch.full;
  check_batch_device(full, device, "full");
  auto mask = sample_mask(full, batch);
  DecoderInput first;
  first.input_ids = full.input_ids;
  first.position_ids = full.position_ids;
  first.attention_mask = mask;
  first.token_mask = real_tokens(full);
  first.output_mask = full.block_types == static_cast<std::int64_t>(Block::kLaP);
  first.compute_logits = false;
  auto hidden = decoder->forward(first).last_hidden_state;               // [B, T, E]
  auto sample_palettes = gather_rows(hidden, batch.full_lap_index);        // [B, L, E]
  auto ldp = batch.full_ldp_index.to(device).unsqueeze(-1).expand({full.rows(), L, hidden.size(2)});
  DecoderInput second;
  second.input_ids = full.input_ids;
  second.position_ids = full.position_ids;
  second.attention_mask = mask;
  second.inputs_embeds = torch::zeros_like(hidden).scatter(1, ldp, sample_palettes);
  second.embeds_mask = full.block_types == static_cast<std::int64_t>(Block::kLdP);
  second.token_mask = first.token_mask;
  second.output_mask = full.labels != kIgnoreLabel;
  second.compute_logits = false;
  auto out = decoder->forward(second);
  auto palettes = sample_palettes.index_select(0, batch.item_first_sample.to(device));
  return finish(out.last_hidden_state, full.labels, palettes);
}

PaletteEncoderOutput PaletteEncoderImpl::finish(const torch::Tensor& hidden, const torch::Tensor& labels_in,
                                                const torch::Tensor& palettes) {
  // The LM head runs only on the positions that carry a label (answer tokens and eos).
  auto flat_labels = labels_in.to(hidden.device()).reshape({-1});
  auto idx = (flat_labels != kIgnoreLabel).nonzero().squeeze(1);
  auto logits = decoder->lm_logits(hidden.reshape({-1, hidden.size(2)}).index_select(0, idx)).unsqueeze(0);
  auto labels = flat_labels.index_select(0, idx).unsqueeze(0);
  const auto& lo = options_.losses();
  auto generation = functional::generation_loss(logits, labels, lo.reduction());
  PaletteLossImpl loss(lo);
  auto parts = loss.combine(generation, palettes);
  PaletteEncoderOutput out;
  out.loss = parts.total;
  out.generation_loss = parts.generation;
  out.intra_loss = parts.intra;
  out.inter_loss = parts.inter;
  out.decorrelation_loss = parts.decorrelation;
  out.palettes = palettes;
  {
    torch::NoGradGuard no_grad;
    out.correct_tokens = (logits.argmax(-1) == labels).sum().item<std::int64_t>();
    out.label_tokens = labels.numel();
  }
  return out;
}

}  // namespace lamia
