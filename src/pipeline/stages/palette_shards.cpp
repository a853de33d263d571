// The export stage split over processes: `lamia export-palettes DIR --shard i/n` writes the palettes
// and embeddings of the i-th part of the item order to DIR/shards/ (palette files whose metadata is the
// shard's record); `--merge` checks the n shards and streams them into DIR/palettes.bin and
// DIR/embeddings.bin, the same bytes as the unsplit export. Under torchrun the ranks split the items
// the same way and rank 0 writes the two files from their rows (export_palettes_on_group).
#include "../context.hpp"
#include "distributed_stages.hpp"
#include "shards.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/palette/evaluation.hpp>
#include <lamia/palette/palette_file.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <set>
#include <tuple>

#include <unistd.h>

namespace lamia {
namespace fs = std::filesystem;
namespace {

constexpr const char* kPaletteShardsDir = "shards";
constexpr const char* kMakePaletteShards = "lamia export-palettes DIR --shard i/n";

// What every shard of this folder's export must have been made from.
std::vector<ShardOrigin> palette_shard_origins(const std::vector<std::string>& ids, const StageInputs& inputs) {
  return {{"item_order", order_hash(ids), "was cut from another item order"},
          {"encoder", inputs.checksums.at("palette_encoder"), "was exported with another encoder checkpoint"},
          {"inputs_hash", inputs.inputs_hash, "was made from another dataset or tokenizer"}};
}

std::vector<std::string> catalog_ids(PipelineContext& ctx) {
  const auto& catalog = ctx.dataset().dataset.catalog;
  std::vector<std::string> ids;
  ids.reserve(catalog.size());
  for (std::size_t i = 0; i < catalog.size(); ++i) ids.push_back(catalog.id(ItemIndex(i)));
  return ids;
}

// The n shard files of one kind (palettes, embeddings), opened and checked, in item order.
struct PaletteShards {
  std::string kind;
  std::vector<std::unique_ptr<PaletteFileReader>> readers;
  std::vector<std::int64_t> firsts;  ///< the first item of each
};

PaletteShards open_palette_shards(PipelineContext& ctx, const std::string& kind, const std::vector<std::string>& ids,
                                  const std::vector<ShardOrigin>& origins) {
  PaletteShards out{kind, {}, {}};
  for (const auto& file : find_shard_files(ctx.path(kPaletteShardsDir), kind, ".bin", kMakePaletteShards)) {
    // Opening reads the header and checks the length and the crc32 (a truncated or corrupt file: ParseError).
    auto reader = std::make_unique<PaletteFileReader>(file.path, /*verify_checksum=*/true);
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(reader->metadata());
    } catch (const nlohmann::json::exception&) {
      throw ValueError(fmt::format("merge: {} has no shard record: not written by `{}`", file.path.string(),
                                   kMakePaletteShards));
    }
    const auto [begin, end] = check_shard_record(file, record, "export", kind, std::int64_t(ids.size()), origins);
    if (!std::equal(ids.begin() + begin, ids.begin() + end, reader->item_ids().begin(), reader->item_ids().end()))
      throw ValueError(fmt::format("merge: {} does not hold items [{}, {}) of this folder's item order",
                                   file.path.string(), begin, end));
    const auto& front = out.readers.empty() ? reader : out.readers.front();
    if (reader->palette_size() != front->palette_size() || reader->dim() != front->dim())
      throw ValueError(fmt::format("merge: {} holds [{}, {}] per item, {} holds [{}, {}]", file.path.string(),
                                   reader->palette_size(), reader->dim(), front->path().string(),
                                   front->palette_size(), front->dim()));
    out.firsts.push_back(begin);
    out.readers.push_back(std::move(reader));
  }
  return out;
}

// DIR/<kind>.bin from the shards, streamed: a batch of items at a time is in memory.
void write_merged_palettes(PipelineContext& ctx, const PaletteShards& shards, const std::vector<std::string>& ids) {
  const auto& readers = shards.readers;
  const auto L = readers.front()->palette_size(), D = readers.front()->dim();
  std::size_t shard = 0;
  write_palette_file(ctx.path(shards.kind + ".bin"), ids, L, D, [&](std::int64_t begin, std::int64_t end) {
    auto out = torch::empty({end - begin, L, D}, torch::kFloat32);
    for (auto at = begin; at < end;) {
      while (shards.firsts[shard] + readers[shard]->num_items() <= at) ++shard;  // ranges are consecutive
      const auto first = shards.firsts[shard];
      const auto stop = std::min(end, first + readers[shard]->num_items());
      readers[shard]->read_into(at - first, stop - first, out[at - begin].data_ptr<float>());
      at = stop;
    }
    return out;
  });
}

// Rows [from, to) of the export's palettes or embeddings ([to - from, L, D]), computed in the unsplit
// export's batches [kB, (k + 1)B), each whole (a part's first and last batch are computed and cut),
// so that every value is the unsplit export's, bit for bit. The last batch is kept for the next call.
class AlignedExportRows {
 public:
  /// The rows of items [first, last): one whole batch of the unsplit export.
  using EncodeBatch = std::function<torch::Tensor(std::int64_t first, std::int64_t last)>;
  AlignedExportRows(std::int64_t num_items, std::int64_t L, std::int64_t D, EncodeBatch encode)
      : num_items_(num_items), L_(L), D_(D), encode_(std::move(encode)) {}
  std::int64_t palette_size() const { return L_; }
  std::int64_t dim() const { return D_; }

