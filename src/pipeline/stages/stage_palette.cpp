// Stage "palette": trains the palette encoder (resuming from palette_encoder/trainer.ckpt after an
// interruption) and reports what "training worked" means: every loss part and the held-out
// reconstruction accuracy before and after, and the mean intra-item cosine between positions.
#include "../context.hpp"
#include "distributed_stages.hpp"

#include <lamia/nn/checkpoint.hpp>
#include <lamia/palette/evaluation.hpp>
#include <lamia/palette/trainer.hpp>
#include <lamia/pipeline/stage.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <ostream>

namespace lamia {
namespace fs = std::filesystem;
namespace {

nlohmann::json loss_record_json(const PaletteLossRecord& r) {
  return {{"step", r.step},
          {"loss", r.loss},
          {"generation_loss", r.generation_loss},
          {"intra_loss", r.intra_loss},
          {"inter_loss", r.inter_loss},
          {"token_accuracy", r.token_accuracy},
          {"tokens_per_second", r.tokens_per_second}};
}

class PaletteStage : public Stage {
 public:
  std::string name() const override { return "palette"; }
  std::vector<std::string> inputs(const PipelineConfig&) const override { return {"dataset", "tokenizer"}; }
  nlohmann::json config_section(const PipelineConfig& config) const override {
    nlohmann::json j;
    to_json(j, config);
    return {{"model", j.at("model")},
            {"palette", j.at("palette")},
            {"attributes", j.at("dataset").at("attributes")}};
  }
  std::vector<std::string> checkpoints(const PipelineConfig&) const override { return {"palette_encoder/trainer.ckpt"}; }

  std::vector<ArtifactSpec> run(PipelineContext& ctx) override {
    // Under torchrun (run_pipeline_on_group) every rank trains; rank 0 alone evaluates and writes.
    detail::begin_distributed_stage(name());
    const bool writer = detail::writes_run_folder();
    const auto t0 = std::chrono::steady_clock::now();
    const auto& pc = ctx.config.palette;
    torch::manual_seed(pc.trainer.seed());
    auto& setup = ctx.palette_setup();
    auto& encoder = setup.encoder;
    const auto& catalog = setup.catalog;
    const fs::path dir = ctx.path("palette_encoder");
    if (writer) fs::create_directories(dir);
    PaletteTrainerOptions options = pc.trainer;
    // The loss curve is recorded every log_every steps (training.json, `lamia report`) whether or not
    // progress is shown: with progress off the lines go to a stream that drops them.
    static std::ostream dropped(nullptr);
    options.loop().checkpoint_path((dir / "trainer.ckpt").string()).log(ctx.config.progress ? &ctx.log : &dropped);
    options.loop().gradient_sync(detail::stage_training_group());  // each rank its shard of every batch
    PaletteTrainer trainer(encoder, catalog, options);
    const auto& held_out = trainer.validation_items().empty() ? trainer.train_items() : trainer.validation_items();

    nlohmann::json out;
    if (writer && !fs::exists(dir / "trainer.ckpt")) {  // the untrained baseline (a resumed run has lost it)
      out["before"] = loss_record_json(trainer.evaluate(held_out));
      auto palettes = encode_items(*encoder, catalog, held_out);
      if (palettes.size(1) > 1) out["before"]["mean_intra_cosine"] = mean_intra_cosine(palettes);
    }
    PaletteTrainResult result = trainer.train();
    if (!writer) return {};
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
    out["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    save_pretrained(*encoder->decoder, dir / "model");
    ctx.write_json("palette_encoder/training.json", out);
    ctx.palette_encoder_trained = true;
    ctx.say(fmt::format("palette encoder trained: {} ({:.1f}s)", result.stop_reason, out["seconds"].get<double>()));
    return {{"palette_encoder", "palette_encoder/model", 1}, {"palette_training", "palette_encoder/training.json", 1}};
  }
};

}  // namespace

std::unique_ptr<Stage> make_palette_stage() { return std::make_unique<PaletteStage>(); }

}  // namespace lamia
