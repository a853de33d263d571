#pragma once
// The pipeline that `lamia run` runs: its configuration, its stages and their manifest.
#include <lamia/pipeline/manifest.hpp>
#include <lamia/pipeline/metrics_table.hpp>
#include <lamia/pipeline/pipeline.hpp>
#include <lamia/pipeline/pipeline_config.hpp>
#include <lamia/pipeline/stage.hpp>
#include <lamia/pipeline/tokenizer_comparison.hpp>
