#pragma once
// The configuration of `lamia run`: one JSON file whose sections follow the
// pipeline (dataset -> tokenizer -> model -> palette training -> quantizers ->
// recommenders -> evaluation). Every key has a default; with no file at all the pipeline runs
// the built-in synthetic catalog at a size that finishes in minutes on 2 cores.
//
// The sections hold the library's own Options structs (their fields, checks and docs are listed
// once, in their visit_fields; lamia/core/options.hpp reads and writes them), and the few keys
// that only the pipeline has. The defaults below are the pipeline's (a small model trained from
// scratch on a CPU), not the paper's, which are the library structs' own defaults.
//
//   {"dataset": {"format": "synthetic", "synthetic": {"num_items": 5000}},
//    "palette": {"encoder": {"palette_size": 4}}, "quantize": {"lamia": {"kmeans": {"num_codes": 64}}}}
#include <lamia/core/options.hpp>
#include <lamia/data/loaders/load_options.hpp>
#include <lamia/data/sequences.hpp>
#include <lamia/data/synthetic.hpp>
#include <lamia/evaluate/metrics.hpp>
#include <lamia/palette/setup.hpp>
#include <lamia/palette/trainer.hpp>
#include <lamia/pipeline/tokenizer_comparison.hpp>
#include <lamia/recommend/generative_recommender.hpp>
#include <lamia/recommend/sasrec.hpp>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lamia {

struct PipelineDatasetConfig {
  /// A format of load_dataset (mind, amazon-lcrec, amazon, hm, movielens, jsonl, csv) or "synthetic".
  std::string format = "synthetic";
  /// The dataset folder (unused for synthetic).
  std::filesystem::path path;
  /// Skip malformed rows with counted warnings instead of failing.
  bool lenient = false;
  /// Interactions with an item id missing from the item file: the format's default (add for mind, else
  /// error), error, skip or add (LoadOptions::unknown_items).
  UnknownItems unknown_items = UnknownItems::kDefault;
  /// Remove the items whose used attributes are all empty, and their interactions, before any stage
  /// (the palette, the IDs and the sequences then share one catalog). MIND's default adds every clicked
  /// news missing from news.tsv as such an item.
  bool drop_items_without_text = false;
  /// Attributes to use, in order (empty: all of the catalog's). The first
  /// palette.encoder.num_content_attributes of them form the palette encoder's content block.
  std::vector<std::string> attributes;
  /// Options of the synthetic catalog (format "synthetic"). The pipeline's default layout gives each
  /// aspect its own attribute and a prose description as the content (docs/research.md: with the
  /// library's "listed" layout no attribute isolates an aspect).
  SyntheticOptions synthetic = default_synthetic();

  static SyntheticOptions default_synthetic() {
    SyntheticOptions s;
    s.attribute_layout = SyntheticAttributeLayout::aspect_per_attribute;
    return s;
  }
};

template <class V>
void visit_fields(PipelineDatasetConfig& o, V&& v) {
  v.field("format", o.format,
          "a format of load_dataset (mind, amazon-lcrec, amazon, hm, movielens, jsonl, csv) or 'synthetic'");
  v.field("path", o.path, "the dataset folder (unused for synthetic)");
  v.field("lenient", o.lenient, "skip malformed rows with counted warnings instead of failing");
  v.field("unknown_items", o.unknown_items,
          "interactions with an item missing from the item file: default (add for mind, else error), error, "
          "skip, add");
  v.field("drop_items_without_text", o.drop_items_without_text,
          "remove the items whose used attributes are all empty, and their interactions, before any stage");
  v.field("attributes", o.attributes,
          "attributes to use, in order (empty: all); the first num_content_attributes form the content block");
  v.field("synthetic", o.synthetic, "the synthetic catalog (format 'synthetic')");
}

struct PipelineTokenizerConfig {
  /// Vocabulary size of the BPE trained on the catalog's text.
  std::int64_t vocab_size = 2048;
};

