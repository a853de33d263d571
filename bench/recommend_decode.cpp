// bench_recommend_decode: users per second of batched trie-constrained beam search with the KV cache
// against (a) the same search without the cache (the full forward re-run every step, as RecBench's
// beam mode) and (b) a C++ emulation of the Python peers' loop (LC-Rec / MiniOneRec: Hugging Face
// `generate` with a `prefix_allowed_tokens_fn`): histories expanded to every beam before the first
// pass, then per step one model call (with the cache, as `generate` does) and, per beam, a prefix
// function that walks the trie on the CPU (SemanticIdTable::allowed_next) and fills an
// allowed-token mask over the vocabulary, then a top-W over W x V. The emulation runs the Python
// loop's work in C++ (no interpreter overhead), so the ratio against it is a lower bound of the
// gain over the Python peers; bench/recommend_decode.py measures against a real Python loop over pylamia.
// Also: the share of decoding time outside the model's forward, and exact full-catalog scoring
// users/s at 2.4k, 25k and 100k items (random codes, L = 4, k = 256, a small random model).
//
//   bench_recommend_decode [--quick] [--device cpu|cuda] [--users 64] [--beam 20] [--hidden 64] [--layers 2]
#include "bench_util.hpp"

#include <lamia/nn/decoder.hpp>
#include <lamia/nn/threads.hpp>
#include <lamia/recommend/beam_search.hpp>
#include <lamia/ids/code_vocabulary.hpp>
#include <lamia/recommend/exact_scoring.hpp>
#include <lamia/ids/trie.hpp>

#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace lamia;
using Clock = std::chrono::steady_clock;

