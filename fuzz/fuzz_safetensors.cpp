// libFuzzer target: a safetensors file (include/lamia/nn/safetensors.hpp), read by
// read_safetensors_header and load_safetensors. A file that loads must give the tensors its header
// describes, and save + load must give the same names, shapes, dtypes, bytes and metadata.
#include "fuzz_torch.hpp"

#include <lamia/nn/safetensors.hpp>

#include <map>
#include <optional>

namespace {

using namespace lamia::fuzz;
using Tensors = std::map<std::string, torch::Tensor>;

void check_same(const Tensors& a, const Tensors& b) {
  if (a.size() != b.size()) fail("save + load changed the number of tensors");
  for (const auto& [name, t] : a) {
    const auto it = b.find(name);
    if (it == b.end()) fail("save + load lost a tensor");
    if (it->second.sizes() != t.sizes() || it->second.scalar_type() != t.scalar_type() ||
        tensor_bytes(it->second) != tensor_bytes(t))
      fail("save + load changed tensor '" + name + "'");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  init_torch_target([](SeedWriter& seeds, const fs::path& dir) {
    const auto path = dir / "model.safetensors";
    auto add = [&](const Tensors& tensors, const std::map<std::string, std::string>& meta) {
      lamia::save_safetensors(path, tensors, meta);
      seeds.add({file_bytes(path)});
    };
    torch::manual_seed(0);
    add({}, {});
    add({{"w", torch::randn({2, 3})}}, {{"format", "pt"}});
    add({{"a.weight", torch::randn({4}).to(torch::kHalf)},
         {"b", torch::randn({2, 2}).to(torch::kBFloat16)},
         {"c", torch::arange(6, torch::kInt64).reshape({3, 2})},
         {"d", torch::tensor({true, false, true})},
         {"e", torch::zeros({0, 5})},
         {"f", torch::tensor(3.5, torch::kDouble)}},
        {{"format", "pt"}, {"note", "x"}});
    add({{"i8", torch::tensor({-1, 2}, torch::kInt8)}, {"u8", torch::tensor({255}, torch::kUInt8)},
         {"i16", torch::tensor({7}, torch::kInt16)}, {"i32", torch::tensor({-7}, torch::kInt32)}},
        {});
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto dir = scratch().fresh_dir();
  const auto path = dir / "model.safetensors";
  write_file(path, std::string_view(reinterpret_cast<const char*>(data), size));
  std::optional<lamia::SafetensorsHeader> header;
  expect_clean([&] { header = lamia::read_safetensors_header(path); });
  std::map<std::string, std::string> meta;
  std::optional<Tensors> tensors;
  expect_clean([&] { tensors = lamia::load_safetensors(path, &meta); });
  if (header.has_value() != tensors.has_value()) fail("the header reads but the file does not, or the reverse");
  if (!tensors) return 0;
  if (header->entries.size() != tensors->size() || header->metadata != meta) fail("the header and the tensors differ");
  for (const auto& e : header->entries) {
    const auto& t = tensors->at(e.name);
    if (t.sizes() != torch::IntArrayRef(e.shape) || t.scalar_type() != e.dtype || !t.device().is_cpu())
      fail("tensor '" + e.name + "' does not have its header's shape and dtype");
  }
  const auto saved = scratch().fresh_dir("saved") / "model.safetensors";
  lamia::save_safetensors(saved, *tensors, meta);
  std::map<std::string, std::string> meta2;
  check_same(*tensors, lamia::load_safetensors(saved, &meta2));
  if (meta2 != meta) fail("save + load changed the metadata");
  return 0;
}