  torch::Tensor rows(std::int64_t from, std::int64_t to) {
    constexpr auto B = kExportBatchSize;
    std::vector<torch::Tensor> parts;
    for (auto at = from; at < to;) {
      const auto aligned = at / B * B;
      if (aligned != batch_begin_) {
        batch_ = encode_(aligned, std::min(num_items_, aligned + B));
        batch_begin_ = aligned;
      }
      const auto stop = std::min(to, aligned + B);
      parts.push_back(batch_.slice(0, at - aligned, stop - aligned));
      at = stop;
    }
    return parts.empty() ? torch::zeros({0, L_, D_}) : torch::cat(parts, 0);
  }

 private:
  std::int64_t num_items_, L_, D_;
  EncodeBatch encode_;
  torch::Tensor batch_;
  std::int64_t batch_begin_ = -1;
};

// The export's two kinds of rows, from the trained encoder of the folder.
AlignedExportRows palette_rows(PaletteSetup& setup) {
  auto& encoder = *setup.encoder;
  const auto& catalog = setup.catalog;
  return AlignedExportRows(std::int64_t(catalog.size()), encoder.options().palette_size(), encoder.palette_dim(),
                           [&encoder, &catalog](std::int64_t first, std::int64_t last) {
                             std::vector<ItemIndex> items(std::size_t(last - first));
                             std::iota(items.begin(), items.end(), ItemIndex(first));
                             return encode_items(encoder, catalog, items, kExportBatchSize);
                           });
}

AlignedExportRows embedding_rows(PaletteSetup& setup) {
  auto& encoder = *setup.encoder;
  const auto& catalog = setup.catalog;
  return AlignedExportRows(std::int64_t(catalog.size()), 1, encoder.decoder->options().hidden_size(),
                           [&encoder, &catalog](std::int64_t first, std::int64_t last) {
                             TokenizedCatalog part;
                             part.items.assign(catalog.items.begin() + first, catalog.items.begin() + last);
                             part.item_ids.assign(catalog.item_ids.begin() + first, catalog.item_ids.begin() + last);
                             part.attribute_names = catalog.attribute_names;
                             part.num_content_attributes = catalog.num_content_attributes;
                             return mean_pooled_embeddings(encoder, part, kExportBatchSize).unsqueeze(1);
                           });
}

// The rows of the other ranks' parts, kept on rank 0's disk until their turn in item order: one raw
// float32 file per part beside the file being written, named like write_file_atomically's temporaries
// (a run killed meanwhile leaves them for the next run to remove), removed when done.
class PartSpools {
 public:
  PartSpools(const fs::path& target, std::int64_t parts) {
    for (std::int64_t r = 0; r < parts; ++r) {
      paths_.push_back(fs::path(target.string() + fmt::format(".part-{:05d}.tmp.{}.0", r, ::getpid())));
      files_.push_back(std::make_unique<std::fstream>(
          paths_.back(), std::ios::binary | std::ios::in | std::ios::out | std::ios::trunc));
      if (!*files_.back()) throw IOError(fmt::format("cannot create '{}'", paths_.back().string()));
    }
  }
  ~PartSpools() {
    for (std::size_t r = 0; r < paths_.size(); ++r) {
      files_[r].reset();
      std::error_code ignored;
      fs::remove(paths_[r], ignored);
    }
  }
  PartSpools(const PartSpools&) = delete;
  PartSpools& operator=(const PartSpools&) = delete;

