#pragma once
// The text component: tokenizers (byte-level BPE, its trainer, HF loading).
#include <lamia/text/bpe_trainer.hpp>
#include <lamia/text/byte_level_bpe.hpp>
#include <lamia/text/pretokenizer.hpp>
#include <lamia/text/tokenizer.hpp>
