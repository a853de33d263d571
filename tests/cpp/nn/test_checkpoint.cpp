// Hugging Face folders: config.json, single and sharded safetensors, dtype conversion, errors.
#include <catch2/catch.hpp>
#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/nn/checkpoint.hpp>
#include <lamia/nn/safetensors.hpp>

#include <torch/torch.h>

#include <filesystem>
#include <unistd.h>  // getpid

using namespace lamia;
namespace fs = std::filesystem;

namespace {
fs::path checkpoint_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lamia_nn_ckpt_" + std::to_string(::getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
torch::Tensor logits(DecoderImpl& d, const torch::Tensor& ids) {
  DecoderInput in;
  in.input_ids = ids;
  return d.forward(in).logits;
}
}  // namespace

TEST_CASE("checkpoint: HF config round trip", "[nn][checkpoint]") {
  auto o = DecoderOptions(100, 64, 3, 4).ffn_dim(96).word_embed_proj_dim(32).do_layer_norm_before(false).dropout(0.05)
               .pad_token_id(0).tie_word_embeddings(false).max_position_embeddings(128);
  auto dir = checkpoint_dir("config");
  o.to_hf_config(dir / "config.json");
  auto b = DecoderOptions::from_hf_config(dir / "config.json");
  CHECK(b.vocab_size() == 100);
  CHECK(b.hidden_size() == 64);
  CHECK(b.num_layers() == 3);
  CHECK(b.num_heads() == 4);
  CHECK(b.ffn_dim() == 96);
  CHECK(b.word_embed_proj_dim() == 32);
  CHECK_FALSE(b.do_layer_norm_before());
  CHECK(b.dropout() == 0.05);
  CHECK(b.pad_token_id() == 0);
  CHECK_FALSE(b.tie_word_embeddings());
  CHECK(b.max_position_embeddings() == 128);
  CHECK_THROWS_WITH(DecoderOptions::from_hf_config_json(R"({"model_type": "opt", "hidden_size": 8})"),
                    Catch::Contains("vocab_size"));
  CHECK_THROWS_WITH(DecoderOptions::from_hf_config_json(R"({"model_type": "gpt2"})"), Catch::Contains("gpt2"));
}

TEST_CASE("checkpoint: save_pretrained / load_pretrained round trip, single file and sharded", "[nn][checkpoint]") {
  const int64_t shard = GENERATE(0, 20000);
  const bool tie = GENERATE(true, false);
  torch::manual_seed(11);
  Decoder d(DecoderOptions(60, 32, 2, 4).word_embed_proj_dim(16).do_layer_norm_before(false).dropout(0.0)
                .tie_word_embeddings(tie).max_position_embeddings(40));
  d->eval();
  auto dir = checkpoint_dir("rt_" + std::to_string(shard) + (tie ? "_tied" : "_untied"));
  save_pretrained(*d, dir, shard);
  if (shard > 0) {
    CHECK(fs::exists(dir / "model.safetensors.index.json"));
    CHECK_FALSE(fs::exists(dir / "model.safetensors"));
    int shards = 0;
    for (auto& e : fs::directory_iterator(dir)) shards += e.path().extension() == ".safetensors";
    CHECK(shards >= 2);
  } else {
    auto t = load_safetensors(dir / "model.safetensors");
    CHECK(t.count("model.decoder.layers.1.self_attn.out_proj.bias"));
    CHECK(t.count("model.decoder.project_in.weight"));
    CHECK(t.count("lm_head.weight") == (tie ? 0 : 1));
    CHECK(t.count("model.decoder.final_layer_norm.weight") == 0);  // post-LN: none
  }
  auto e = load_pretrained(dir);
  e->eval();
  auto ids = torch::randint(60, {2, 7}, torch::kLong);
  CHECK(torch::equal(logits(*d, ids), logits(*e, ids)));
}

TEST_CASE("checkpoint: fp16 and bf16 weights on disk are converted to the module dtype", "[nn][checkpoint]") {
  const auto dt = GENERATE(torch::kHalf, torch::kBFloat16);
  torch::manual_seed(12);
  Decoder d(DecoderOptions(50, 32, 1, 2).dropout(0.0).max_position_embeddings(16));
  d->eval();
  auto dir = checkpoint_dir(std::string("half_") + c10::toString(dt));
  save_pretrained(*d, dir, 0, dt);
  CHECK(load_safetensors(dir / "model.safetensors").at("model.decoder.embed_tokens.weight").scalar_type() == dt);
  auto e = load_pretrained(dir);
  CHECK(e->dtype() == torch::kFloat);
  auto ids = torch::randint(50, {1, 5}, torch::kLong);
  CHECK(torch::allclose(logits(*d, ids), logits(*e, ids), 0.05, 0.02));
  auto w = d->named_parameters()["layers.0.fc1.weight"];
  CHECK(torch::equal(e->named_parameters()["layers.0.fc1.weight"], w.to(dt).to(torch::kFloat)));
}

TEST_CASE("checkpoint: missing, unexpected and mismatched tensors are named", "[nn][checkpoint]") {
  Decoder d(DecoderOptions(50, 32, 1, 2).max_position_embeddings(16));
  auto sd = hf_state_dict(*d);
  SECTION("missing") {
    sd.erase("model.decoder.layers.0.fc2.bias");
    CHECK_THROWS_WITH(load_hf_state_dict(*d, sd), Catch::Contains("missing tensor model.decoder.layers.0.fc2.bias") &&
                                                      Catch::Contains("[32]"));
  }
  SECTION("unexpected") {
    sd["model.decoder.layers.7.fc2.bias"] = torch::zeros({32});
    CHECK_THROWS_WITH(load_hf_state_dict(*d, sd), Catch::Contains("unexpected tensor model.decoder.layers.7.fc2.bias"));
  }
  SECTION("mismatched") {
    sd["model.decoder.layers.0.fc1.weight"] = torch::zeros({128, 31});
    CHECK_THROWS_WITH(load_hf_state_dict(*d, sd),
                      Catch::Contains("model.decoder.layers.0.fc1.weight: expected shape [128, 32], found [128, 31]"));
  }
  SECTION("old prefix accepted") {
    std::map<std::string, torch::Tensor> old;
    for (auto& [k, v] : sd) old[k.substr(std::string("model.").size())] = v.detach().clone();
    CHECK_NOTHROW(load_hf_state_dict(*d, old));
  }
}

TEST_CASE("checkpoint: a sharded index naming an absent tensor is an error", "[nn][checkpoint]") {
  Decoder d(DecoderOptions(50, 32, 1, 2).max_position_embeddings(16));
  auto dir = checkpoint_dir("badindex");
  save_pretrained(*d, dir, 8000);
  auto text = read_file(dir / "model.safetensors.index.json");
  auto pos = text.find("\"weight_map\": {");
  REQUIRE(pos != std::string::npos);
  std::string first;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("model-00001-of-", 0) == 0) first = e.path().filename().string();
  REQUIRE_FALSE(first.empty());
  text.insert(pos + 15, "\n    \"model.decoder.ghost\": \"" + first + "\",");
  write_text_atomically(dir / "model.safetensors.index.json", text);
  CHECK_THROWS_WITH(load_pretrained(dir), Catch::Contains("model.decoder.ghost"));
}
