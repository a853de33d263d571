// bench_pipeline_scaling: how time and peak memory grow with the catalog, stage by stage, for
// synthetic catalogs of 10k, 100k and 1M items (issue #13's scaling benchmark):
//   export    the palettes of every item from a tiny scratch palette encoder (random weights: the
//             time does not depend on them), streamed to a palette file (export_palettes); the
//             catalog's generation and its tokenization (BPE trained on the first --bpe-items
//             items) are timed beside it
//   quantize  PaletteQuantizer::fit streamed from that file (exact PCA on all items, K-Means on
//             all points), the codes written for the next stages
//   trie      SemanticIdTable::from_codes, CodeVocabulary::for_table and the DeviceTrie (CPU)
//   decode    trie-constrained beam search (KV cache) of --users users over the table with a small
//             random recommender model (the decoding cost, not the model's quality)
// Each (size, stage) runs in a child process of its own (this program with --stage), so that each
// peak RSS is that stage's alone. Then the slope of log(time) and log(peak RSS) against log(n) per
// stage (least squares over the sizes): 1 = linear in n.
//
// --lamia PATH --shard-items N: two processes against one on the CLI's export (`lamia
// export-palettes`, which writes the palettes and the mean-pooled embeddings): a folder of N
// synthetic items with the same tiny encoder (2 training steps), exported by one process (the
// default threads) and by two `--shard i/2` processes at once (1 thread each: one core each on a
// 2-core machine), then `--merge`; the merged palettes.bin is compared with the unsplit one.
//
//   bench_pipeline_scaling [--sizes 10000,100000,1000000] [--stages export,quantize,trie,decode]
//                          [--workdir /tmp/lamia_bench_scaling] [--keep-files] [--threads N]
//                          [--hidden 64] [--layers 1] [--ffn 256] [--positions 4] [--pca-dim 32]
//                          [--codes 256] [--iterations 25] [--bpe-items 10000] [--users 64] [--beam 20]
//                          [--rec-hidden 64] [--rec-layers 2] [--lamia build/lamia] [--shard-items 100000]
#include "bench_util.hpp"

#include <lamia/core/allocator.hpp>
#include <lamia/core/threads.hpp>
#include <lamia/data/synthetic.hpp>
#include <lamia/ids/trie.hpp>
#include <lamia/nn/threads.hpp>
#include <lamia/palette/evaluation.hpp>
#include <lamia/palette/palette_file.hpp>
#include <lamia/palette/setup.hpp>
#include <lamia/quantize.hpp>
#include <lamia/recommend/beam_search.hpp>
#include <lamia/text/bpe_trainer.hpp>
#include <lamia/text/byte_level_bpe.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using lamia::bench::cpu_seconds;
using lamia::bench::now;
using lamia::bench::peak_rss_mib;

struct Settings {
  std::int64_t hidden = 64, layers = 1, ffn = 256, L = 4, d = 32, k = 256, bpe_items = 10000;
  std::int64_t users = 64, beam = 20, rec_hidden = 64, rec_layers = 2;
  int iterations = 25, threads = 0;
  fs::path workdir = fs::temp_directory_path() / "lamia_bench_scaling";
  std::string args() const {
    return fmt::format("--hidden {} --layers {} --ffn {} --positions {} --pca-dim {} --codes {} --iterations {} "
                       "--bpe-items {} --users {} --beam {} --rec-hidden {} --rec-layers {} --threads {} --workdir '{}'",
                       hidden, layers, ffn, L, d, k, iterations, bpe_items, users, beam, rec_hidden, rec_layers, threads,
                       workdir.string());
  }
  fs::path palettes(std::int64_t n) const { return workdir / fmt::format("palettes_{}.bin", n); }
  fs::path codes(std::int64_t n) const { return workdir / fmt::format("codes_{}.i32", n); }
};

