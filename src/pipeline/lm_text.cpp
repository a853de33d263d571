#include "lm_text.hpp"

#include <lamia/nn/decoder.hpp>
#include <lamia/text/tokenizer.hpp>

namespace lamia {

LmText lm_text(PipelineContext& ctx) {
  const auto& model = ctx.config.recommend.model;
  const auto tokenizer = load_tokenizer(model.pretrained.empty() ? ctx.path("tokenizer") : model.pretrained);
  LmText out;
  out.text_vocab_size = model.pretrained.empty()
                            ? std::int64_t(tokenizer->vocab_size())
                            : DecoderOptions::from_hf_config(model.pretrained / "config.json").vocab_size();
  const auto special = tokenizer->special_tokens();
  out.bos = special.bos ? *special.bos : special.eos ? *special.eos : 0;
  out.pad = special.pad ? *special.pad : out.bos;
  const auto& catalog = ctx.sequences().catalog;
  out.item_text.resize(catalog.size());
  for (std::size_t i = 0; i < catalog.size(); ++i) {
    std::string text;
    for (const auto& v : catalog.values(ItemIndex(i))) {
      if (v.empty()) continue;
      if (!text.empty()) text += ' ';
      text += v;
    }
    for (auto t : tokenizer->encode(text)) out.item_text[i].push_back(t);
  }
  return out;
}

ItemTextTokens history_item_texts(PipelineContext& ctx) {
  if (ctx.config.recommend.model.item_text_tokens == 0) return {};
  return lm_text(ctx).item_text;
}

}  // namespace lamia
