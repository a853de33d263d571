// libFuzzer target: a Hugging Face model folder as load_pretrained reads it: config.json (the
// architecture, DecoderOptions::from_hf_config) and the weights it describes. Input layout:
// config.json SEP the weights (fuzz_hf.hpp's write_weights: model.safetensors, or the index SEP its
// shards). A folder that loads must give a decoder with config.json's options.
#include "fuzz_hf.hpp"

#include <optional>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  lamia::fuzz::init_hf_target(/*with_config=*/true);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lamia::fuzz;
  const auto dir = scratch().fresh_dir();
  auto parts = split(data, size, 16);
  write_file(dir / "config.json", parts[0]);
  write_weights(dir, {parts.begin() + 1, parts.end()});
  std::optional<lamia::Decoder> d;
  expect_clean([&] { d = lamia::load_pretrained(dir); });
  if (!d) return 0;
  const auto o = lamia::DecoderOptions::from_hf_config(dir / "config.json");
  if ((*d)->options().vocab_size() != o.vocab_size() || (*d)->options().hidden_size() != o.hidden_size() ||
      (*d)->options().num_layers() != o.num_layers())
    fail("the loaded decoder does not have config.json's options");
  return 0;
}