  void append(std::int64_t part, const torch::Tensor& rows) {
    auto& f = *files_[std::size_t(part)];
    const auto t = rows.contiguous();
    f.write(static_cast<const char*>(t.data_ptr()), std::streamsize(t.numel() * std::int64_t(sizeof(float))));
    if (!f) throw IOError(fmt::format("cannot write '{}'", paths_[std::size_t(part)].string()));
  }
  /// The next `floats` of a part, in the order they were appended (every append comes first).
  void read(std::int64_t part, std::int64_t floats, float* out) {
    auto& f = *files_[std::size_t(part)];
    if (reading_.insert(part).second) f.seekg(0);
    f.read(reinterpret_cast<char*>(out), std::streamsize(floats * std::int64_t(sizeof(float))));
    if (!f) throw IOError(fmt::format("cannot read '{}'", paths_[std::size_t(part)].string()));
  }

 private:
  std::vector<fs::path> paths_;
  std::vector<std::unique_ptr<std::fstream>> files_;
  std::set<std::int64_t> reading_;
};

// Rows of every rank's part per collective round: world_size x this many rows on rank 0 at a time.
constexpr std::int64_t kRowsPerRound = kExportBatchSize;

// One export file (palettes.bin or embeddings.bin) from the rows every rank computes of its part of the
// items (shard_range: the --shard split). Round k: every rank computes rows [k C, (k + 1) C) of its part
// (zeros past its end) and one gather brings them to rank 0, which keeps its own rows for the file and
// appends the other parts' to spools; the file is written in item order, part 0 as its rounds arrive,
// then the other parts from their spools. Every rank runs the same number of rounds.
void gather_export_file(PipelineContext& ctx, GradientSync& group, const std::string& file,
                        const std::vector<std::string>& ids, AlignedExportRows& source) {
  constexpr auto C = kRowsPerRound;
  const auto rank = group.rank(), world = group.world_size();
  const auto L = source.palette_size(), D = source.dim();
  std::vector<std::pair<std::int64_t, std::int64_t>> parts;
  std::int64_t longest = 0;
  for (std::int64_t r = 0; r < world; ++r) {
    parts.push_back(shard_range(std::int64_t(ids.size()), ShardSpec{r, world}));
    longest = std::max(longest, parts.back().second - parts.back().first);
  }
  const auto rounds = (longest + C - 1) / C;
  // Rows [from, from + count) of part r in round k.
  auto round_range = [&](std::int64_t r, std::int64_t k) {
    const auto from = parts[std::size_t(r)].first + k * C;
    return std::pair{from, std::clamp<std::int64_t>(parts[std::size_t(r)].second - from, 0, C)};
  };
  auto own_rows = [&](std::int64_t k) {
    auto out = torch::zeros({C, L, D});
    const auto [from, count] = round_range(rank, k);
    if (count > 0) out.slice(0, 0, count).copy_(source.rows(from, from + count));
    return out;
  };
  if (rank != 0) {
    for (std::int64_t k = 0; k < rounds; ++k) group.gather(own_rows(k));
    return;
  }
  PartSpools spools(ctx.path(file), world);
  std::int64_t done = 0;  // rounds
  torch::Tensor held;     // rank 0's rows of the last round: items [held_from, held_from + held_count)
  std::int64_t held_from = 0, held_count = 0;
  auto run_round = [&] {
    if (done == rounds) throw std::logic_error("gather_export_file: no round left");
    auto got = group.gather(own_rows(done));
    std::tie(held_from, held_count) = round_range(0, done);
    held = got[0];
    for (std::int64_t r = 1; r < world; ++r) spools.append(r, got[std::size_t(r)].slice(0, 0, round_range(r, done).second));
    ++done;
  };
  write_palette_file(ctx.path(file), ids, L, D, [&](std::int64_t begin, std::int64_t end) {
    auto out = torch::empty({end - begin, L, D});
    for (auto at = begin; at < end;) {
      std::int64_t stop = 0;
      if (at < parts[0].second) {  // rank 0's own part, round by round
        while (at >= held_from + held_count) run_round();
        stop = std::min(end, held_from + held_count);
        out.slice(0, at - begin, stop - begin).copy_(held.slice(0, at - held_from, stop - held_from));
      } else {  // another part: every round has run, its spool is complete
        while (done < rounds) run_round();
        std::size_t r = 1;
        while (parts[r].second <= at) ++r;
        stop = std::min(end, parts[r].second);
        spools.read(std::int64_t(r), (stop - at) * L * D, out[at - begin].data_ptr<float>());
      }
      at = stop;
    }
    return out;
  }, C);
  while (done < rounds) run_round();  // the other ranks wait for every round
}

}  // namespace