// Export: catalog, tokenization, then the palettes of every item to a palette file.
nlohmann::json stage_export(std::int64_t n, const Settings& st) {
  double t0 = now();
  lamia::SyntheticOptions o;
  o.num_items = n;
  o.num_users = 0;
  const auto synth = lamia::generate_synthetic(o);
  const lamia::Catalog& catalog = synth.dataset.catalog;
  const double catalog_s = now() - t0;

  t0 = now();
  lamia::ScratchModelOptions model;
  model.hidden_size = st.hidden;
  model.num_layers = st.layers;
  model.ffn_dim = st.ffn;
  model.dropout = 0.0;
  model.max_position_embeddings = 512;
  model.seed = 2024;
  auto texts = lamia::catalog_texts(catalog);
  texts.resize(std::min<std::size_t>(texts.size(), std::size_t(st.bpe_items) * catalog.num_attributes()));
  lamia::BpeTrainerOptions bpe;
  bpe.vocab_size = static_cast<std::size_t>(model.vocab_size);
  auto tokenizer = std::make_shared<lamia::ByteLevelBpeTokenizer>(lamia::train_bpe(texts, bpe));
  texts = {};
  const auto m = static_cast<std::int64_t>(catalog.num_attributes());
  auto setup = lamia::make_palette_setup_from_tokenizer(
      catalog, tokenizer, lamia::PaletteEncoderOptions(m, m).palette_size(st.L), model);
  const double tokenize_s = now() - t0;

  t0 = now();
  const double c0 = cpu_seconds();
  lamia::export_palettes(*setup.encoder, setup.catalog, st.palettes(n), 256);
  return {{"seconds", now() - t0},
          {"cpu_seconds", cpu_seconds() - c0},
          {"catalog_seconds", catalog_s},
          {"tokenize_seconds", tokenize_s},
          {"dim", st.hidden},
          {"peak_rss_mib", peak_rss_mib()}};
}

// Quantize: the streamed fit; the training codes to a raw n x L int32 file.
nlohmann::json stage_quantize(std::int64_t n, const Settings& st) {
  lamia::PaletteFileReader reader(st.palettes(n), /*verify_checksum=*/false);
  if (reader.num_items() != n) throw std::runtime_error(fmt::format("{} has {} items", st.palettes(n).string(), reader.num_items()));
  lamia::PaletteQuantizerOptions qo;
  qo.pca_dim = st.d;
  qo.kmeans.num_codes = st.k;
  qo.kmeans.iterations = st.iterations;
  lamia::PaletteQuantizer q(qo);
  const double t0 = now(), c0 = cpu_seconds();
  const auto report = q.fit(lamia::PaletteSource::from_reader(reader));
  const double fit_s = now() - t0, fit_cpu = cpu_seconds() - c0;
  const auto codes = q.training_codes().to(torch::kInt32).contiguous();
  std::ofstream out(st.codes(n), std::ios::binary);
  out.write(reinterpret_cast<const char*>(codes.data_ptr<std::int32_t>()), codes.numel() * 4);
  if (!out) throw std::runtime_error("cannot write " + st.codes(n).string());
  return {{"seconds", fit_s},
          {"cpu_seconds", fit_cpu},
          {"phase_seconds", report.phase_seconds},
          {"colliding_items", report.num_colliding_items},
          {"peak_rss_mib", peak_rss_mib()}};
}

std::vector<std::int32_t> read_codes(std::int64_t n, const Settings& st) {
  std::vector<std::int32_t> codes(std::size_t(n * st.L));
  std::ifstream in(st.codes(n), std::ios::binary);
  in.read(reinterpret_cast<char*>(codes.data()), std::streamsize(codes.size() * 4));
  if (!in) throw std::runtime_error("cannot read " + st.codes(n).string() + " (run the quantize stage first)");
  return codes;
}

struct Trie {
  lamia::SemanticIdTable table;
  lamia::CodeVocabulary vocab;
  lamia::DeviceTrie trie;
};

