#pragma once
// The data layer: catalogs, interactions, loaders, sequences, statistics.
#include <lamia/data/catalog.hpp>
#include <lamia/data/interactions.hpp>
#include <lamia/data/sequences.hpp>
