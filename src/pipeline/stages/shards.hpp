#pragma once
// Sharded stages (lamia/pipeline/shard.hpp): the shard files of a run folder, found by name and checked
// against their records before a merge, and the two stages that split their work (export:
// palette_shards.cpp, evaluate: evaluation_shards.cpp). Every refusal is one line naming the file.
#include <lamia/pipeline/shard.hpp>
#include <lamia/pipeline/stage.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace lamia {

class GradientSync;
class PipelineContext;

/// The batch the export stage encodes items in (export_palettes, mean_pooled_embeddings): a shard
/// computes the whole batches of the unsplit export that overlap its items, so that its values are
/// bit for bit those of the unsplit export.
inline constexpr std::int64_t kExportBatchSize = 256;

/// A shard file found by its name ("<stem>-00001-of-00003<ext>").
struct ShardFile {
  std::filesystem::path path;
  ShardSpec shard;
};

/// The shard files stem-*-of-*ext in dir, one per index, in index order. Throws ValueError (one line)
/// when there is none (naming `make`, the command that writes them), when two files were cut into
/// different counts, or when an index is missing (naming the file expected).
std::vector<ShardFile> find_shard_files(const std::filesystem::path& dir, const std::string& stem,
                                        const std::string& extension, const std::string& make);

/// One property a shard must share with the run folder (e.g. the encoder's checksum).
struct ShardOrigin {
  std::string key;       ///< in the record
  std::string expected;  ///< the run folder's value
  std::string refusal;   ///< "was exported with another encoder checkpoint"
};

/// The record a shard file carries: what it holds and what it was made from.
nlohmann::json shard_record(const std::string& stage, const std::string& kind, const ShardSpec& shard,
                            std::int64_t total, const std::vector<ShardOrigin>& origins);

/// Checks a shard file's record against the file's name, the count total of items (or users) and the
/// origins; throws ValueError naming the file and what differs (a copy of another shard's file, a
/// part of another split, of another item order or encoder). Returns the shard's [begin, end).
std::pair<std::int64_t, std::int64_t> check_shard_record(const ShardFile& file, const nlohmann::json& record,
                                                         const std::string& stage, const std::string& kind,
                                                         std::int64_t total, const std::vector<ShardOrigin>& origins);

/// "fnv1a:…" of an item (or user) order: the ids, one a line.
std::string order_hash(const std::vector<std::string>& ids);

// The export stage's shards (palette_shards.cpp): DIR/shards/{palettes,embeddings}-i-of-n.bin, each a
// palette file (version 2) whose metadata is its record.
void export_palette_shard(PipelineContext& ctx, const ShardSpec& shard, const StageInputs& inputs);
std::vector<ArtifactSpec> merge_palette_shards(PipelineContext& ctx, const StageInputs& inputs);
/// The export under torchrun (every rank of `group` calls it): rank r computes part r of the item
/// order (the --shard split), and rank 0 writes palettes.bin and embeddings.bin from the parts, the
/// same bytes as the unsplit export. The rows travel to rank 0 in rounds of one export batch per
/// rank (one gather each); rank 0 keeps the other parts' rows in temporary files beside the file until
/// their turn in item order. Returns what rank 0 wrote (nothing on the other ranks).
std::vector<ArtifactSpec> export_palettes_on_group(PipelineContext& ctx, GradientSync& group);

// The evaluate stage's shards (evaluation_shards.cpp): DIR/eval_shards/evaluate-i-of-n.json, the
// metric sums and counts of a part of the test users with its record.
void write_evaluation_shard(PipelineContext& ctx, const ShardSpec& shard, const StageInputs& inputs,
                            const nlohmann::json& part);
/// The parts of every shard, checked, in user order.
std::vector<nlohmann::json> read_evaluation_shards(PipelineContext& ctx, const StageInputs& inputs);
/// metrics.json from the parts of the evaluation (one part: the unsplit run): every metric from the
/// summed per-user sums and counts, the times and counters summed.
nlohmann::json merge_evaluation_parts(const std::vector<nlohmann::json>& parts);

}  // namespace lamia
