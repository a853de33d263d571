#pragma once
// Loaders for the native formats of the recommendation datasets lamia reads:
// MIND, Amazon (LC-Rec form and raw review/metadata form), H&M, MovieLens,
// a generic JSON-lines / CSV form with a field mapping, and the synthetic catalog.
//
// Every loader returns a Dataset (Catalog + Interactions). Bad input never passes
// silently: by default a malformed row throws lamia::ParseError whose message starts
// with `file:line: field 'x': `; with LoadOptions::lenient the row is skipped and the
// problem is counted in a LoadReport. Problems that leave nothing to load (a missing
// file or column, an empty file) throw in both modes.
//
// Example:
//   lamia::LoadReport report;
//   auto ds = lamia::load_dataset("movielens", "data/ml-latest-small", {}, report);
//
// Bad input (limits, what is an error): docs/data.md, "Bad input"; the limits are named in
// include/lamia/data/loaders/limits.hpp.
#include <lamia/data/loaders/limits.hpp>
#include <lamia/data/loaders/load_dataset.hpp>
#include <lamia/data/loaders/load_options.hpp>
#include <lamia/data/loaders/load_report.hpp>
