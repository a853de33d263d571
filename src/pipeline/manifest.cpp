#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/core/preview.hpp>
#include <lamia/core/version.hpp>
#include <lamia/data/detail/json_io.hpp>
#include <lamia/pipeline/manifest.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <system_error>
#include <type_traits>

namespace lamia {
namespace fs = std::filesystem;
namespace {

using json = nlohmann::json;

// Streams a file into a running crc32 (and size); IOError names the file.
void crc_file(const fs::path& path, uLong& crc, std::uint64_t& size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError(fmt::format("cannot read '{}'", path.string()));
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    const auto got = in.gcount();
    if (got <= 0) break;
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), uInt(got));
    size += std::uint64_t(got);
  }
  if (in.bad()) throw IOError(fmt::format("error while reading '{}'", path.string()));
}

// An integer field, range-checked for T: a float (1e300), a negative size or a value that would wrap
// is a ParseError naming the field, never a converted value (converting 1e300 to int is undefined).
template <class T>
T integer_field(const json& v, const fs::path& path, const std::string& field) {
  using L = std::numeric_limits<T>;
  if (v.is_number_unsigned()) {
    if (const auto x = v.get<std::uint64_t>(); x <= static_cast<std::uint64_t>(L::max())) return static_cast<T>(x);
  } else if (v.is_number_integer()) {
    const auto x = v.get<std::int64_t>();
    if (std::is_signed_v<T> && x >= static_cast<std::int64_t>(L::min())) return static_cast<T>(x);
  }
  throw ParseError({path.string(), 0, field},
                   fmt::format("expected an integer in [{}, {}], got {}", L::min(), L::max(), preview(v.dump())));
}

}  // namespace

std::pair<std::uint64_t, std::string> checksum_path(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  uLong crc = crc32(0L, Z_NULL, 0);
  std::uint64_t size = 0;
  if (fs::is_regular_file(status)) {
    crc_file(path, crc, size);
  } else if (fs::is_directory(status)) {
    std::vector<fs::path> files;
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_regular_file()) files.push_back(it->path());
    }
    if (ec) throw IOError(fmt::format("cannot list '{}': {}", path.string(), ec.message()));
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const auto rel = fs::relative(f, path).generic_string();
      crc = crc32(crc, reinterpret_cast<const Bytef*>(rel.data()), uInt(rel.size()));
      crc_file(f, crc, size);
    }
  } else {
    throw IOError(fmt::format("'{}' is neither a file nor a folder", path.string()));
  }
  return {size, fmt::format("crc32:{:08x}", std::uint32_t(crc))};
}

std::string hash_text(const std::string& text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  return fmt::format("fnv1a:{:016x}", h);
}

ArtifactEntry describe_artifact(const fs::path& run_dir, const std::string& name, const std::string& relative_path,
                                const std::string& stage, int format_version, const std::string& config_hash,
                                const std::string& inputs_hash) {
  ArtifactEntry e;
  e.name = name;
  e.path = relative_path;
  e.stage = stage;
  e.format_version = format_version;
  std::tie(e.size, e.checksum) = checksum_path(run_dir / relative_path);
  e.config_hash = config_hash;
  e.inputs_hash = inputs_hash;
  e.lamia_version = kLamiaVersion;
  return e;
}

bool verify_artifact(const fs::path& run_dir, const ArtifactEntry& entry) {
  const auto path = run_dir / entry.path;
  std::error_code ec;
  if (!fs::exists(path, ec)) return false;
  const auto [size, checksum] = checksum_path(path);
  if (size != entry.size || checksum != entry.checksum) {
    throw ValueError(fmt::format(
        "artifact '{}' ({}) does not match {}: size {} and {} on disk, {} and {} recorded by stage '{}'; it was "
        "changed outside lamia: delete it (or the folder) to have it recomputed",
        entry.name, path.string(), (run_dir / "manifest.json").string(), size, checksum, entry.size, entry.checksum,
        entry.stage));
  }
  return true;
}

