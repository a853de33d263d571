// Stage "recommend": a generative recommender trained on each tokenizer's semantic IDs (and, on the
// synthetic catalog, on the oracle IDs — the true aspect values — and on random codes, which bracket
// what a tokenizer can give), and the trained ID-based baselines (SASRec with CE and with BCE).
// Training resumes from checkpoints/ after an interruption. With recommend.model.backbone "lm" the
// recommenders are the language model with the code tokens after the run's tokenizer (the catalog's
// BPE from the tokenizer stage, or recommend.model.pretrained's own), trained with the text-token
// alignment task for recommend.align_epochs epochs first.
#include "../context.hpp"
#include "../lm_text.hpp"
#include "distributed_stages.hpp"

#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/pipeline/stage.hpp>
#include <lamia/recommend/generative_recommender.hpp>
#include <lamia/recommend/sasrec.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ostream>
#include <random>

namespace lamia {
namespace fs = std::filesystem;
namespace {

nlohmann::json training_json(const TrainingResult& r) {
  nlohmann::json j = {{"steps", r.steps},
                      {"epochs_completed", r.epochs_completed},
                      {"resumed", r.resumed},
                      {"stop_reason", r.stop_reason},
                      {"best_validation_loss", std::isfinite(r.best_validation_loss) ? nlohmann::json(r.best_validation_loss) : nlohmann::json()},
                      {"best_step", r.best_step},
                      {"tokens_per_second", r.tokens_per_second},
                      {"seconds", r.seconds}};
  j["train_history"] = nlohmann::json::array();
  for (const auto& h : r.train_history)
    j["train_history"].push_back({{"step", h.step}, {"loss", h.loss}, {"token_accuracy", h.token_accuracy},
                                  {"tokens_per_second", h.tokens_per_second}});
  j["validation_history"] = nlohmann::json::array();
  for (const auto& h : r.validation_history) j["validation_history"].push_back({{"step", h.step}, {"loss", h.loss}});
  return j;
}

// The training loop's options of one model of this stage (its checkpoint under checkpoints/recommend/).
// The loss curve is recorded about 50 times per run (training.json, `lamia report`) whether or not
// progress is shown: with progress off the lines go to a stream that drops them.
TrainingLoopOptions loop_options(PipelineContext& ctx, const std::string& label, const std::string& file,
                                 std::int64_t epochs, std::int64_t steps_per_epoch) {
  const auto& rc = ctx.config.recommend;
  static std::ostream dropped(nullptr);
  const auto total = std::max<std::int64_t>(1, epochs * steps_per_epoch);
  return TrainingLoopOptions()
      .name(label)
      .learning_rate(rc.learning_rate)
      .epochs(epochs)
      .patience(rc.patience)
      .seed(rc.seed)
      .checkpoint_path(ctx.path("checkpoints/recommend/" + file + ".ckpt").string())
      .log_every(std::clamp<std::int64_t>((total + 49) / 50, 1, 100))
      .log(ctx.config.progress ? &ctx.log : &dropped);
}

class RecommendStage : public Stage {
 public:
  std::string name() const override { return "recommend"; }
  std::vector<std::string> inputs(const PipelineConfig& config) const override {
    // The LM backbone reads the run's tokenizer (which knows model.pretrained's as well).
    if (config.recommend.model.backbone == RecommenderBackbone::lm) return {"dataset", "semantic_ids", "tokenizer"};
    return {"dataset", "semantic_ids"};
  }
  nlohmann::json config_section(const PipelineConfig& config) const override {
    nlohmann::json j;
    to_json(j, config);
    return {{"sequences", j.at("sequences")}, {"recommend", j.at("recommend")}};
  }
  std::vector<std::string> checkpoints(const PipelineConfig&) const override { return {"checkpoints/recommend"}; }

  // The IDs a recommender is trained on; "oracle" and "random" are made here.
  std::optional<SemanticIdTable> table_for(PipelineContext& ctx, const std::string& name) {
    if (name == "oracle") {
      const auto& labels = ctx.dataset().labels;
      if (!labels.defined()) return std::nullopt;  // only the synthetic catalog knows its aspects
      return SemanticIdTable::from_codes(labels);
    }
    if (name == "random") {
      // Random codes of the same shape as LAMIA's IDs (L positions, k codes each).
      const auto& lamia = ctx.table("lamia");
      const auto L = lamia.num_levels();
      std::vector<std::int64_t> sizes(lamia.codebook_sizes().begin(), lamia.codebook_sizes().begin() + L);
      std::mt19937_64 rng(ctx.config.recommend.seed);
      std::vector<std::int32_t> codes(std::size_t(lamia.num_items() * L));
      for (std::int64_t i = 0; i < lamia.num_items(); ++i)
        for (std::int64_t l = 0; l < L; ++l)
          codes[std::size_t(i * L + l)] = std::int32_t(std::uniform_int_distribution<std::int64_t>(0, sizes[l] - 1)(rng));
      return SemanticIdTable::from_codes(codes.data(), lamia.num_items(), L, sizes);
    }
    return ctx.table(name);
  }

