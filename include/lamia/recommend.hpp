#pragma once
// The recommend layer: code tokens, the generative recommender over semantic IDs, the trie of valid
// IDs on the model's device, composable item constraints, batched beam search with the KV cache,
// exact full-catalog scoring, and the SASRec baseline. Two recommender backbones: code tokens only,
// and the language model with the code tokens after its text vocabulary (lm_backbone.hpp).
#include <lamia/ids.hpp>
#include <lamia/recommend/beam_search.hpp>
#include <lamia/recommend/constraints.hpp>
#include <lamia/recommend/exact_scoring.hpp>
#include <lamia/recommend/generative_recommender.hpp>
#include <lamia/recommend/lm_backbone.hpp>
#include <lamia/recommend/prod_score.hpp>
#include <lamia/recommend/sasrec.hpp>
