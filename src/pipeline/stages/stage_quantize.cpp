// Stage "quantize": the three semantic tokenizers on the same items (LAMIA's per-position PCA +
// K-Means on the palettes, residual K-Means and RQ-VAE on the embeddings), their tables and
// diagnostics (diagnostics.json: each table's codes, and the float palettes themselves under
// "palettes", probed against the dataset's labels when it has them).
// palettes.bin is streamed (PaletteFileReader, one chunk in memory at a time): LAMIA's quantizer
// fits and codes from it, diagnose_palettes reads it in chunks of 1,024 items and its probe's items
// one at a time, and the mean intra cosine is taken over chunks of kIntraChunk items (one chunk,
// the same value as over the whole tensor, up to kIntraChunk items). The embeddings (n x E) are
// loaded whole. RQ-VAE's training checkpoints to checkpoints/quantize/rq_vae.ckpt: a killed stage
// resumes there (the K-Means quantizers are refitted, deterministically, from their seeds).
#include "../context.hpp"

#include <lamia/palette/evaluation.hpp>
#include <lamia/palette/palette_file.hpp>
#include <lamia/pipeline/stage.hpp>
#include <lamia/pipeline/tokenizer_comparison.hpp>
#include <lamia/quantize/palette_diagnostics.hpp>
#include <lamia/quantize/palette_source.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

namespace lamia {
namespace {
namespace fs = std::filesystem;

constexpr std::int64_t kIntraChunk = 16384;  // items: 16384 x L x D doubles (512 MB at L = 4, D = 1024)

// mean_intra_cosine over the file: the item-weighted mean of the chunks' means (one chunk: its value).
double chunked_intra_cosine(const PaletteFileReader& reader) {
  const std::int64_t n = reader.num_items();
  if (n <= kIntraChunk) return mean_intra_cosine(reader.read(0, n));
  double sum = 0;
  for (std::int64_t b = 0; b < n; b += kIntraChunk) {
    const auto e = std::min(n, b + kIntraChunk);
    sum += mean_intra_cosine(reader.read(b, e)) * static_cast<double>(e - b);
  }
  return sum / static_cast<double>(n);
}

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
  // RQ-VAE's training checkpoint (written at every epoch end): an interrupted stage resumes from it.
  std::vector<std::string> checkpoints(const PipelineConfig&) const override { return {"checkpoints/quantize"}; }
  std::vector<ArtifactSpec> run(PipelineContext& ctx) override {
    const auto t0 = std::chrono::steady_clock::now();
    auto qc = ctx.config.quantize;
    fs::create_directories(ctx.path("checkpoints/quantize"));
    qc.rq_vae_train.checkpoint_path = ctx.path("checkpoints/quantize/rq_vae.ckpt").string();
    auto& data = ctx.dataset();
    const PaletteFileReader reader(ctx.path("palettes.bin"));  // crc checked once, then streamed
    const PaletteSource palettes = PaletteSource::from_reader(reader);
    torch::Tensor embeddings = load_palettes(ctx.path("embeddings.bin")).palettes.squeeze(1).contiguous();
    // A codebook larger than the catalog is cut to the number of items (reduce_k_when_few_items, and
    // always for RQ-VAE): said here and recorded, never silent.
    nlohmann::json adjustments = nlohmann::json::array();
    const auto n = palettes.num_items;
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
    training["mean_intra_cosine"] = palettes.num_positions > 1 ? chunked_intra_cosine(reader) : 1.0;
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
