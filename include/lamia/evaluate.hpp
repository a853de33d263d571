#pragma once
// Evaluation: ranking metrics, popularity groups and the non-neural baselines (no torch).
#include <lamia/evaluate/metrics.hpp>
#include <lamia/evaluate/baselines.hpp>