Manifest Manifest::load(const fs::path& run_dir) {
  const auto path = run_dir / "manifest.json";
  Manifest m;
  std::error_code ec;
  if (!fs::exists(path, ec)) return m;
  const std::string text = read_file(path);
  try {
    // Nested at most limits::kMaxJsonDepth deep (a stage's config is printed again, recursively).
    const json j = detail::parse_json(text, path.string(), 1);
    if (!j.is_object() || j.value("format", "") != "lamia-manifest")
      throw ParseError({path.string(), 0, "format"}, "not a lamia manifest");
    const int version = j.contains("version") ? integer_field<int>(j["version"], path, "version") : 0;
    if (version != kFormatVersion) {
      throw ParseError({path.string(), 0, "version"},
                       fmt::format("manifest version {} (this build reads {})", version, kFormatVersion));
    }
    for (const auto& [name, s] : j.at("stages").items()) {
      StageRecord r;
      r.config_hash = s.at("config_hash").get<std::string>();
      r.inputs_hash = s.at("inputs_hash").get<std::string>();
      r.outputs = s.at("outputs").get<std::vector<std::string>>();
      r.completed = s.at("completed").get<bool>();
      if (s.contains("config")) r.config = s.at("config").dump();
      m.stages_[name] = std::move(r);
    }
    for (const auto& [name, a] : j.at("artifacts").items()) {
      ArtifactEntry e;
      e.name = name;
      e.path = a.at("path").get<std::string>();
      e.stage = a.at("stage").get<std::string>();
      e.format_version = integer_field<int>(a.at("format_version"), path, "artifacts." + name + ".format_version");
      e.size = integer_field<std::uint64_t>(a.at("size"), path, "artifacts." + name + ".size");
      e.checksum = a.at("checksum").get<std::string>();
      e.config_hash = a.at("config_hash").get<std::string>();
      e.inputs_hash = a.at("inputs_hash").get<std::string>();
      e.lamia_version = a.at("lamia_version").get<std::string>();
      const fs::path p(e.path);
      if (p.is_absolute() || e.path.find("..") != std::string::npos)
        throw ParseError({path.string(), 0, "artifacts." + name + ".path"}, "must be a path inside the run folder");
      m.artifacts_[name] = std::move(e);
    }
  } catch (const json::exception& e) {
    throw ParseError({path.string(), 0, ""}, fmt::format("malformed manifest: {}", e.what()));
  }
  return m;
}

void Manifest::save(const fs::path& run_dir) const {
  json stages = json::object(), artifacts = json::object();
  for (const auto& [name, r] : stages_) {
    stages[name] = {{"config_hash", r.config_hash}, {"inputs_hash", r.inputs_hash}, {"completed", r.completed},
                    {"outputs", r.outputs}};
    if (!r.config.empty()) stages[name]["config"] = json::parse(r.config);
  }
  for (const auto& [name, e] : artifacts_) {
    artifacts[name] = {{"path", e.path},
                       {"stage", e.stage},
                       {"format_version", e.format_version},
                       {"size", e.size},
                       {"checksum", e.checksum},
                       {"config_hash", e.config_hash},
                       {"inputs_hash", e.inputs_hash},
                       {"lamia_version", e.lamia_version}};
  }
  json j = {{"format", "lamia-manifest"},
            {"version", kFormatVersion},
            {"lamia_version", kLamiaVersion},
            {"stages", stages},
            {"artifacts", artifacts}};
  write_text_atomically(run_dir / "manifest.json", j.dump(2) + "\n");
}

const ArtifactEntry* Manifest::artifact(const std::string& name) const {
  auto it = artifacts_.find(name);
  return it == artifacts_.end() ? nullptr : &it->second;
}

const StageRecord* Manifest::stage(const std::string& name) const {
  auto it = stages_.find(name);
  return it == stages_.end() ? nullptr : &it->second;
}

void Manifest::record_stage(const std::string& name, StageRecord record, const std::vector<ArtifactEntry>& artifacts) {
  forget_stage(name);
  record.outputs.clear();
  for (const auto& a : artifacts) {
    record.outputs.push_back(a.name);
    artifacts_[a.name] = a;
  }
  stages_[name] = std::move(record);
}

void Manifest::forget_stage(const std::string& name) {
  auto it = stages_.find(name);
  if (it == stages_.end()) return;
  for (const auto& a : it->second.outputs) artifacts_.erase(a);
  stages_.erase(it);
}

}  // namespace lamia
