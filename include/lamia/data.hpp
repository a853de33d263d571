#pragma once
// The data layer: catalogs, interactions, loaders, sequences, statistics.
#include <lamia/data/catalog.hpp>
#include <lamia/data/interactions.hpp>
#include <lamia/data/sequences.hpp>
#include <lamia/data/synthetic.hpp>
#include <lamia/data/loaders.hpp>
#include <lamia/data/statistics.hpp>