namespace {

torch::Device g_device = torch::kCPU;

void sync() {
  if (g_device.is_cuda()) torch::cuda::synchronize();
}

double seconds(const std::function<void()>& f) {
  sync();
  const auto t0 = Clock::now();
  f();
  sync();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

using lamia::bench::random_histories;
using lamia::bench::random_table;

Decoder random_model(const CodeVocabulary& vocab, std::int64_t hidden, std::int64_t layers) {
  return lamia::bench::random_model(vocab, hidden, layers, g_device);
}

// The peers' loop (see the file comment). Returns [B, K] items, to check that it finds what ours does.
torch::Tensor reference_beam_search(DecoderImpl& model, const SemanticIdTable& table, const CodeVocabulary& vocab,
                                    const EncodedHistories& h, std::int64_t W, std::int64_t K, double* forward_s) {
  torch::NoGradGuard no_grad;
  const auto B = h.tokens.size(0), V = vocab.size(), L1 = vocab.num_levels();
  auto tokens = h.tokens.to(g_device).repeat_interleave(W, 0);
  auto keys = h.key_mask.to(g_device).repeat_interleave(W, 0);
  auto len = h.lengths.to(g_device).repeat_interleave(W, 0);
  KVCache cache;
  auto forward = [&](DecoderInput in) {
    torch::Tensor logp;
    *forward_s += seconds([&] {
      in.compute_logits = false;
      auto out = model.forward(in, &cache);
      logp = torch::log_softmax(model.lm_logits(out.last_hidden_state.select(1, -1)).to(torch::kFloat), -1);
    });
    return logp;
  };
  DecoderInput first;
  first.input_ids = tokens;
  first.position_ids = h.position_ids.to(g_device).repeat_interleave(W, 0);
  first.attention_mask = causal_padded_mask(keys);
  auto logp = forward(first);
  // Beam scores: one live beam per user at the start (as generate's initial -1e9).
  auto beam = torch::full({B, W}, -std::numeric_limits<float>::infinity());
  beam.select(1, 0).zero_();
  beam = beam.view({-1}).to(g_device);
  std::vector<std::vector<SemanticIdTable::Token>> prefix(std::size_t(B * W));
  torch::Tensor items;
  for (std::int64_t depth = 0; depth < L1; ++depth) {
    // prefix_allowed_tokens_fn per beam: walk the trie on the CPU, fill the mask.
    auto mask = torch::full({B * W, V}, -std::numeric_limits<float>::infinity());
    auto beam_cpu = beam.cpu();
    const auto* pb = beam_cpu.data_ptr<float>();
    auto* pm = mask.data_ptr<float>();
    for (std::int64_t i = 0; i < B * W; ++i) {
      if (pb[i] == -std::numeric_limits<float>::infinity()) continue;
      for (auto code : table.allowed_next(prefix[std::size_t(i)])) pm[i * V + vocab.token(depth, code)] = 0;
    }
    auto scores = (beam.unsqueeze(1) + logp + mask.to(g_device)).view({B, W * V});
    auto top = scores.topk(W, 1);
    auto best = std::get<0>(top), idx = std::get<1>(top);
    auto parent = (idx.div(V, "floor") + (torch::arange(B, idx.options()) * W).unsqueeze(1)).view({-1});
    auto token = idx.remainder(V).view({-1});
    beam = best.view({-1});
    auto parent_cpu = parent.cpu(), token_cpu = token.cpu();
    const auto* pp = parent_cpu.data_ptr<std::int64_t>();
    const auto* pt = token_cpu.data_ptr<std::int64_t>();
    std::vector<std::vector<SemanticIdTable::Token>> next(prefix.size());
    for (std::int64_t i = 0; i < B * W; ++i) {
      next[std::size_t(i)] = prefix[std::size_t(pp[i])];
      next[std::size_t(i)].push_back(SemanticIdTable::Token(vocab.code_of(pt[i]).second));
    }
    prefix.swap(next);
    if (depth + 1 == L1) break;
    cache.reorder(parent);
    DecoderInput s;
    s.input_ids = token.unsqueeze(1);
    s.position_ids = (len + depth).unsqueeze(1);
    s.attention_mask = torch::cat({keys, torch::ones({B * W, depth + 1}, keys.options())}, 1).unsqueeze(1);
    logp = forward(s);
  }
  items = torch::full({B, K}, -1, torch::kLong);
  auto beam_cpu = beam.cpu();
  const auto* pb = beam_cpu.data_ptr<float>();
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t k = 0; k < K; ++k)
      if (pb[b * W + k] > -std::numeric_limits<float>::infinity())
        items[b][k] = table.item(prefix[std::size_t(b * W + k)]);
  return items;
}

double same_sets(const torch::Tensor& a, const torch::Tensor& b) {
  std::int64_t same = 0;
  for (std::int64_t r = 0; r < a.size(0); ++r) {
    std::set<std::int64_t> x, y;
    for (std::int64_t k = 0; k < a.size(1); ++k) {
      x.insert(a[r][k].item<std::int64_t>());
      y.insert(b[r][k].item<std::int64_t>());
    }
    same += x == y;
  }
  return double(same) / double(a.size(0));
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::int64_t users = 64, beam = 20, hidden = 64, layers = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--quick") quick = true;
    else if (a == "--device") g_device = torch::Device(next());
    else if (a == "--cuda") g_device = torch::kCUDA;
    else if (a == "--users") users = std::stoll(next());
    else if (a == "--beam") beam = std::stoll(next());
    else if (a == "--hidden") hidden = std::stoll(next());
    else if (a == "--layers") layers = std::stoll(next());
    else {
      fmt::print(stderr, "usage: bench_recommend_decode [--quick] [--device cpu|cuda] [--users N] [--beam W] "
                         "[--hidden D] [--layers N]\n");
      return 2;
    }
  }
  set_torch_threads();
  const std::int64_t L = 4, k = 256, K = 10;
  fmt::print("device {}  torch threads {}  model: hidden {} layers {} heads 4 (random)  L = {}, k = {}, history 20 "
             "items, beam {}, top {}\n",
             g_device.str(), torch::get_num_threads(), hidden, layers, L, k, beam, K);