template <class V>
void visit_fields(PipelineTokenizerConfig& o, V&& v) {
  v.field("vocab_size", o.vocab_size, "vocabulary size of the BPE trained on the catalog's text (>= 260)",
          options::at_least(260));
}

/// The decoder: trained from scratch (OPT architecture, pre-LN), or a
/// pretrained Hugging Face OPT folder fine-tuned with LoRA.
struct PipelineModelConfig {
  /// A Hugging Face OPT folder (config.json, safetensors, vocab.json, merges.txt);
  /// empty: train the model `scratch` from scratch.
  std::filesystem::path pretrained;
  /// LoRA rank for a pretrained model (paper: 128; 0: full fine-tuning).
  std::int64_t lora_rank = 128;
  /// The model trained from scratch. Its vocab_size is not used by `lamia run`: the tokenizer
  /// stage's BPE (tokenizer.vocab_size) decides the vocabulary.
  ScratchModelOptions scratch = small_model();

  static ScratchModelOptions small_model() {
    ScratchModelOptions m;
    m.hidden_size = 128;
    m.num_layers = 2;
    m.num_heads = 4;
    m.ffn_dim = 512;
    m.dropout = 0.0;
    m.max_position_embeddings = 512;
    m.seed = 2024;
    return m;
  }
};

template <class V>
void visit_fields(PipelineModelConfig& o, V&& v) {
  v.field("pretrained", o.pretrained,
          "a Hugging Face OPT folder (config.json, safetensors, vocab.json, merges.txt); empty: train 'scratch'");
  v.field("lora_rank", o.lora_rank, "LoRA rank for a pretrained model (paper: 128; 0: full fine-tuning)",
          options::at_least(0));
  v.field("scratch", o.scratch, "the decoder trained from scratch (its vocab_size is tokenizer.vocab_size's)");
}

/// Palette encoder and its training. Paper defaults are L=4, gamma=0.1,
/// alpha_intra=0.1, alpha_inter=0.25, lr 1e-4, batch 128; a from-scratch small
/// model trains faster with a larger learning rate, hence lr 1e-3 here.
struct PipelinePaletteConfig {
  /// The encoder's options. num_attributes 0: the catalog's attribute count (another value must
  /// equal it); num_content_attributes 0: all attributes (r = m).
  PaletteEncoderOptions encoder = small_encoder();
  /// The trainer's options. checkpoint_path must stay empty: the stage checkpoints to
  /// palette_encoder/trainer.ckpt; with progress off its lines are dropped, the loss curve still recorded.
  PaletteTrainerOptions trainer = small_trainer();

  /// The setting issue #11's experiments found most informative (docs/research.md, row
  /// routing-l4-decor-0.003, on three seeds): one content attribute, task i reading only palette
  /// position i mod L (L = 4, the paper's), the intra loss on batch-centred palettes and the
  /// decorrelation penalty at weight 0.003. The paper's method is configs/paper-method.json
  /// (task_routing "all", every attribute in the content, the paper's losses).
  static PaletteEncoderOptions small_encoder() {
    return PaletteEncoderOptions(0, 1)
        .palette_size(4)
        .task_routing(TaskRouting::kOnePosition)
        .losses(PaletteLossOptions().intra_centring(IntraCentring::kBatch).decorrelation_weight(0.003))
        .attribute_token_budget(48)
        .answer_token_budget(24);
  }
  static PaletteTrainerOptions small_trainer() {
    return PaletteTrainerOptions()
        .batch_size(64)
        .validation_fraction(0.05)
        .seed(2024)
        .loop(PaletteTrainerOptions::default_loop().learning_rate(1e-3).epochs(3).grad_clip_norm(1.0).log_every(25));
  }
};

template <class V>
void visit_fields(PipelinePaletteConfig& o, V&& v) {
  v.field("encoder", o.encoder,
          "the palette encoder (num_attributes 0: the catalog's; num_content_attributes 0: all attributes)");
  v.field("trainer", o.trainer,
          "its training (checkpoint_path stays empty: the stage uses palette_encoder/trainer.ckpt)");
}

