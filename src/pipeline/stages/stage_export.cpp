// Stage "export": the palettes of every item (n x L x D, streamed to palettes.bin) and one
// mean-pooled embedding per item from the same model for the baselines (embeddings.bin). Split over
// processes with `--shard i/n` and `--merge`, and over the ranks under torchrun (palette_shards.cpp).
#include "../context.hpp"
#include "distributed_stages.hpp"
#include "shards.hpp"

#include <lamia/palette/evaluation.hpp>
#include <lamia/palette/palette_file.hpp>
#include <lamia/pipeline/stage.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>

namespace lamia {
namespace {

class ExportStage : public Stage {
 public:
  std::string name() const override { return "export"; }
  std::vector<std::string> inputs(const PipelineConfig&) const override {
    return {"dataset", "tokenizer", "palette_encoder"};
  }
  nlohmann::json config_section(const PipelineConfig&) const override { return nlohmann::json::object(); }
  std::vector<ArtifactSpec> run(PipelineContext& ctx) override {
    if (const auto& group = detail::stage_training_group()) {  // torchrun: each rank its part of the items
      detail::begin_distributed_stage(name());
      return export_palettes_on_group(ctx, *group);
    }
    const auto t0 = std::chrono::steady_clock::now();
    ctx.load_trained_palette_encoder();
    auto& setup = ctx.palette_setup();
    const auto n = export_palettes(*setup.encoder, setup.catalog, ctx.path("palettes.bin"), kExportBatchSize);
    torch::Tensor embeddings = mean_pooled_embeddings(*setup.encoder, setup.catalog, kExportBatchSize);
    const auto& catalog = ctx.dataset().dataset.catalog;
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < catalog.size(); ++i) ids.push_back(catalog.id(ItemIndex(i)));
    save_palettes(ctx.path("embeddings.bin"), ids, embeddings.unsqueeze(1));
    ctx.say(fmt::format("palettes exported: {} items, embeddings [{}, {}] ({:.1f}s)", n, embeddings.size(0),
                        embeddings.size(1), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
    return {{"palettes", "palettes.bin", 1}, {"embeddings", "embeddings.bin", 1}};
  }
  bool shardable() const override { return true; }
  void run_shard(PipelineContext& ctx, const ShardSpec& shard, const StageInputs& inputs) override {
    export_palette_shard(ctx, shard, inputs);
  }
  std::vector<ArtifactSpec> merge_shards(PipelineContext& ctx, const StageInputs& inputs) override {
    return merge_palette_shards(ctx, inputs);
  }
};

}  // namespace

std::unique_ptr<Stage> make_export_stage() { return std::make_unique<ExportStage>(); }

}  // namespace lamia
