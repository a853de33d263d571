#pragma once
// Everything in lamia, in pipeline order.
#include <lamia/core/errors.hpp>
#include <lamia/data.hpp>
#include <lamia/text.hpp>
#include <lamia/nn.hpp>
#include <lamia/distributed.hpp>  // declarations only; lamia::distributed is built where LAMIA_WITH_C10D found c10d
#include <lamia/palette.hpp>
#include <lamia/ids.hpp>
#include <lamia/quantize.hpp>
#include <lamia/evaluate.hpp>
#include <lamia/recommend.hpp>
#include <lamia/pipeline.hpp>