/// Interactions to sequences, and the evaluation protocol (DESIGN.md, "Evaluation protocol").
struct PipelineSequencesConfig {
  /// "leave_one_out" (TIGER: per user the last item is the test target, the second last the
  /// validation target) or "user_holdout" (RecBench: users split by a saved shuffled order).
  std::string protocol = "leave_one_out";
  /// Rating filter, last-N cut, minimum length (SequenceOptions; its JSON keys).
  SequenceOptions filter;
  /// Users per part for "user_holdout" (HoldoutOptions; its JSON keys).
  HoldoutOptions holdout;
  /// Training examples: "last_item" (one per user: the training sequence's last item is the
  /// target, the items before it the history) or "all_prefixes" (every position is a target).
  /// With recommend.loss_on_history, last_item trains every position in one causal pass.
  std::string train_examples = "last_item";
  /// Seed of the saved user order (user_holdout).
  std::uint64_t user_order_seed = 2024;
};

template <class V>
void visit_fields(PipelineSequencesConfig& o, V&& v) {
  v.field("protocol", o.protocol, "'leave_one_out' (TIGER) or 'user_holdout' (RecBench)");
  v.field("filter", o.filter, "rating filter, last-N cut, minimum length");
  v.field("holdout", o.holdout, "users per part for 'user_holdout'");
  v.field("train_examples", o.train_examples, "'last_item' (one example per user) or 'all_prefixes'");
  v.field("user_order_seed", o.user_order_seed, "seed of the saved user order (user_holdout)");
}

/// The generative recommender trained on each tokenizer's semantic IDs, and the ID-based baselines.
struct PipelineRecommendConfig {
  /// Semantic IDs to train a recommender on: lamia, rq-vae, residual-kmeans; on the synthetic
  /// catalog also oracle (the true aspect values as codes) and random (random codes, same sizes).
  /// The default is the comparison `lamia run` prints within about five minutes on two cores;
  /// configs/synthetic-full.json adds the oracle and random codes, SASRec-BCE, exact scoring and a
  /// longer training.
  std::vector<std::string> tokenizers = {"lamia", "rq-vae", "residual-kmeans"};
  /// The transformer (TRM3L-shaped by default, see RecommenderModelOptions). backbone "lm": the
  /// language model with the code tokens after a text vocabulary: from scratch over the run's tokenizer
  /// (tokenizer/), or from model.pretrained here = a Hugging Face OPT folder (its own tokenizer).
  RecommenderModelOptions model = small_model();
  /// backbone "lm": epochs of phase 1 (recommendation and text-token alignment examples mixed, one
  /// per item, its text = its attributes); the other epochs train recommendation alone. 0: no alignment.
  std::int64_t align_epochs = 0;
  std::int64_t batch_size = 64;
  double learning_rate = 1e-3;
  std::int64_t epochs = 3;
  /// Validations (one per epoch) without a lower validation loss before stopping.
  std::int64_t patience = 2;
  /// Also count every history item's tokens in the loss (RecBench's choice). With
  /// sequences.train_examples = last_item this trains on every prefix of a user's sequence in one
  /// causal pass; false with all_prefixes is the paper's text (target tokens only), many times slower.
  bool loss_on_history = true;
  std::uint64_t seed = 2024;
  /// ID-based baselines: popularity, transition (first-order), sasrec-ce, sasrec-bce.
  std::vector<std::string> baselines = {"popularity", "transition", "sasrec-ce"};
  /// SASRec's size (its "loss" key is set by the baseline's name).
  SasRecOptions sasrec;
  std::int64_t sasrec_epochs = 30;
  std::int64_t sasrec_batch_size = 128;

  static RecommenderModelOptions small_model() {
    RecommenderModelOptions m;
    m.hidden_size = 64;
    m.num_layers = 3;
    m.num_heads = 4;
    m.dropout = 0.1;
    return m;
  }
};

