// Stage "quantize": the three semantic tokenizers on the same items (LAMIA's per-position PCA +
// K-Means on the palettes, residual K-Means and RQ-VAE on the embeddings), their tables and
// diagnostics (diagnostics.json: each table's codes, and the float palettes themselves under
// "palettes", probed against the dataset's labels when it has them).
#include "../context.hpp"

#include <lamia/palette/evaluation.hpp>
#include <lamia/palette/palette_file.hpp>
#include <lamia/pipeline/stage.hpp>
#include <lamia/pipeline/tokenizer_comparison.hpp>
#include <lamia/quantize/palette_diagnostics.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>

namespace lamia {
namespace {

class QuantizeStage : public Stage {
 public:
  std::string name() const override { return "quantize"; }
  std::vector<std::string> inputs(const PipelineConfig&) const override {
    return {"dataset", "palette_training", "palettes", "embeddings"};
  }
  nlohmann::json config_section(const PipelineConfig& config) const override {
    nlohmann::json j;
    to_json(j, config);
    return j.at("quantize");
  }
  std::vector<ArtifactSpec> run(PipelineContext& ctx) override {
    const auto t0 = std::chrono::steady_clock::now();
    const auto& qc = ctx.config.quantize;
    auto& data = ctx.dataset();
    torch::Tensor palettes = load_palettes(ctx.path("palettes.bin")).palettes;
    torch::Tensor embeddings = load_palettes(ctx.path("embeddings.bin")).palettes.squeeze(1).contiguous();
    // A codebook larger than the catalog is cut to the number of items (reduce_k_when_few_items, and
    // always for RQ-VAE): said here and recorded, never silent.
    nlohmann::json adjustments = nlohmann::json::array();
    const auto n = palettes.size(0);
    auto note_cut = [&](const char* key, std::int64_t k, bool allowed) {
      if (k <= n || !allowed) return;  // not allowed: the quantizer throws, naming the option
      adjustments.push_back(fmt::format("quantize.{} = {} is more than the {} items: {} codes are used", key, k, n, n));
      ctx.say(adjustments.back().get<std::string>());
    };
    note_cut("lamia.kmeans.num_codes", qc.lamia.kmeans.num_codes, qc.lamia.reduce_k_when_few_items);
    note_cut("residual_kmeans.kmeans.num_codes", qc.residual_kmeans.kmeans.num_codes,
             qc.residual_kmeans.reduce_k_when_few_items);
    note_cut("rq_vae.num_codes", qc.rq_vae.num_codes(), true);
    auto results = compare_tokenizers(palettes, embeddings, qc, data.labels, data.label_names);
    for (const auto& t : results) {
      t.table.save(ctx.path("semantic_ids/" + t.name + ".bin"));
      t.table.dump(ctx.path("semantic_ids/" + t.name + ".txt"));
    }
    auto diagnostics = comparison_json(results);
    diagnostics["dataset"] = ctx.read_json("dataset.json");
    auto training = ctx.read_json("palette_encoder/training.json");
    training["mean_intra_cosine"] = palettes.size(1) > 1 ? mean_intra_cosine(palettes) : 1.0;
    diagnostics["palette_encoder"] = training;
    if (!data.label_names.empty()) diagnostics["labels"] = data.label_names;
    diagnostics["palettes"] = diagnose_palettes(palettes, data.labels, PaletteDiagnosticsOptions{}, data.label_names);
    if (!adjustments.empty()) diagnostics["adjustments"] = adjustments;
    ctx.write_json("diagnostics.json", diagnostics);
    for (auto& t : results) ctx.set_table(t.name, std::move(t.table));
    ctx.say(fmt::format("tokenizers fitted ({:.1f}s)",
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
    return {{"semantic_ids", "semantic_ids", int(SemanticIdTable::kFormatVersion)}, {"diagnostics", "diagnostics.json", 1}};
  }
};

}  // namespace

std::unique_ptr<Stage> make_quantize_stage() { return std::make_unique<QuantizeStage>(); }

}  // namespace lamia
