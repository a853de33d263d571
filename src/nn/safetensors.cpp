#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/nn/safetensors.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <ostream>

namespace lamia {
namespace fs = std::filesystem;

namespace {
static_assert(sizeof(uint64_t) == 8, "");
constexpr uint64_t kMaxHeader = 100u * 1024u * 1024u;  // as the reference implementation

struct DtypeInfo {
  const char* name;
  torch::Dtype dtype;
};
const DtypeInfo kDtypes[] = {{"F32", torch::kFloat},  {"F16", torch::kHalf},   {"BF16", torch::kBFloat16},
                             {"F64", torch::kDouble}, {"I64", torch::kLong},   {"I32", torch::kInt},
                             {"I16", torch::kShort},  {"I8", torch::kChar},    {"U8", torch::kByte},
                             {"BOOL", torch::kBool}};

bool little_endian() {
  const uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

[[noreturn]] void bad(const fs::path& path, const std::string& tensor, const std::string& what) {
  if (tensor.empty()) throw ValueError(fmt::format("{}: corrupted safetensors file: {}", path.string(), what));
  throw ValueError(fmt::format("{}: corrupted safetensors file: tensor '{}': {}", path.string(), tensor, what));
}
}  // namespace

std::string safetensors_dtype_name(torch::Dtype dtype) {
  for (const auto& d : kDtypes)
    if (d.dtype == dtype) return d.name;
  throw ValueError(fmt::format("safetensors: dtype {} is not supported", c10::toString(dtype)));
}

SafetensorsHeader read_safetensors_header(const fs::path& path) {
  TORCH_INTERNAL_ASSERT(little_endian(), "safetensors I/O assumes a little-endian host");
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw IOError(path.string() + ": no such file (expected a safetensors file)");
  const uint64_t file_size = fs::file_size(path, ec);
  if (ec) throw IOError("cannot stat " + path.string() + ": " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError("cannot open " + path.string());
  if (file_size < 8) bad(path, "", fmt::format("file has {} bytes, shorter than the 8-byte header size", file_size));
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  if (!in) bad(path, "", "cannot read the header size");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  if (n > kMaxHeader) bad(path, "", fmt::format("header size {} exceeds the limit {}", n, kMaxHeader));
  if (n + 8 > file_size)
    bad(path, "", fmt::format("header size {} runs past the end of the file ({} bytes): truncated?", n, file_size));
  std::string text(n, '\0');
  in.read(text.data(), std::streamsize(n));
  if (!in) bad(path, "", "cannot read the header");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    bad(path, "", std::string("header is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) bad(path, "", "header is not a JSON object");

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t data_size = file_size - h.data_start;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) bad(path, "", "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) bad(path, "", fmt::format("__metadata__ value of '{}' is not a string", m.key()));
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) bad(path, name, "entry is not an object");
    SafetensorsEntry e;
    e.name = name;
    auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string()) bad(path, name, "missing or non-string dtype");
    bool found = false;
    for (const auto& d : kDtypes)
      if (*dt == d.name) {
        e.dtype = d.dtype;
        found = true;
      }
    if (!found) bad(path, name, fmt::format("unsupported dtype {}", dt->dump()));
    auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array()) bad(path, name, "missing or non-array shape");
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) bad(path, name, fmt::format("shape {} has a non-integer or negative size", sh->dump()));
      const uint64_t s = d.get<uint64_t>();
      if (s > (uint64_t(1) << 48) || (s > 0 && numel > (uint64_t(1) << 60) / s))
        bad(path, name, fmt::format("shape {} is too large", sh->dump()));
      numel *= s;
      e.shape.push_back(int64_t(s));
    }
    auto off = v.find("data_offsets");
    if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      bad(path, name, "data_offsets must be [begin, end] with non-negative integers");
    e.begin = (*off)[0].get<uint64_t>();
    e.end = (*off)[1].get<uint64_t>();
    if (e.begin > e.end) bad(path, name, fmt::format("data_offsets [{}, {}] has begin > end", e.begin, e.end));
    if (e.end > data_size)
      bad(path, name,
          fmt::format("data_offsets [{}, {}] out of range: the data section has {} bytes (truncated file?)", e.begin,
                      e.end, data_size));
    const uint64_t expect = numel * uint64_t(c10::elementSize(e.dtype));
    if (e.end - e.begin != expect)
      bad(path, name,
          fmt::format("{} bytes for shape {} and dtype {} (expected {} bytes)", e.end - e.begin, sh->dump(),
                      dt->get<std::string>(), expect));
    h.entries.push_back(std::move(e));
  }
  // No overlap, no hole: sorted by offset the entries must tile the data section.
  std::vector<const SafetensorsEntry*> by_offset;
  for (const auto& e : h.entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t at = 0;
  for (const auto* e : by_offset) {
    if (e->begin < at) bad(path, e->name, fmt::format("data_offsets [{}, {}] overlap the previous tensor (ends at {})", e->begin, e->end, at));
    if (e->begin > at) bad(path, e->name, fmt::format("data_offsets [{}, {}] leave a hole after byte {}", e->begin, e->end, at));
    at = e->end;
  }
  if (at != data_size)
    bad(path, "", fmt::format("the data section has {} bytes but the tensors cover {}", data_size, at));
  std::sort(h.entries.begin(), h.entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return h;
}

std::map<std::string, torch::Tensor> load_safetensors(const fs::path& path, std::map<std::string, std::string>* metadata) {
  auto h = read_safetensors_header(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError("cannot open " + path.string());
  std::map<std::string, torch::Tensor> out;
  for (const auto& e : h.entries) {
    auto t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
    const auto bytes = e.end - e.begin;
    if (bytes > 0) {
      in.seekg(std::streamoff(h.data_start + e.begin));
      in.read(static_cast<char*>(t.data_ptr()), std::streamsize(bytes));
      if (!in) bad(path, e.name, "cannot read the tensor bytes (file changed while reading?)");
    }
    out.emplace(e.name, std::move(t));
  }
  if (metadata) *metadata = std::move(h.metadata);
  return out;
}

void save_safetensors(const fs::path& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  TORCH_INTERNAL_ASSERT(little_endian(), "safetensors I/O assumes a little-endian host");
  nlohmann::ordered_json j;
  if (!metadata.empty()) {
    j["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) j["__metadata__"][k] = v;
  }
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name.empty()) throw ValueError(path.string() + ": save_safetensors: empty tensor name");
    if (name == "__metadata__") throw ValueError(path.string() + ": save_safetensors: \"__metadata__\" is reserved");
    if (!t.defined()) throw ValueError(fmt::format("{}: save_safetensors: tensor '{}' is undefined", path.string(), name));
    const auto dtype_name = safetensors_dtype_name(t.scalar_type());
    auto c = t.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = uint64_t(c.numel()) * c.element_size();
    j[name] = {{"dtype", dtype_name}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(c);
  }
  std::string header = j.empty() ? std::string("{}") : j.dump();
  while (header.size() % 8 != 0) header.push_back(' ');
  write_file_atomically(path, [&](std::ostream& os) {
    const uint64_t n = header.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
    os.write(reinterpret_cast<const char*>(len), 8);
    os.write(header.data(), std::streamsize(header.size()));
    for (const auto& c : data)
      if (c.numel() > 0) os.write(static_cast<const char*>(c.data_ptr()), std::streamsize(c.numel() * c.element_size()));
  });
}

}  // namespace lamia