template <class V>
void visit_fields(PipelineRecommendConfig& o, V&& v) {
  v.field("tokenizers", o.tokenizers,
          "semantic IDs to train a recommender on: lamia, rq-vae, residual-kmeans, oracle, random");
  v.field("model", o.model, "the recommender transformer (backbone 'codes' or 'lm')");
  v.field("align_epochs", o.align_epochs,
          "backbone 'lm': epochs of phase 1, recommendation and text-token alignment mixed (0: no alignment)",
          options::at_least(0));
  v.field("batch_size", o.batch_size, "examples per optimizer step", options::at_least(1));
  v.field("learning_rate", o.learning_rate, "Adam's learning rate", options::greater_than(0));
  v.field("epochs", o.epochs, "passes over the training examples", options::at_least(0));
  v.field("patience", o.patience, "validations without a lower loss before stopping (0: never)", options::at_least(0));
  v.field("loss_on_history", o.loss_on_history, "also count every history item's tokens in the loss (RecBench)");
  v.field("seed", o.seed, "seed of the models, the example order and the random codes");
  v.field("baselines", o.baselines, "ID-based baselines: popularity, transition, sasrec-ce, sasrec-bce");
  v.field("sasrec", o.sasrec, "SASRec's size (its loss is set by the baseline's name)");
  v.field("sasrec_epochs", o.sasrec_epochs, "SASRec's epochs", options::at_least(0));
  v.field("sasrec_batch_size", o.sasrec_batch_size, "SASRec's sequences per optimizer step", options::at_least(1));
}

/// How recommendations are decoded and scored.
struct PipelineEvaluateConfig {
  /// Beam search over the trie of real items (beam >= top_k).
  std::int64_t beam_width = 20;
  std::int64_t top_k = 20;
  /// Cut-offs of Recall@K and NDCG@K.
  std::vector<std::int64_t> ks = {1, 5, 10, 20};
  /// Also rank the whole catalog exactly (every item's log-probability): full-ranking metrics and
  /// the beam-vs-exact agreement.
  bool exact = false;
  /// Remove the user's history items from the ranking.
  bool exclude_history = true;
  /// With exclude_history, a test target that repeats a history item: a miss, or the user is dropped.
  RepeatedTargets repeated_targets = RepeatedTargets::miss;
  /// Evaluate at most this many test users (0: all), the first ones of the split. The default (1,000
  /// of the synthetic catalog's 3,000) keeps the built-in run short; real datasets' configs set 0.
  std::int64_t max_users = 1000;
  /// Exact scoring (one forward per trie node per user, about 1 user/s at 2.4k items on 2 cores) runs
  /// on the first exact_users evaluated users (0: all of them).
  std::int64_t exact_users = 100;
};

template <class V>
void visit_fields(PipelineEvaluateConfig& o, V&& v) {
  v.field("beam_width", o.beam_width, "beam search over the trie of real items (beam >= top_k)", options::at_least(1));
  v.field("top_k", o.top_k, "recommendations per user", options::at_least(1));
  v.field("ks", o.ks, "cut-offs of Recall@K and NDCG@K", options::at_least(1));
  v.field("exact", o.exact, "also rank the whole catalog exactly (full-ranking metrics, beam-vs-exact agreement)");
  v.field("exclude_history", o.exclude_history, "remove the user's history items from the ranking");
  v.field("repeated_targets", o.repeated_targets,
          "with exclude_history, a test target that repeats a history item: 'miss' (counted, unreachable) or 'drop'");
  v.field("max_users", o.max_users, "evaluate at most this many test users (0: all)", options::at_least(0));
  v.field("exact_users", o.exact_users, "exact scoring on the first this many evaluated users (0: all)",
          options::at_least(0));
}