std::vector<ArtifactSpec> export_palettes_on_group(PipelineContext& ctx, GradientSync& group) {
  const auto t0 = std::chrono::steady_clock::now();
  ctx.load_trained_palette_encoder();
  auto& setup = ctx.palette_setup();
  const auto ids = catalog_ids(ctx);
  auto palettes = palette_rows(setup);
  gather_export_file(ctx, group, "palettes.bin", ids, palettes);
  auto embeddings = embedding_rows(setup);
  gather_export_file(ctx, group, "embeddings.bin", ids, embeddings);
  if (group.rank() != 0) return {};
  ctx.say(fmt::format("palettes exported over {} ranks: {} items, embeddings [{}, {}] ({:.1f}s)", group.world_size(),
                      ids.size(), ids.size(), embeddings.dim(),
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
  return {{"palettes", "palettes.bin", 1}, {"embeddings", "embeddings.bin", 1}};
}

void export_palette_shard(PipelineContext& ctx, const ShardSpec& shard, const StageInputs& inputs) {
  ctx.load_trained_palette_encoder();
  auto& setup = ctx.palette_setup();
  const auto& catalog = setup.catalog;
  const auto n = std::int64_t(catalog.size());
  const auto [begin, end] = shard_range(n, shard);
  if (begin == end)
    throw ValueError(fmt::format("export-palettes --shard {}/{}: the shard has no items (the catalog has {})",
                                 shard.index, shard.count, n));
  const auto origins = palette_shard_origins(catalog.item_ids, inputs);
  const std::vector<std::string> ids(catalog.item_ids.begin() + begin, catalog.item_ids.begin() + end);
  const auto dir = ctx.path(kPaletteShardsDir);
  fs::create_directories(dir);
  const auto first = begin;  // a structured binding cannot be captured in C++17
  auto write_shard = [&](const std::string& kind, AlignedExportRows rows) {
    write_palette_file(
        dir / shard_file_name(kind, shard, ".bin"), ids, rows.palette_size(), rows.dim(),
        [&](std::int64_t from, std::int64_t to) { return rows.rows(first + from, first + to); }, kExportBatchSize,
        shard_record("export", kind, shard, n, origins).dump());
  };
  write_shard("palettes", palette_rows(setup));
  write_shard("embeddings", embedding_rows(setup));
  ctx.say(fmt::format("shard {}/{}: palettes and embeddings of items [{}, {}) of {} in {}", shard.index, shard.count,
                      begin, end, n, dir.string()));
}

std::vector<ArtifactSpec> merge_palette_shards(PipelineContext& ctx, const StageInputs& inputs) {
  const auto ids = catalog_ids(ctx);
  const auto origins = palette_shard_origins(ids, inputs);
  // Every shard of both kinds is checked before anything is written.
  const auto palettes = open_palette_shards(ctx, "palettes", ids, origins);
  const auto embeddings = open_palette_shards(ctx, "embeddings", ids, origins);
  write_merged_palettes(ctx, palettes, ids);
  write_merged_palettes(ctx, embeddings, ids);
  ctx.say(fmt::format("merged the shards of {} into palettes.bin and embeddings.bin ({} items)",
                      ctx.path(kPaletteShardsDir).string(), ids.size()));
  return {{"palettes", "palettes.bin", 1}, {"embeddings", "embeddings.bin", 1}};
}

}  // namespace lamia