  // ---- Beam search at 2.4k items (amazon-office's catalog size).
  {
    const std::int64_t n = 2420;
    auto table = random_table(n, L, k, 1);
    auto vocab = CodeVocabulary::for_table(table);
    auto model = random_model(vocab, hidden, layers);
    DeviceTrie trie(table, vocab, g_device);
    auto h = encode_histories(table, vocab, random_histories(users, n, 2), 20);
    BeamSearchOptions opt;
    opt.beam_width = beam;
    opt.top_k = K;
    opt.batch_size = users;
    beam_search(*model, trie, h, opt);  // warm up
    BeamSearchResult cached;
    const int reps = quick ? 1 : 3;
    double t_cached = 1e30;
    for (int r = 0; r < reps; ++r) t_cached = std::min(t_cached, seconds([&] { cached = beam_search(*model, trie, h, opt); }));
    opt.profile = true;
    auto profiled = beam_search(*model, trie, h, opt);
    opt.profile = false;
    opt.use_cache = false;
    BeamSearchResult full;
    const double t_full = seconds([&] { full = beam_search(*model, trie, h, opt); });
    double ref_forward = 0;
    torch::Tensor ref_items;
    const double t_ref = seconds([&] { ref_items = reference_beam_search(*model, table, vocab, h, std::max(beam, K), K, &ref_forward); });
    const double outside = 1.0 - profiled.stats.forward_seconds / profiled.stats.total_seconds;
    fmt::print("\nbeam search, {} items ({} trie nodes), {} users:\n", n, trie.num_nodes(), users);
    fmt::print("  trie beam search, KV cache        {:9.1f} users/s\n", users / t_cached);
    fmt::print("  (a) same search, no cache          {:9.1f} users/s   cache gain {:.2f}x\n", users / t_full, t_full / t_cached);
    fmt::print("  (b) per-beam prefix fn + mask      {:9.1f} users/s   gain {:.2f}x  (C++ emulation of HF generate + "
               "prefix_allowed_tokens_fn; its time outside the forward {:.0f}%)\n",
               users / t_ref, t_ref / t_cached, 100.0 * (1.0 - ref_forward / t_ref));
    fmt::print("  time outside the model forward (profiled, {} forwards): {:.1f}% of {:.3f} s\n",
               profiled.stats.forward_calls, 100.0 * outside, profiled.stats.total_seconds);
    fmt::print("  (b) runs the peers' per-beam work in C++: against their Python loop the gain is at least this\n");
    fmt::print("  same top-{} sets: cached vs uncached {:.0f}%, cached vs (b) {:.0f}%\n", K,
               100.0 * same_sets(cached.items, full.items), 100.0 * same_sets(cached.items, ref_items));
  }

  // ---- Exact scoring (and beam search) at 2.4k, 25k, 100k items.
  fmt::print("\nexact full-catalog scoring (the history once per user, the trie level by level; max_rows {}):\n",
             ExactScoringOptions{}.max_rows);
  for (std::int64_t n : {std::int64_t(2420), std::int64_t(25000), std::int64_t(100000)}) {
    auto table = random_table(n, L, k, 3);
    auto vocab = CodeVocabulary::for_table(table);
    auto model = random_model(vocab, hidden, layers);
    DeviceTrie trie(table, vocab, g_device);
    std::int64_t fed = 0;
    for (std::int64_t d = 1; d <= L; ++d) fed += trie.depth_size(d);
    const std::int64_t u = quick ? 1 : (n <= 2420 ? 8 : n <= 25000 ? 2 : 1);
    auto h = encode_histories(table, vocab, random_histories(u, n, 4), 20);
    score_all_items(*model, trie, encode_histories(table, vocab, random_histories(1, n, 5), 20));  // warm up
    torch::Tensor exact;
    const double t_exact = seconds([&] { exact = score_all_items(*model, trie, h); });
    BeamSearchOptions opt;
    opt.beam_width = beam;
    opt.top_k = K;
    BeamSearchResult r;
    const double t_beam = seconds([&] { r = beam_search(*model, trie, h, opt); });
    // Consistency at scale: the beam's scores are the exact scores of the same items.
    auto beam_scores_exact = exact.cpu().gather(1, r.items.clamp_min(0));
    const double gap = (beam_scores_exact - r.scores).abs().max().item<double>();
    fmt::print("  {:6d} items ({:6d} nodes fed per user): exact {:8.2f} users/s ({:.0f} node rows/s), beam {:8.1f} "
               "users/s (exact/beam time {:.0f}x), beam-vs-exact top-{} agreement {:.0f}% ({} users; random model), "
               "max |beam score - exact score| {:.1e}\n",
               n, fed, u / t_exact, double(fed * u) / t_exact, u / t_beam, t_exact / t_beam, K,
               100.0 * beam_exact_agreement(r.items, exact, K), u, gap);
  }
  return 0;
}
