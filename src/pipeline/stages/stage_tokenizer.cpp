// Stage "tokenizer": a byte-level BPE trained on the catalog's text (or the pretrained model's own
// tokenizer), saved as a Hugging Face tokenizer folder.
#include "../context.hpp"

#include <lamia/pipeline/stage.hpp>
#include <lamia/text/bpe_trainer.hpp>
#include <lamia/text/byte_level_bpe.hpp>
#include <lamia/text/tokenizer.hpp>

#include <fmt/format.h>

namespace lamia {
namespace {

class TokenizerStage : public Stage {
 public:
  std::string name() const override { return "tokenizer"; }
  std::vector<std::string> inputs(const PipelineConfig&) const override { return {"dataset"}; }
  nlohmann::json config_section(const PipelineConfig& config) const override {
    return {{"vocab_size", config.tokenizer.vocab_size}, {"pretrained", config.model.pretrained.string()}};
  }
  std::vector<ArtifactSpec> run(PipelineContext& ctx) override {
    const auto& catalog = ctx.dataset().dataset.catalog;
    std::unique_ptr<Tokenizer> tokenizer;
    if (ctx.config.model.pretrained.empty()) {
      BpeTrainerOptions bpe;
      bpe.vocab_size = static_cast<std::size_t>(ctx.config.tokenizer.vocab_size);
      tokenizer = std::make_unique<ByteLevelBpeTokenizer>(train_bpe(catalog, bpe));
    } else {
      tokenizer = load_tokenizer(ctx.config.model.pretrained);
    }
    tokenizer->save(ctx.path("tokenizer"));
    ctx.say(fmt::format("tokenizer: {} tokens", tokenizer->vocab_size()));
    return {{"tokenizer", "tokenizer", 1}};
  }
};

}  // namespace

std::unique_ptr<Stage> make_tokenizer_stage() { return std::make_unique<TokenizerStage>(); }

}  // namespace lamia
