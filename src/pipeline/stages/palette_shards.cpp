// The export stage split over processes: `lamia export-palettes DIR --shard i/n` writes the palettes
// and embeddings of the i-th part of the item order to DIR/shards/ (palette files whose metadata is the
// shard's record); `--merge` checks the n shards and streams them into DIR/palettes.bin and
// DIR/embeddings.bin, the same bytes as the unsplit export.
#include "../context.hpp"
#include "shards.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/palette/evaluation.hpp>
#include <lamia/palette/palette_file.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <memory>
#include <numeric>

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

}  // namespace

void export_palette_shard(PipelineContext& ctx, const ShardSpec& shard, const StageInputs& inputs) {
  ctx.load_trained_palette_encoder();
  auto& setup = ctx.palette_setup();
  auto& encoder = *setup.encoder;
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
  constexpr auto B = kExportBatchSize;
  // The unsplit export encodes items in batches [kB, (k + 1)B): a shard computes those that overlap its
  // items whole (at most two more batches than its own), so that every value is the same bit for bit.
  torch::Tensor batch;
  std::int64_t batch_begin = -1;
  const auto L = encoder.options().palette_size(), D = encoder.palette_dim();
  write_palette_file(
      dir / shard_file_name("palettes", shard, ".bin"), ids, L, D,
      [&](std::int64_t from, std::int64_t to) {
        std::vector<torch::Tensor> parts;
        for (auto at = begin + from; at < begin + to;) {
          const auto aligned = at / B * B;
          if (aligned != batch_begin) {
            std::vector<ItemIndex> items(std::size_t(std::min(n, aligned + B) - aligned));
            std::iota(items.begin(), items.end(), ItemIndex(aligned));
            batch = encode_items(encoder, catalog, items, B);
            batch_begin = aligned;
          }
          const auto stop = std::min(begin + to, aligned + B);
          parts.push_back(batch.slice(0, at - aligned, stop - aligned));
          at = stop;
        }
        return torch::cat(parts, 0);
      },
      B, shard_record("export", "palettes", shard, n, origins).dump());
  // The embeddings: mean_pooled_embeddings on the aligned batches' items, the shard's rows kept.
  const auto first = begin / B * B, last = std::min(n, (end + B - 1) / B * B);
  TokenizedCatalog part;
  part.items.assign(catalog.items.begin() + first, catalog.items.begin() + last);
  part.item_ids.assign(catalog.item_ids.begin() + first, catalog.item_ids.begin() + last);
  part.attribute_names = catalog.attribute_names;
  part.num_content_attributes = catalog.num_content_attributes;
  const auto embeddings = mean_pooled_embeddings(encoder, part, B).slice(0, begin - first, end - first).unsqueeze(1);
  write_palette_file(
      dir / shard_file_name("embeddings", shard, ".bin"), ids, 1, embeddings.size(2),
      [&](std::int64_t from, std::int64_t to) { return embeddings.slice(0, from, to); }, B,
      shard_record("export", "embeddings", shard, n, origins).dump());
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
