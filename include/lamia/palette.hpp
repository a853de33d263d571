#pragma once
// The palette encoder: input blocks, the hierarchical mask, losses, the encoder, training,
// evaluation and palette files.
#include <lamia/palette/attention_mask.hpp>
#include <lamia/palette/blocks.hpp>
#include <lamia/palette/evaluation.hpp>
#include <lamia/palette/losses.hpp>
#include <lamia/palette/palette_encoder.hpp>
#include <lamia/palette/palette_file.hpp>
#include <lamia/palette/setup.hpp>
#include <lamia/palette/trainer.hpp>
