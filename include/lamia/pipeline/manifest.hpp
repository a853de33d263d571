#pragma once
// The artifact manifest of a `lamia run` folder (DIR/manifest.json): what each stage made, from
// which configuration and inputs, so that a rerun skips what is up to date, reruns from the first
// stage whose configuration or inputs changed, and refuses a folder whose files were changed behind
// its back. Written atomically after every stage.
//
//   {"format": "lamia-manifest", "version": 1, "lamia_version": "0.1.0",
//    "stages": {"quantize": {"config_hash": "…", "inputs_hash": "…"}},
//    "artifacts": {"palettes": {"path": "palettes.bin", "stage": "export", "format_version": 1,
//                               "size": 123, "checksum": "crc32:…", "config_hash": "…",
//                               "inputs_hash": "…", "lamia_version": "0.1.0"}}}
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace lamia {

struct ArtifactEntry {
  std::string name;
  std::string path;  ///< relative to the run folder; a file or a folder
  std::string stage;
  int format_version = 1;
  std::uint64_t size = 0;    ///< bytes (a folder: the sum over its files)
  std::string checksum;      ///< "crc32:xxxxxxxx" of the bytes (a folder: of its files' names and bytes, in name order)
  std::string config_hash;   ///< of the stage's configuration section
  std::string inputs_hash;   ///< of the checksums of the artifacts the stage read
  std::string lamia_version;
};

struct StageRecord {
  std::string config_hash;
  std::string inputs_hash;
  /// false while the stage runs: a record left unfinished means it was interrupted (its own
  /// checkpoints may resume it if the hashes still match).
  bool completed = false;
  std::vector<std::string> outputs;  ///< artifact names
  /// The configuration section as JSON text: not compared (the hash is), but it lets a refusal name
  /// the keys that differ. Empty in manifests written before it was recorded.
  std::string config;
};

class Manifest {
 public:
  static constexpr int kFormatVersion = 1;
  /// DIR/manifest.json, or an empty manifest when there is none. ParseError naming the file when it
  /// exists but is not a manifest.
  static Manifest load(const std::filesystem::path& run_dir);
  /// Writes DIR/manifest.json atomically.
  void save(const std::filesystem::path& run_dir) const;

  const ArtifactEntry* artifact(const std::string& name) const;
  const StageRecord* stage(const std::string& name) const;
  /// Records a finished stage and its artifacts (replacing what the stage had before).
  void record_stage(const std::string& name, StageRecord record, const std::vector<ArtifactEntry>& artifacts);
  /// Forgets a stage and its artifacts (before it reruns).
  void forget_stage(const std::string& name);
  const std::map<std::string, ArtifactEntry>& artifacts() const noexcept { return artifacts_; }

 private:
  std::map<std::string, StageRecord> stages_;
  std::map<std::string, ArtifactEntry> artifacts_;
};

/// Size and "crc32:…" checksum of a file, or of a folder's files (names and bytes, in name order).
/// Throws IOError naming the path when it cannot be read.
std::pair<std::uint64_t, std::string> checksum_path(const std::filesystem::path& path);

/// "fnv1a:…" of a string (configuration sections, lists of input checksums).
std::string hash_text(const std::string& text);

/// Describes an artifact as it is on disk now.
ArtifactEntry describe_artifact(const std::filesystem::path& run_dir, const std::string& name,
                                const std::string& relative_path, const std::string& stage, int format_version,
                                const std::string& config_hash, const std::string& inputs_hash);

/// Whether the artifact's file is there. Throws ValueError with one line naming the artifact, its path
/// and what differs when it is there but does not match its entry (size or checksum): a folder whose
/// files were changed by hand is refused rather than silently mixed.
bool verify_artifact(const std::filesystem::path& run_dir, const ArtifactEntry& entry);

}  // namespace lamia
