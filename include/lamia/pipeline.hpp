#pragma once
// The pipeline that `lamia run` runs, and its configuration.
#include <lamia/pipeline/pipeline.hpp>
#include <lamia/pipeline/pipeline_config.hpp>
#include <lamia/pipeline/tokenizer_comparison.hpp>
