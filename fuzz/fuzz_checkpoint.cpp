// libFuzzer target: the weights of a Hugging Face model folder (model.safetensors, or
// model.safetensors.index.json and its shards), loaded by load_pretrained_weights into small fixed
// decoders (tied and untied head). Input layout: fuzz_hf.hpp's write_weights.
#include "fuzz_hf.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  lamia::fuzz::init_hf_target(/*with_config=*/false);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lamia::fuzz;
  static lamia::Decoder decoders[] = {lamia::Decoder(tiny_decoder(true)), lamia::Decoder(tiny_decoder(false))};
  const auto dir = scratch().fresh_dir();
  write_weights(dir, split(data, size, 16));
  for (auto& d : decoders) expect_clean([&] { lamia::load_pretrained_weights(*d, dir); });
  return 0;
}
