#pragma once
// The quantize layer: PCA + K-Means palette quantizer, residual K-Means and
// RQ-VAE baselines, TF-IDF item embeddings, diagnostics (the semantic-ID table is lamia/ids.hpp).
#include <lamia/ids.hpp>
#include <lamia/quantize/diagnostics.hpp>
#include <lamia/quantize/kmeans.hpp>
#include <lamia/quantize/mutual_info.hpp>
#include <lamia/quantize/palette_diagnostics.hpp>
#include <lamia/quantize/palette_quantizer.hpp>
#include <lamia/quantize/palette_source.hpp>
#include <lamia/quantize/pca.hpp>
#include <lamia/quantize/residual_kmeans.hpp>
#include <lamia/quantize/rq_vae.hpp>
#include <lamia/quantize/text_embedding.hpp>
