#pragma once
// The nn component: the OPT decoder LM, LoRA, safetensors and Hugging Face checkpoints.
#include <lamia/nn/checkpoint.hpp>
#include <lamia/nn/decoder.hpp>
#include <lamia/nn/kernel_policy.hpp>
#include <lamia/nn/lora.hpp>
#include <lamia/nn/optimizer.hpp>
#include <lamia/nn/safetensors.hpp>
#include <lamia/nn/training_loop.hpp>
