#pragma once
// Safetensors (https://github.com/huggingface/safetensors), our own reader and writer:
// 8-byte little-endian header size N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// then the raw little-endian tensor bytes (offsets relative to the end of the header).
// Every read is checked: header size, JSON, dtype, shape, offsets in range, byte size equal to
// shape x dtype size, no overlap and no hole; a violation is a ValueError naming the file and tensor.
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace lamia {

/// One tensor's header entry.
struct SafetensorsEntry {
  std::string name;
  torch::Dtype dtype = torch::kFloat;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the data section
  uint64_t end = 0;
};

/// The parsed and validated header of a file.
struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;        // sorted by name
  std::map<std::string, std::string> metadata;  // __metadata__
  uint64_t data_start = 0;                      // absolute file offset of the data section
};

/// "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL" <-> torch dtypes.
/// Throws ValueError for a dtype safetensors cannot hold.
std::string safetensors_dtype_name(torch::Dtype dtype);

/// Reads and validates the header only.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

/// Reads every tensor into CPU memory with the stored dtype (data is copied). metadata, when
/// non-null, receives __metadata__.
std::map<std::string, torch::Tensor> load_safetensors(const std::filesystem::path& path,
                                                      std::map<std::string, std::string>* metadata = nullptr);

/// Writes tensors (any device; copied to CPU, made contiguous) atomically, names sorted, data
/// 8-byte aligned as the reference implementation does. Throws ValueError for an empty name, the
/// reserved name "__metadata__" or an unsupported dtype.
void save_safetensors(const std::filesystem::path& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace lamia
