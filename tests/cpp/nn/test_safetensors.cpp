// Safetensors: round trips and one test per corruption.
#include <catch2/catch.hpp>
#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/nn/safetensors.hpp>

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>  // getpid

using namespace lamia;
namespace fs = std::filesystem;

namespace {
fs::path tmp_dir() {
  auto d = fs::temp_directory_path() / ("lamia_nn_st_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// A file with the given header JSON and data bytes.
fs::path write_raw(const std::string& name, const std::string& header, const std::string& data,
                   int64_t header_len_override = -1) {
  auto p = tmp_dir() / name;
  std::ofstream out(p, std::ios::binary);
  uint64_t n = header_len_override >= 0 ? uint64_t(header_len_override) : header.size();
  for (int i = 0; i < 8; ++i) out.put(char((n >> (8 * i)) & 0xff));
  out << header << data;
  return p;
}

void check_corrupt(const fs::path& p, const std::string& tensor, const std::string& what) {
  try {
    load_safetensors(p);
    FAIL("expected a ValueError for " << p);
  } catch (const ValueError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(p.string()) != std::string::npos);
    if (!tensor.empty()) CHECK(msg.find("'" + tensor + "'") != std::string::npos);
    CHECK(msg.find(what) != std::string::npos);
  }
}
}  // namespace

TEST_CASE("safetensors round trip keeps dtype, shape, values and metadata", "[nn][safetensors]") {
  const auto dtype = GENERATE(torch::kFloat, torch::kHalf, torch::kBFloat16, torch::kLong, torch::kInt, torch::kBool);
  torch::manual_seed(0);
  std::map<std::string, torch::Tensor> t;
  t["a.weight"] = torch::randn({3, 5}).to(dtype);
  t["b"] = (torch::randn({7}) * 100).to(dtype);
  t["scalar"] = torch::randn({}).to(dtype);
  t["empty"] = torch::randn({0, 4}).to(dtype);
  t["strided"] = torch::randn({4, 6}).t().to(dtype);  // non-contiguous input
  auto p = tmp_dir() / "rt.safetensors";
  save_safetensors(p, t, {{"format", "pt"}, {"note", "hello"}});
  std::map<std::string, std::string> meta;
  auto back = load_safetensors(p, &meta);
  REQUIRE(back.size() == t.size());
  for (auto& [k, v] : t) {
    INFO(k);
    CHECK(back[k].scalar_type() == dtype);
    CHECK(back[k].sizes() == v.sizes());
    CHECK(torch::equal(back[k], v));
  }
  CHECK(meta.at("note") == "hello");
  auto h = read_safetensors_header(p);
  CHECK(h.data_start % 8 == 0);
}

TEST_CASE("safetensors: bf16 and fp16 bytes are the IEEE halves of the floats", "[nn][safetensors]") {
  std::map<std::string, torch::Tensor> t{{"x", torch::tensor({1.0f, -2.0f}).to(torch::kBFloat16)}};
  auto p = tmp_dir() / "bf16.safetensors";
  save_safetensors(p, t);
  auto bytes = read_file(p);
  auto h = read_safetensors_header(p);
  // 1.0 = 0x3F80, -2.0 = 0xC000 (little-endian).
  CHECK((unsigned char)bytes[h.data_start + 1] == 0x3F);
  CHECK((unsigned char)bytes[h.data_start + 0] == 0x80);
  CHECK((unsigned char)bytes[h.data_start + 3] == 0xC0);
}

TEST_CASE("safetensors corrupted: shorter than 8 bytes", "[nn][safetensors][corrupt]") {
  auto p = tmp_dir() / "short.safetensors";
  std::ofstream(p, std::ios::binary) << "abc";
  check_corrupt(p, "", "shorter than the 8-byte header size");
}

TEST_CASE("safetensors corrupted: truncated data", "[nn][safetensors][corrupt]") {
  std::map<std::string, torch::Tensor> t{{"w", torch::randn({4, 4})}};
  auto p = tmp_dir() / "trunc.safetensors";
  save_safetensors(p, t);
  fs::resize_file(p, fs::file_size(p) - 10);
  check_corrupt(p, "w", "out of range");
}

TEST_CASE("safetensors corrupted: header size past the end of the file", "[nn][safetensors][corrupt]") {
  auto p = write_raw("hdrlen.safetensors", "{}", "", 4096);
  check_corrupt(p, "", "runs past the end of the file");
}

TEST_CASE("safetensors corrupted: bad JSON", "[nn][safetensors][corrupt]") {
  auto p = write_raw("json.safetensors", R"({"w": {"dtype": "F32", "shape": [1], )", "");
  check_corrupt(p, "", "not valid JSON");
}

TEST_CASE("safetensors corrupted: offsets out of range", "[nn][safetensors][corrupt]") {
  auto p = write_raw("range.safetensors", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                     std::string(12, '\0'));
  check_corrupt(p, "v", "out of range");
}

TEST_CASE("safetensors corrupted: overlapping tensors", "[nn][safetensors][corrupt]") {
  auto p = write_raw("overlap.safetensors", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                     std::string(12, '\0'));
  check_corrupt(p, "b", "overlap");
}

TEST_CASE("safetensors corrupted: byte size does not match shape and dtype", "[nn][safetensors][corrupt]") {
  auto p = write_raw("size.safetensors", R"({"w":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0'));
  check_corrupt(p, "w", "expected 6 bytes");
}

TEST_CASE("safetensors corrupted: unknown dtype", "[nn][safetensors][corrupt]") {
  auto p = write_raw("dtype.safetensors", R"({"w":{"dtype":"F8_E9","shape":[1],"data_offsets":[0,1]}})", std::string(1, '\0'));
  check_corrupt(p, "w", "unsupported dtype");
}

TEST_CASE("safetensors corrupted: negative or non-integer shape", "[nn][safetensors][corrupt]") {
  auto p = write_raw("shape.safetensors", R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, '\0'));
  check_corrupt(p, "w", "negative");
}

TEST_CASE("safetensors corrupted: begin after end", "[nn][safetensors][corrupt]") {
  auto p = write_raw("order.safetensors", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", std::string(4, '\0'));
  check_corrupt(p, "w", "begin > end");
}

TEST_CASE("safetensors corrupted: a hole between tensors", "[nn][safetensors][corrupt]") {
  auto p = write_raw("hole.safetensors", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                     std::string(12, '\0'));
  check_corrupt(p, "b", "hole");
}

TEST_CASE("safetensors corrupted: metadata values must be strings", "[nn][safetensors][corrupt]") {
  auto p = write_raw("meta.safetensors", R"({"__metadata__":{"n":3}})", "");
  check_corrupt(p, "", "__metadata__");
}

TEST_CASE("safetensors: a missing file is an IOError", "[nn][safetensors]") {
  CHECK_THROWS_AS(load_safetensors(tmp_dir() / "nope.safetensors"), IOError);
}

TEST_CASE("safetensors: unsupported dtypes and reserved names are rejected on write", "[nn][safetensors]") {
  auto p = tmp_dir() / "bad_write.safetensors";
  CHECK_THROWS_AS(save_safetensors(p, {{"c", torch::zeros({2}, torch::kComplexFloat)}}), ValueError);
  CHECK_THROWS_AS(save_safetensors(p, {{"__metadata__", torch::zeros({2})}}), ValueError);
  CHECK_FALSE(fs::exists(p));
}