  std::vector<ArtifactSpec> run(PipelineContext& ctx) override {
    const auto& rc = ctx.config.recommend;
    const auto& split = ctx.split();
    const auto num_items = std::int64_t(ctx.sequences().catalog.size());
    ctx.say(fmt::format("sequences ({}): {} training examples, {} valid, {} test", ctx.config.sequences.protocol,
                        split.train.size(), split.valid.size(), split.test.size()));
    if (split.train.empty() || split.test.empty())
      throw ValueError("recommend: the split has no training or no test examples (too few interactions per user?)");
    // Under torchrun (run_pipeline_on_group) every rank trains the generative recommenders; rank 0 alone
    // writes, and trains SASRec (which does not shard). The split above made users.order on rank 0 first.
    detail::begin_distributed_stage(name());
    const bool writer = detail::writes_run_folder();
    if (writer) {
      fs::create_directories(ctx.path("recommenders"));
      fs::create_directories(ctx.path("checkpoints/recommend"));
    }
    std::vector<ArtifactSpec> out;
    const bool lm = rc.model.backbone == RecommenderBackbone::lm;
    LmText text;
    if (lm) {
      text = lm_text(ctx);
      ctx.say(fmt::format("recommend: LM backbone, {} text tokens{}, alignment {} epochs", text.text_vocab_size,
                          rc.model.pretrained.empty() ? " (from scratch)" : ", from " + rc.model.pretrained.string(),
                          rc.align_epochs));
    }
    for (const auto& name : rc.tokenizers) {
      const auto t0 = std::chrono::steady_clock::now();
      auto table = table_for(ctx, name);
      if (!table) {
        ctx.say(fmt::format("recommender '{}': skipped (the dataset has no ground-truth aspects)", name));
        continue;
      }
      if (table->num_items() != num_items) {
        throw ValueError(fmt::format("recommend: semantic IDs '{}' cover {} items, the sequences' catalog {}", name,
                                     table->num_items(), num_items));
      }
      const auto dir = ctx.path("recommenders/" + name);
      if (writer) {
        fs::create_directories(dir);
        table->save(dir / "semantic_ids.bin");
      }
      auto vocab = lm ? CodeVocabulary::after_text(table->codebook_sizes(), text.text_vocab_size, text.bos, text.pad)
                      : CodeVocabulary::for_table(*table);
      auto model = make_recommender(vocab, rc.model, rc.seed);
      RecommenderTrainerOptions options;
      options.batch_size = rc.batch_size;
      options.loss_on_history = rc.loss_on_history;
      options.max_history_items = rc.model.max_history_items;
      options.seed = rc.seed;
      options.item_text_tokens = rc.model.item_text_tokens;
      options.align_epochs = rc.align_epochs;
      options.align_text_tokens = rc.model.align_text_tokens;
      options.loop = loop_options(ctx, "recommender[" + name + "]", name, rc.epochs,
                                  (std::int64_t(split.train.size()) + rc.batch_size - 1) / rc.batch_size);
      options.loop.gradient_sync(detail::stage_training_group());  // each rank its shard of every batch
      auto result = train_recommender(model, *table, vocab, split.train, split.valid, options, text.item_text);
      if (!writer) continue;
      save_recommender(dir, *model, *table, vocab, rc.model, lm ? &text.item_text : nullptr);
      auto summary = training_json(result);
      summary["tokenizer"] = name;
      summary["backbone"] = lm ? "lm" : "codes";
      summary["align_epochs"] = lm ? rc.align_epochs : 0;
      summary["parameters"] = [&] {
        std::int64_t n = 0;
        for (const auto& p : model->parameters()) n += p.numel();
        return n;
      }();
      write_text_atomically(dir / "training.json", summary.dump(2) + "\n");
      ctx.say(fmt::format("recommender '{}': {} steps, best validation loss {:.4f} ({:.1f}s)", name, result.steps,
                          result.best_validation_loss,
                          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
    }
    out.push_back({"recommenders", "recommenders", 1});
    if (!writer) return out;

    bool any_baseline = false;
    for (const auto& name : rc.baselines) {
      if (!is_trained_baseline(name)) continue;  // popularity and transition need no training
      const auto t0 = std::chrono::steady_clock::now();
      fs::create_directories(ctx.path("baselines"));
      auto so = rc.sasrec;
      so.loss = name == "sasrec-bce" ? SasRecLoss::bce : SasRecLoss::cross_entropy;
      SasRec model(num_items, so, rc.seed);
      SasRecTrainerOptions options;
      options.batch_size = rc.sasrec_batch_size;
      options.seed = rc.seed;
      options.loop = loop_options(ctx, name, name, rc.sasrec_epochs,
                                  (std::int64_t(split.train.size()) + rc.sasrec_batch_size - 1) / rc.sasrec_batch_size);
      auto result = train_sasrec(model, sequences_of(split.train), split.valid, options);
      save_sasrec(ctx.path("baselines/" + name), model);
      auto summary = training_json(result);
      write_text_atomically(ctx.path("baselines/" + name + "/training.json"), summary.dump(2) + "\n");
      ctx.say(fmt::format("baseline '{}': {} steps ({:.1f}s)", name, result.steps,
                          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
      any_baseline = true;
    }
    if (any_baseline) out.push_back({"baselines", "baselines", 1});
    return out;
  }
};

}  // namespace

std::unique_ptr<Stage> make_recommend_stage() { return std::make_unique<RecommendStage>(); }

}  // namespace lamia