Trie build_trie(const std::vector<std::int32_t>& codes, std::int64_t n, const Settings& st) {
  Trie t;
  t.table = lamia::SemanticIdTable::from_codes(codes.data(), n, st.L, std::vector<std::int64_t>(std::size_t(st.L), st.k));
  t.vocab = lamia::CodeVocabulary::for_table(t.table);
  t.trie = lamia::DeviceTrie(t.table, t.vocab, torch::kCPU);
  return t;
}

nlohmann::json stage_trie(std::int64_t n, const Settings& st) {
  const auto codes = read_codes(n, st);
  const double t0 = now(), c0 = cpu_seconds();
  const Trie t = build_trie(codes, n, st);
  return {{"seconds", now() - t0},
          {"cpu_seconds", cpu_seconds() - c0},
          {"nodes", t.table.num_nodes()},
          {"colliding_items", t.table.num_colliding_items()},
          {"peak_rss_mib", peak_rss_mib()}};
}

nlohmann::json stage_decode(std::int64_t n, const Settings& st) {
  const auto codes = read_codes(n, st);
  const Trie t = build_trie(codes, n, st);
  auto model = lamia::bench::random_model(t.vocab, st.rec_hidden, st.rec_layers);
  const auto h = lamia::encode_histories(t.table, t.vocab, lamia::bench::random_histories(st.users, n, 2), 20);
  lamia::BeamSearchOptions opt;
  opt.beam_width = st.beam;
  opt.top_k = 10;
  opt.batch_size = st.users;
  lamia::beam_search(*model, t.trie, h, opt);  // warm-up
  double best = 1e30, best_cpu = 0;
  for (int r = 0; r < 2; ++r) {
    const double t0 = now(), c0 = cpu_seconds();
    lamia::beam_search(*model, t.trie, h, opt);
    if (now() - t0 < best) best = now() - t0, best_cpu = cpu_seconds() - c0;
  }
  return {{"seconds", best}, {"cpu_seconds", best_cpu}, {"users_per_s", st.users / best}, {"peak_rss_mib", peak_rss_mib()}};
}

// Two `lamia export-palettes --shard i/2` processes against one process on the same folder.
void shard_comparison(const std::string& lamia_exe, std::int64_t n, const Settings& st) {
  const fs::path base = st.workdir / fmt::format("shards_{}", n);
  fs::remove_all(base);
  const fs::path setup = base / "setup", one = base / "one", a = base / "a", b = base / "b";
  const auto sets = fmt::format(
      "--set dataset.synthetic.num_items={} --set dataset.synthetic.num_users=1000 --set model.scratch.hidden_size={} "
      "--set model.scratch.num_layers={} --set model.scratch.ffn_dim={} --set palette.trainer.max_steps=2 --quiet",
      n, st.hidden, st.layers, st.ffn);
  double t0 = now();
  if (std::system(fmt::format("'{}' train-palette '{}' {}", lamia_exe, setup.string(), sets).c_str()) != 0) {
    fmt::print("shards: lamia train-palette failed\n");
    return;
  }
  fmt::print("\nshards, {} items: run folder (dataset, tokenizer, palette encoder, 2 steps) in {:.1f}s\n", n, now() - t0);
  for (const auto& dir : {one, a, b}) fs::copy(setup, dir, fs::copy_options::recursive);
  const auto cmd = [&](const fs::path& dir, const std::string& extra) {
    return fmt::format("'{}' export-palettes '{}' --quiet {} > /dev/null", lamia_exe, dir.string(), extra);
  };
  const auto single = lamia::bench::run_concurrently({cmd(one, "")}).at(0);
  const auto pair = lamia::bench::run_concurrently(
      {"OMP_NUM_THREADS=1 " + cmd(a, "--shard 0/2"), "OMP_NUM_THREADS=1 " + cmd(b, "--shard 1/2")});
  for (const auto& e : fs::directory_iterator(b / "shards")) fs::copy(e.path(), a / "shards" / e.path().filename());
  const auto merge = lamia::bench::run_concurrently({cmd(a, "--merge")}).at(0);
  const bool ok = single.status == 0 && pair[0].status == 0 && pair[1].status == 0 && merge.status == 0;
  const bool same = ok && std::system(fmt::format("cmp -s '{}' '{}'", (one / "palettes.bin").string(),
                                                  (a / "palettes.bin").string())
                                          .c_str()) == 0;
  const double two_wall = std::max(pair[0].wall, pair[1].wall);
  fmt::print("  one process ({} threads): {:.1f}s wall, {:.1f}s CPU, peak RSS {:.0f} MiB\n", lamia::default_thread_count(),
             single.wall, single.user + single.sys, single.max_rss_mib);
  fmt::print("  two --shard processes (1 thread each, at once): {:.1f}s / {:.1f}s wall, {:.1f}s CPU in all, peak RSS "
             "{:.0f} / {:.0f} MiB; merge {:.1f}s\n",
             pair[0].wall, pair[1].wall, pair[0].user + pair[0].sys + pair[1].user + pair[1].sys, pair[0].max_rss_mib,
             pair[1].max_rss_mib, merge.wall);
  fmt::print("  two / one: wall x{:.2f} (with the merge x{:.2f}), CPU x{:.2f}; merged palettes.bin {} the unsplit one{}\n",
             two_wall / single.wall, (two_wall + merge.wall) / single.wall,
             (pair[0].user + pair[0].sys + pair[1].user + pair[1].sys) / (single.user + single.sys),
             same ? "byte-identical to" : "DIFFERS from", ok ? "" : " (a command failed)");
}

}  // namespace

