// Hugging Face folders whose config.json claims a model the weights cannot hold, found while writing
// fuzz_hf_folder (fuzz/, docs/fuzzing.md; its first 60 s did not reach them): each allocated the
// decoder before reading the weights (out of memory at 2 GiB), escaped as a raw c10::Error, or was
// undefined behaviour. Each must now be a ValueError before anything is allocated.
#include <lamia/core/errors.hpp>
#include <lamia/nn/checkpoint.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "../temp_dir.hpp"

#include <string>

using namespace lamia;
using Catch::Matchers::Contains;

namespace {

// A folder with this config.json and a small model.safetensors (a valid one of a tiny model).
void write_folder(const lamia::testing::TempDir& d, const std::string& config) {
  Decoder tiny(DecoderOptions(8, 4, 1, 2).ffn_dim(8).max_position_embeddings(4).dropout(0));
  save_pretrained(*tiny, d.path);
  d.write("config.json", config);
}

std::string opt_config(const std::string& fields) {
  return R"({"model_type": "opt", "vocab_size": 8, "hidden_size": 4, "num_hidden_layers": 1,
             "num_attention_heads": 2, "ffn_dim": 8, "max_position_embeddings": 4, )" + fields + "}";
}

}  // namespace

TEST_CASE("fuzz: a config.json larger than its weights is refused before the decoder is allocated",
          "[nn][checkpoint][fuzz]") {
  const lamia::testing::TempDir d;
  write_folder(d, opt_config(R"("pad_token_id": 1, "dropout": 0.0)"));
  CHECK(load_pretrained(d.path)->options().vocab_size() == 8);  // the folder as written loads
  // 10^8 tokens x 64: 25.6 GB of float32 allocated, then the weights found missing.
  write_folder(d, opt_config(R"("vocab_size": 100000000, "hidden_size": 64, "num_attention_heads": 1)"));
  CHECK_THROWS_WITH(load_pretrained(d.path), Contains("config.json describes a model of at least") &&
                                                 Contains("more than the folder's"));
  // 10^8 layers of a 4-wide model: ran out of memory building the layer modules.
  write_folder(d, opt_config(R"("num_hidden_layers": 100000000)"));
  CHECK_THROWS_AS(load_pretrained(d.path), ValueError);
  // Without weight files, the missing files are named (before, after allocating the decoder).
  const lamia::testing::TempDir empty;
  empty.write("config.json", opt_config(R"("vocab_size": 100000000)"));
  CHECK_THROWS_AS(load_pretrained(empty.path), IOError);
}

TEST_CASE("fuzz: config.json sizes at or above 2^31 are errors, not overflows", "[nn][checkpoint][fuzz]") {
  const lamia::testing::TempDir d;
  // max_position_embeddings + 2 overflowed int64 (UBSan: signed integer overflow).
  write_folder(d, opt_config(R"("max_position_embeddings": 9223372036854775807)"));
  CHECK_THROWS_WITH(load_pretrained(d.path), Contains("max_position_embeddings must be < 2^31"));
  // 2^62 x 2^62 escaped as c10::Error ("Storage size calculation overflowed").
  write_folder(d, opt_config(R"("vocab_size": 4611686018427387904, "hidden_size": 4611686018427387904,
                                "num_attention_heads": 1)"));
  CHECK_THROWS_AS(load_pretrained(d.path), ValueError);
  CHECK_THROWS_WITH(DecoderOptions::from_hf_config(d.path / "config.json"), Contains("vocab_size must be < 2^31"));
}
