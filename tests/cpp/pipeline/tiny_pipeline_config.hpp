#pragma once
// The pipeline tests' run: small enough for a test (a few hundred items, a one-layer model, a few steps).
#include <lamia/pipeline/pipeline_config.hpp>

namespace lamia::testing {

inline PipelineConfig tiny_pipeline_config() {
  PipelineConfig c;
  c.dataset.synthetic.num_items = 300;
  c.dataset.synthetic.num_users = 50;
  c.tokenizer.vocab_size = 400;
  c.model.scratch.hidden_size = 32;
  c.model.scratch.num_layers = 1;
  c.model.scratch.num_heads = 2;
  c.model.scratch.ffn_dim = 64;
  c.palette.trainer.batch_size(32).loop().epochs(1).max_steps(8);
  c.palette.encoder.attribute_token_budget(16).answer_token_budget(8);
  c.quantize.lamia.pca_dim = 8;
  c.quantize.lamia.kmeans.num_codes = 16;
  c.quantize.residual_kmeans.kmeans.num_codes = 16;
  c.quantize.rq_vae.num_codes(16);
  c.quantize.rq_vae_train.max_epochs = 5;
  c.recommend.model.hidden_size = 16;
  c.recommend.model.num_layers = 1;
  c.recommend.model.num_heads = 2;
  c.recommend.epochs = 1;
  c.recommend.tokenizers = {"lamia", "oracle"};
  c.recommend.baselines = {"popularity", "transition", "sasrec-ce"};
  c.recommend.sasrec.hidden_size = 16;
  c.recommend.sasrec.num_layers = 1;
  c.recommend.sasrec_epochs = 1;
  c.evaluate.max_users = 20;
  c.evaluate.exact = true;  // off in the default (its time budget)
  c.evaluate.exact_users = 15;
  c.evaluate.beam_width = 10;
  c.evaluate.top_k = 10;
  c.progress = false;
  return c;
}

}  // namespace lamia::testing