struct PipelineConfig {
  PipelineDatasetConfig dataset;
  PipelineTokenizerConfig tokenizer;
  PipelineModelConfig model;
  PipelinePaletteConfig palette;
  /// The three tokenizers (LAMIA's quantizer, residual K-Means, RQ-VAE), their library options.
  TokenizerComparisonOptions quantize = small_quantize();
  PipelineSequencesConfig sequences;
  PipelineRecommendConfig recommend;
  PipelineEvaluateConfig evaluate;
  /// Torch intra-op threads. 0: the machine's cores, lamia::default_thread_count() (physical cores
  /// within the cgroup CPU limit, or OMP_NUM_THREADS, or the CLI's --threads); not torch's own default.
  int threads = 0;
  /// OpenBLAS threads for the palette encoder's training, evaluation and export (its large GEMMs; the
  /// other stages keep OpenBLAS on one thread): 0 = as many as `threads`, unless OPENBLAS_NUM_THREADS
  /// is set in the environment by the user; n >= 1: n; -1: leave OpenBLAS alone
  /// (include/lamia/core/blas_threads.hpp). Another count rounds some products differently, so the
  /// palette encoder's weights change in the last bits and training amplifies it (docs/pipeline.md,
  /// "Determinism"); a fixed setting is deterministic.
  int blas_threads = 0;
  /// Print progress lines to stderr.
  bool progress = true;

  /// The quantizers for the default catalog (2,000 items, aspects of 5 to 12 values): k = 64 codes,
  /// d = 32 PCA dimensions, seed 2024, the baselines as long as the palette.
  static TokenizerComparisonOptions small_quantize() {
    TokenizerComparisonOptions q;
    q.lamia.pca_dim = 32;
    q.lamia.reduce_k_when_few_items = true;
    q.lamia.kmeans.num_codes = 64;
    q.lamia.kmeans.seed = 2024;
    q.residual_kmeans.reduce_k_when_few_items = true;
    q.residual_kmeans.kmeans.num_codes = 64;
    q.residual_kmeans.kmeans.seed = 2024;
    q.rq_vae.num_codes(64).seed(2024);
    q.rq_vae_train.seed = 2024;
    q.match_palette_size = true;
    return q;
  }
};

template <class V>
void visit_fields(PipelineConfig& o, V&& v) {
  v.field("dataset", o.dataset, "the items and interactions");
  v.field("tokenizer", o.tokenizer, "the BPE trained on the catalog (models trained from scratch)");
  v.field("model", o.model, "the palette encoder's decoder");
  v.field("palette", o.palette, "the palette encoder and its training");
  v.field("quantize", o.quantize, "the semantic tokenizers");
  v.field("sequences", o.sequences, "interactions to sequences, and the split");
  v.field("recommend", o.recommend, "the generative recommenders and the ID-based baselines");
  v.field("evaluate", o.evaluate, "decoding and scoring");
  v.field("threads", o.threads, "torch intra-op threads (0: the machine's cores)", options::at_least(0));
  v.field("blas_threads", o.blas_threads,
          "OpenBLAS threads for the palette encoder's training and export (0: as many as threads; -1: leave OpenBLAS alone)",
          options::at_least(-1));
  v.field("progress", o.progress, "print progress lines to stderr");
}

void to_json(nlohmann::json& j, const PipelineConfig& config);
/// Missing keys keep their defaults; an unknown key, a wrong type or a value out of range throws
/// ValueError naming the key path (e.g. "palette.trainer.batch_size").
void from_json(const nlohmann::json& j, PipelineConfig& config);
/// Reads a JSON config file; errors name the file (and the key).
PipelineConfig load_pipeline_config(const std::filesystem::path& path);
/// The JSON of a config file before it is read into a PipelineConfig (the CLI applies --set to it):
/// an object, nested at most limits::kMaxJsonDepth deep, with no key set twice in one object;
/// otherwise a ParseError or ValueError naming the file (and the line and key where there is one).
nlohmann::json load_pipeline_config_json(const std::filesystem::path& path);

}  // namespace lamia
