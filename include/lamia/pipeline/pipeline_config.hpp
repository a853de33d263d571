#pragma once
// The configuration of `lamia run`: one JSON file whose sections follow the
// pipeline (dataset -> tokenizer -> model -> palette training -> quantizers ->
// diagnostics). Every key has a default; with no file at all the pipeline runs
// the built-in synthetic catalog at a size that finishes in minutes on 2 cores.
//
//   {"dataset": {"format": "synthetic", "synthetic": {"num_items": 5000}},
//    "palette": {"palette_size": 4}, "quantize": {"num_codes": 64}}
#include <lamia/data/sequences.hpp>
#include <lamia/data/synthetic.hpp>
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
  /// Attributes to use, in order (empty: all of the catalog's). The first
  /// content_attributes of them form the palette encoder's content block.
  std::vector<std::string> attributes;
  /// r: attributes in the content block (0: all attributes).
  std::int64_t content_attributes = 0;
  /// Options of the synthetic catalog (format "synthetic").
  SyntheticOptions synthetic;
};

struct PipelineTokenizerConfig {
  /// Vocabulary size of the BPE trained on the catalog's text.
  std::int64_t vocab_size = 2048;
};

/// The decoder: trained from scratch (OPT architecture, pre-LN), or a
/// pretrained Hugging Face OPT folder fine-tuned with LoRA.
struct PipelineModelConfig {
  /// A Hugging Face OPT folder (config.json, safetensors, vocab.json, merges.txt);
  /// empty: train the model below from scratch.
  std::filesystem::path pretrained;
  /// LoRA rank for a pretrained model (paper: 128; 0: full fine-tuning).
  std::int64_t lora_rank = 128;
  std::int64_t hidden_size = 128;
  std::int64_t num_layers = 2;
  std::int64_t num_heads = 4;
  std::int64_t ffn_dim = 512;
  std::int64_t max_positions = 512;
  double dropout = 0.0;
};

/// Palette encoder and its training. Paper defaults are L=4, gamma=0.1,
/// alpha_intra=0.1, alpha_inter=0.25, lr 1e-4, batch 128; a from-scratch small
/// model trains faster with a larger learning rate, hence lr 1e-3 here.
struct PipelinePaletteConfig {
  std::int64_t palette_size = 4;
  std::int64_t attribute_token_budget = 48;
  std::int64_t answer_token_budget = 24;
  double gamma = 0.1;
  double alpha_intra = 0.1;
  double alpha_inter = 0.25;
  /// Contrastive terms in the loss: both, intra, inter or off (ablations).
  std::string contrastive = "both";
  double learning_rate = 1e-3;
  std::int64_t batch_size = 64;
  std::int64_t epochs = 3;
  /// Stop after this many optimizer steps (0: epochs decide).
  std::int64_t max_steps = 0;
  /// Share of items held out for early stopping and reconstruction accuracy.
  double holdout_fraction = 0.05;
  double grad_clip = 1.0;
  std::uint64_t seed = 2024;
};

/// The LAMIA quantizer (per position PCA + K-Means) and the baselines' sizes.
struct PipelineQuantizeConfig {
  std::int64_t pca_dim = 32;
  std::int64_t num_codes = 64;
  int iterations = 25;
  int restarts = 1;
  /// Levels of the residual baselines (RQ-VAE and residual K-Means); 0: the palette size.
  std::int64_t baseline_levels = 0;
  /// RQ-VAE epochs upper bound (early stopping decides before).
  int rqvae_max_epochs = 200;
  std::uint64_t seed = 2024;
};

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

/// The generative recommender trained on each tokenizer's semantic IDs, and the ID-based baselines.
struct PipelineRecommendConfig {
  /// Semantic IDs to train a recommender on: lamia, rq-vae, residual-kmeans; on the synthetic
  /// catalog also oracle (the true aspect values as codes) and random (random codes, same sizes).
  std::vector<std::string> tokenizers = {"lamia", "rq-vae", "residual-kmeans", "oracle", "random"};
  /// The transformer (TRM3L-shaped by default, see RecommenderModelOptions).
  RecommenderModelOptions model = small_model();
  std::int64_t batch_size = 64;
  double learning_rate = 1e-3;
  std::int64_t epochs = 10;
  /// Validations (one per epoch) without a lower validation loss before stopping.
  std::int64_t patience = 2;
  /// Also count every history item's tokens in the loss (RecBench's choice). With
  /// sequences.train_examples = last_item this trains on every prefix of a user's sequence in one
  /// causal pass; false with all_prefixes is the paper's text (target tokens only), many times slower.
  bool loss_on_history = true;
  std::uint64_t seed = 2024;
  /// ID-based baselines: popularity, transition (first-order), sasrec-ce, sasrec-bce.
  std::vector<std::string> baselines = {"popularity", "transition", "sasrec-ce", "sasrec-bce"};
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

/// How recommendations are decoded and scored.
struct PipelineEvaluateConfig {
  /// Beam search over the trie of real items (beam >= top_k).
  std::int64_t beam_width = 20;
  std::int64_t top_k = 20;
  /// Cut-offs of Recall@K and NDCG@K.
  std::vector<std::int64_t> ks = {1, 5, 10, 20};
  /// Also rank the whole catalog exactly (every item's log-probability): full-ranking metrics and
  /// the beam-vs-exact agreement.
  bool exact = true;
  /// Remove the user's history items from the ranking.
  bool exclude_history = true;
  /// Evaluate at most this many test users (0: all), the first ones of the split.
  std::int64_t max_users = 0;
};

struct PipelineConfig {
  PipelineDatasetConfig dataset;
  PipelineTokenizerConfig tokenizer;
  PipelineModelConfig model;
  PipelinePaletteConfig palette;
  PipelineQuantizeConfig quantize;
  PipelineSequencesConfig sequences;
  PipelineRecommendConfig recommend;
  PipelineEvaluateConfig evaluate;
  /// Torch intra-op threads. 0: the machine's cores, lamia::default_thread_count() (physical cores
  /// within the cgroup CPU limit, or OMP_NUM_THREADS, or the CLI's --threads); not torch's own default.
  int threads = 0;
  /// Print progress lines to stderr.
  bool progress = true;
};

void to_json(nlohmann::json& j, const PipelineConfig& config);
/// Missing keys keep their defaults; an unknown key or a wrong type throws
/// ValueError naming the key path (e.g. "palette.batch_size").
void from_json(const nlohmann::json& j, PipelineConfig& config);
/// Reads a JSON config file; errors name the file (and the key).
PipelineConfig load_pipeline_config(const std::filesystem::path& path);

}  // namespace lamia
