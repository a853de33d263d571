#pragma once
// The LM backbone's text side of a run, shared by the recommend stage (training), the evaluate stage
// and `lamia inspect --user` (the test histories' item text prompts).
#include "context.hpp"

#include <lamia/recommend/generative_recommender.hpp>

#include <cstdint>

namespace lamia {

/// The vocabulary after the run's tokenizer (a checkpoint's own rows when recommend.model.pretrained is
/// set: its embedding may have more rows than the tokenizer has tokens), and every item of the
/// sequences' catalog as that tokenizer's tokens (its attribute values, space-joined).
struct LmText {
  std::int64_t text_vocab_size = 0, bos = 0, pad = 0;
  ItemTextTokens item_text;
};
LmText lm_text(PipelineContext& ctx);

/// The item texts of the config's history prompts: lm_text(ctx).item_text when
/// recommend.model.item_text_tokens > 0, else none. check_item_text_prompts(rec,
/// config's item_text_tokens, these) then says whether a trained recommender reads such histories.
ItemTextTokens history_item_texts(PipelineContext& ctx);

}  // namespace lamia