int main(int argc, char** argv) try {
  Settings st;
  std::vector<std::int64_t> sizes{10000, 100000, 1000000};
  std::vector<std::string> stages{"export", "quantize", "trie", "decode"};
  std::string child_stage, lamia_exe;
  std::int64_t child_n = 0, shard_items = 0;
  bool keep_files = false;
  const auto list = [](const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string t; std::getline(in, t, ',');) out.push_back(t);
    return out;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
      return argv[++i];
    };
    auto num = [&] { return std::stoll(next()); };
    if (a == "--sizes") {
      sizes.clear();
      for (const auto& t : list(next())) sizes.push_back(std::stoll(t));
    } else if (a == "--stages") stages = list(next());
    else if (a == "--workdir") st.workdir = next();
    else if (a == "--keep-files") keep_files = true;
    else if (a == "--threads") st.threads = static_cast<int>(num());
    else if (a == "--hidden") st.hidden = num();
    else if (a == "--layers") st.layers = num();
    else if (a == "--ffn") st.ffn = num();
    else if (a == "--positions") st.L = num();
    else if (a == "--pca-dim") st.d = num();
    else if (a == "--codes") st.k = num();
    else if (a == "--iterations") st.iterations = static_cast<int>(num());
    else if (a == "--bpe-items") st.bpe_items = num();
    else if (a == "--users") st.users = num();
    else if (a == "--beam") st.beam = num();
    else if (a == "--rec-hidden") st.rec_hidden = num();
    else if (a == "--rec-layers") st.rec_layers = num();
    else if (a == "--lamia") lamia_exe = next();
    else if (a == "--shard-items") shard_items = num();
    else if (a == "--stage") {
      child_stage = next();
    } else if (a == "--n") {
      child_n = num();
    } else {
      std::cerr << "unknown argument " << a << " (see the comment at the top of bench/pipeline_scaling.cpp)\n";
      return 1;
    }
  }
  st.threads = lamia::set_torch_threads(st.threads);
  if (!child_stage.empty()) {
    // As the lamia tool does: freed blocks stay in the heap, so the export's per-batch tensors do not
    // fault fresh pages in on every batch (half the 1M export's CPU time was system time without it).
    lamia::keep_freed_memory();
    torch::NoGradGuard no_grad;
    nlohmann::json r = child_stage == "export"     ? stage_export(child_n, st)
                       : child_stage == "quantize" ? stage_quantize(child_n, st)
                       : child_stage == "trie"     ? stage_trie(child_n, st)
                       : child_stage == "decode"   ? stage_decode(child_n, st)
                                                   : throw std::runtime_error("unknown stage " + child_stage);
    std::cout << r.dump() << std::endl;
    return 0;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  // The children's OpenMP workers sleep instead of spinning when they wait: on a shared machine
  // spinning workers made the many small operations of k-means++ and the forward passes several
  // times slower (docs/quantize.md). Set before the children start (OpenMP reads it at load).
  setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
  fs::create_directories(st.workdir);
  fmt::print("bench_pipeline_scaling: encoder hidden {} x {} layers (ffn {}, random weights), L = {}, PCA {} -> {}, "
             "k = {}, {} Lloyd iterations; decoding {} users, beam {}, recommender hidden {} x {} layers (random)\n{}\n",
             st.hidden, st.layers, st.ffn, st.L, st.hidden, st.d, st.k, st.iterations, st.users, st.beam, st.rec_hidden,
             st.rec_layers, lamia::thread_summary(st.threads));
  fmt::print("OMP_WAIT_POLICY={}\n", std::getenv("OMP_WAIT_POLICY"));
  std::map<std::string, std::vector<double>> xs, times, cpu, rss;
  const auto self = lamia::bench::self_exe();
  for (const auto n : sizes) {
    for (const auto& stage : stages) {
      const auto r = lamia::bench::run_json(fmt::format("'{}' --stage {} --n {} {}", self, stage, n, st.args()));
      if (r.is_null()) {
        fmt::print("n={} {}: the child failed\n", n, stage);
        continue;
      }
      std::string extra;
      if (stage == "export")
        extra = fmt::format(" (catalog {:.1f}s, tokenize {:.1f}s, {:.0f} items/s)", r["catalog_seconds"].get<double>(),
                            r["tokenize_seconds"].get<double>(), n / r["seconds"].get<double>());
      if (stage == "quantize") {
        extra = fmt::format(" (colliding items {}; phases", r["colliding_items"].get<std::int64_t>());
        for (const auto& [name, sec] : r["phase_seconds"].items()) extra += fmt::format(" {} {:.1f}s", name, sec.get<double>());
        extra += ")";
      }
      if (stage == "trie") extra = fmt::format(" ({} nodes)", r["nodes"].get<std::int64_t>());
      if (stage == "decode") extra = fmt::format(" ({:.1f} users/s)", r["users_per_s"].get<double>());
      fmt::print("n={:>8} {:<8} {:8.2f}s wall {:8.2f}s CPU  peak RSS {:6.0f} MiB{}\n", n, stage,
                 r["seconds"].get<double>(), r["cpu_seconds"].get<double>(), r["peak_rss_mib"].get<double>(), extra);
      xs[stage].push_back(double(n));
      times[stage].push_back(r["seconds"].get<double>());
      cpu[stage].push_back(r["cpu_seconds"].get<double>());
      rss[stage].push_back(r["peak_rss_mib"].get<double>());
    }
    if (!keep_files) {
      fs::remove(st.palettes(n));
      fs::remove(st.codes(n));
    }
  }
  fmt::print("\nslope of log(wall time), log(CPU time) and log(peak RSS) against log(n) (1 = linear):\n");
  for (const auto& stage : stages) {
    if (xs[stage].size() < 2) continue;
    const auto slope = [&](const std::vector<double>& y) { return lamia::bench::loglog_slope(xs[stage], y); };
    fmt::print("  {:<8} wall {:5.2f}  CPU {:5.2f}  peak RSS {:5.2f}  (sizes {})\n", stage, slope(times[stage]),
               slope(cpu[stage]), slope(rss[stage]), fmt::join(xs[stage], ", "));
  }
  if (shard_items > 0) {
    if (lamia_exe.empty()) throw std::runtime_error("--shard-items needs --lamia PATH");
    shard_comparison(lamia_exe, shard_items, st);
  }
  return 0;
} catch (const std::exception& e) {
  std::cerr << "bench_pipeline_scaling: " << e.what() << "\n";
  return 1;
}
