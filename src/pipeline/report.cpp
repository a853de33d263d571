// `lamia report`: the intermediates of python/pylamia/report.py and the call that runs it
// (include/lamia/pipeline/report.hpp, docs/report.md).
#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/palette/palette_file.hpp>
#include <lamia/pipeline/manifest.hpp>
#include <lamia/pipeline/report.hpp>
#include <lamia/quantize/pca.hpp>
#include <lamia/ids/semantic_id_table.hpp>

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <sstream>

#include <sys/wait.h>
#include <unistd.h>

namespace lamia {
namespace fs = std::filesystem;
namespace {

// 5 significant digits: the map's coordinates are for the eye, and the file stays small.
double round5(double v) { return std::strtod(fmt::format("{:.5g}", v).c_str(), nullptr); }

// The artifact's path when the run's manifest records it (the file must then be there), else empty.
fs::path recorded(const fs::path& run_dir, const Manifest& manifest, const std::string& artifact) {
  const auto* entry = manifest.artifact(artifact);
  if (!entry) return {};
  const auto p = run_dir / entry->path;
  if (!fs::exists(p))
    throw IOError(fmt::format("{}: missing (recorded as artifact '{}' in {}; rerun `lamia run` to recompute it)",
                              p.string(), artifact, (run_dir / "manifest.json").string()));
  return p;
}

nlohmann::json unavailable(const std::string& reason) { return {{"available", false}, {"reason", reason}}; }

// Runs argv with stdout and stderr into one pipe; returns the exit status (-1: killed by a signal,
// 127: could not be started) and the output.
std::pair<int, std::string> run_process(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe(fds) != 0) throw IOError(fmt::format("report: cannot create a pipe: {}", std::strerror(errno)));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw IOError(fmt::format("report: cannot start a process: {}", std::strerror(errno)));
  }
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execvp(args[0], args.data());
    const std::string message =
        fmt::format("cannot run the Python interpreter '{}': {} (set LAMIA_PYTHON to one with numpy and matplotlib)\n",
                    argv[0], std::strerror(errno));
    [[maybe_unused]] auto n = ::write(2, message.data(), message.size());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string output;
  char buffer[4096];
  for (;;) {
    const auto n = ::read(fds[0], buffer, sizeof(buffer));
    if (n > 0) output.append(buffer, std::size_t(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

}  // namespace

void require_run_folder(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw IOError(fmt::format("{}: not a folder (expected a `lamia run` folder)", dir.string()));
  if (!fs::exists(dir / "manifest.json"))
    throw IOError(fmt::format("{}: not a lamia run folder (no manifest.json; `lamia run --out {}` makes one)",
                              dir.string(), dir.string()));
  Manifest::load(dir);  // ParseError naming the file when it is not a manifest
}

nlohmann::json report_item_map(const fs::path& run_dir, const ReportMapOptions& options) {
  if (options.max_items < 2) throw ValueError(fmt::format("report: map items must be >= 2, got {}", options.max_items));
  const auto manifest = Manifest::load(run_dir);
  const auto palettes_path = recorded(run_dir, manifest, "palettes");
  if (palettes_path.empty()) return unavailable("the run has no palettes.bin (its export stage did not run)");
  const auto ids_dir = recorded(run_dir, manifest, "semantic_ids");
  if (ids_dir.empty()) return unavailable("the run has no semantic IDs (its quantize stage did not run)");
  const auto table_path = ids_dir / (options.tokenizer + ".bin");
  if (!fs::exists(table_path))
    throw IOError(fmt::format("{}: missing (the codes of tokenizer '{}')", table_path.string(), options.tokenizer));

  PaletteFileReader reader(palettes_path);  // checks the crc32
  const auto table = SemanticIdTable::load(table_path);
  const std::int64_t n = reader.num_items(), L = reader.palette_size(), D = reader.dim();
  if (table.num_items() != n || table.num_levels() != L)
    throw ValueError(fmt::format("report: {} has {} items x {} positions but {} has {} items x {} codes: the files "
                                 "come from different runs",
                                 palettes_path.string(), n, L, table_path.string(), table.num_items(),
                                 table.num_levels()));
  if (n < 2) throw ValueError(fmt::format("report: {} has {} item(s); a map needs two or more", palettes_path.string(), n));

  // A seeded sample without replacement (a partial Fisher-Yates shuffle), in item order.
  std::vector<std::int64_t> items(static_cast<std::size_t>(n));
  std::iota(items.begin(), items.end(), std::int64_t{0});
  const std::int64_t m = std::min(n, options.max_items);
  if (m < n) {
    std::mt19937_64 rng(options.seed);
    for (std::int64_t i = 0; i < m; ++i) {
      std::uniform_int_distribution<std::int64_t> pick(i, n - 1);
      std::swap(items[std::size_t(i)], items[std::size_t(pick(rng))]);
    }
    items.resize(std::size_t(m));
    std::sort(items.begin(), items.end());
  }
  std::vector<float> palettes(std::size_t(m * L * D));
  for (std::int64_t i = 0; i < m; ++i) {
    const auto item = items[std::size_t(i)];
    reader.read_into(item, item + 1, palettes.data() + i * L * D);
  }
  const auto codes = table.codes();  // n x L int64
  const auto codes_a = codes.accessor<std::int64_t, 2>();

  nlohmann::json out = {{"available", true},
                        {"tokenizer", options.tokenizer},
                        {"num_items", n},
                        {"sampled", m},
                        {"seed", options.seed},
                        {"palette_dim", D},
                        {"palettes", palettes_path.string()},
                        {"codes", table_path.string()},
                        {"items", items}};
  out["positions"] = nlohmann::json::array();
  const std::int64_t dims = std::min<std::int64_t>(2, D);
  std::vector<float> x(std::size_t(m * D)), projected(std::size_t(m * dims));
  for (std::int64_t l = 0; l < L; ++l) {
    for (std::int64_t i = 0; i < m; ++i)
      std::copy_n(palettes.data() + (i * L + l) * D, D, x.data() + i * D);
    const auto pca = fit_pca(x.data(), m, D, dims);
    pca.transform(x.data(), m, projected.data());
    nlohmann::json xs = nlohmann::json::array(), ys = nlohmann::json::array(), cs = nlohmann::json::array();
    for (std::int64_t i = 0; i < m; ++i) {
      xs.push_back(round5(projected[std::size_t(i * dims)]));
      ys.push_back(dims > 1 ? round5(projected[std::size_t(i * dims + 1)]) : 0.0);
      cs.push_back(codes_a[items[std::size_t(i)]][l]);
    }
    auto ratio = pca.explained_variance_ratio();
    for (auto& r : ratio) r = round5(r);
    out["positions"].push_back({{"position", l},
                                {"codebook_size", table.codebook_sizes()[std::size_t(l)]},
                                {"explained_variance_ratio", ratio},
                                {"x", std::move(xs)},
                                {"y", std::move(ys)},
                                {"code", std::move(cs)}});
  }
  return out;
}

nlohmann::json report_id_lengths(const fs::path& run_dir) {
  const auto manifest = Manifest::load(run_dir);
  nlohmann::json tokenizers = nlohmann::json::object();
  const auto dir = recorded(run_dir, manifest, "recommenders");
  if (!dir.empty()) {
    std::vector<fs::path> names;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_directory()) names.push_back(e.path());
    std::sort(names.begin(), names.end());
    for (const auto& p : names) {
      const auto file = p / "semantic_ids.bin";
      if (!fs::exists(file)) continue;
      const auto table = SemanticIdTable::load(file);
      auto sizes = table.codebook_sizes();
      sizes.resize(std::size_t(table.num_levels()));
      tokenizers[p.filename().string()] = {
          {"levels", table.num_levels()}, {"id_length", table.id_length()}, {"codebook_sizes", sizes}};
    }
  }
  return {{"run", run_dir.string()}, {"tokenizers", tokenizers}};
}

std::string report_python() {
  if (const char* p = std::getenv("LAMIA_PYTHON"); p && *p) return p;
#ifdef LAMIA_PYTHON_EXECUTABLE
  return LAMIA_PYTHON_EXECUTABLE;
#else
  return "python3";
#endif
}

fs::path find_report_script(const fs::path& executable_dir) {
  std::vector<fs::path> tried;
  if (const char* p = std::getenv("LAMIA_REPORT_SCRIPT"); p && *p) {
    if (!fs::is_regular_file(p)) throw IOError(fmt::format("{}: missing (set by LAMIA_REPORT_SCRIPT)", p));
    return p;
  }
  if (!executable_dir.empty()) tried.push_back(executable_dir / ".." / "share" / "lamia" / "report.py");
#ifdef LAMIA_REPORT_SOURCE_SCRIPT
  tried.push_back(LAMIA_REPORT_SOURCE_SCRIPT);
#endif
  // This file is src/pipeline/report.cpp of the source tree lamia was built from.
  tried.push_back(fs::path(__FILE__).parent_path() / ".." / ".." / "python" / "pylamia" / "report.py");
  for (const auto& p : tried)
    if (fs::is_regular_file(p)) return p.lexically_normal();
  std::string list;
  for (const auto& p : tried) list += (list.empty() ? "" : ", ") + p.lexically_normal().string();
  throw IOError(fmt::format("report: cannot find report.py (tried {}; set LAMIA_REPORT_SCRIPT)", list));
}

ReportFiles write_report(const fs::path& run_dir, const ReportOptions& options, const fs::path& executable_dir) {
  require_run_folder(run_dir);
  for (const auto& r : options.runs) require_run_folder(r);
  const auto script = options.script.empty() ? find_report_script(executable_dir) : options.script;
  const auto python = options.python.empty() ? report_python() : options.python;
  const auto prefix = options.out_prefix.empty() ? run_dir / "report" : options.out_prefix;

  const auto work = run_dir / "report";
  fs::create_directories(work);
  const auto map_path = work / "map.json";
  write_text_atomically(map_path, report_item_map(run_dir, options.map).dump() + "\n");
  nlohmann::json lengths = nlohmann::json::array({report_id_lengths(run_dir)});
  for (const auto& r : options.runs) lengths.push_back(report_id_lengths(r));
  const auto lengths_path = work / "id_lengths.json";
  write_text_atomically(lengths_path, lengths.dump(1) + "\n");

  std::vector<std::string> argv = {python,   script.string(), run_dir.string(), "--out", prefix.string(),
                                   "--map", map_path.string(), "--id-lengths", lengths_path.string()};
  if (!options.runs.empty()) {
    argv.push_back("--runs");
    for (const auto& r : options.runs) argv.push_back(r.string());
  }
  auto [status, output] = run_process(argv);
  const auto lines = lines_of(output);
  if (status != 0) {
    std::string last = lines.empty() ? fmt::format("exit status {}, no output", status) : lines.back();
    const std::string tag = "report.py: error: ";
    if (last.rfind(tag, 0) == 0) last = last.substr(tag.size());
    if (status == 127) throw IOError("report: " + last);
    throw ValueError(fmt::format("report: {}", last));
  }
  ReportFiles files{fs::path(prefix.string() + ".md"), fs::path(prefix.string() + ".html"), {}};
  for (const auto& line : lines)
    if (line.rfind("written: ", 0) != 0) files.log += line + "\n";
  return files;
}

}  // namespace lamia
