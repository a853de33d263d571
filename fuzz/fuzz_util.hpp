#pragma once
// Shared helpers of lamia's libFuzzer targets (fuzz/fuzz_<parser>.cpp).
//
// Each target turns the fuzzer's bytes into one or more input files in a private temporary folder
// and calls a parser on them. A lamia exception (ParseError, ValueError, IOError, IndexError) is
// the clean outcome for bad input; anything else is a finding: a crash or sanitizer report, an
// exception of another type (a raw library exception reached the caller), a hang (-timeout) or
// unbounded memory (-rss_limit_mb), or a loaded dataset that breaks a documented invariant
// (docs/data.md, "Bad input"), which check_dataset() turns into an abort.
//
// Several files from one input: the parts are separated by kFileSeparator (the seed corpus,
// fuzz/make_seeds.py, writes them so); a part that is absent gets the fixed valid content of the
// format's `ok` sample in tests/data.
#include <lamia/core/errors.hpp>
#include <lamia/data/catalog.hpp>
#include <lamia/data/detail/text_io.hpp>
#include <lamia/data/interactions.hpp>
#include <lamia/data/loaders/limits.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#ifndef LAMIA_TEST_DATA_DIR
#error "LAMIA_TEST_DATA_DIR must name tests/data (fuzz/CMakeLists.txt sets it)"
#endif

namespace lamia::fuzz {

namespace fs = std::filesystem;

/// Separates the files of one input (fuzz/make_seeds.py uses the same bytes).
inline constexpr std::string_view kFileSeparator = "\n--lamia-fuzz-next-file--\n";

/// Splits data at kFileSeparator into at most max_parts parts (the last keeps any further separators).
inline std::vector<std::string_view> split(const std::uint8_t* data, std::size_t size, std::size_t max_parts) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    auto at = rest.find(kFileSeparator);
    if (at == std::string_view::npos) break;
    parts.push_back(rest.substr(0, at));
    rest.remove_prefix(at + kFileSeparator.size());
  }
  parts.push_back(rest);
  return parts;
}

/// Reports a broken invariant and aborts (libFuzzer saves the input as a crash).
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "lamia fuzz: invariant broken: %s\n", what.c_str());
  std::abort();
}

/// The contents of tests/data/<relative> (the fixed content of a part the input does not give).
inline std::string test_file(const std::string& relative) {
  const fs::path path = fs::path(LAMIA_TEST_DATA_DIR) / relative;
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read " + path.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// A folder of this process under $TMPDIR (or /tmp), removed at exit; fresh_dir() empties it.
class Scratch {
 public:
  Scratch() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/lamia-fuzz-XXXXXX";
    if (!mkdtemp(pattern.data())) fail("mkdtemp failed for " + pattern);
    root_ = pattern;
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  /// An empty folder <root>/<name> (what a previous input left there is removed).
  fs::path fresh_dir(const std::string& name = "input") const {
    const fs::path dir = root_ / name;
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir);
    return dir;
  }

 private:
  fs::path root_;
};

inline const Scratch& scratch() {
  static const Scratch s;
  return s;
}

inline void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) fail("cannot write " + path.string());
}

/// Runs f; a lamia exception is the expected outcome for bad input and is swallowed. Any other
/// exception propagates (libFuzzer reports the uncaught exception as a crash). The message must
/// not be empty, and when max_message_bytes > 0 not longer than that (the loaders quote values
/// through lamia::preview: a message never carries a whole huge value).
template <class F>
void expect_clean(F&& f, std::size_t max_message_bytes = 0) {
  try {
    f();
  } catch (const lamia::Error& e) {
    const std::string_view what = e.what();
    if (what.empty()) fail("a lamia exception with an empty message");
    if (max_message_bytes > 0 && what.size() > max_message_bytes)
      fail("a message of " + std::to_string(what.size()) + " bytes: " + std::string(what.substr(0, 300)));
  }
}

/// The invariants every loaded dataset keeps (docs/data.md, "Bad input"): ids and texts are
/// valid UTF-8, every interaction names an item of the catalog, timestamps are in range or absent,
/// ratings are finite or absent.
inline void check_dataset(const Catalog& catalog, const Interactions& interactions) {
  using detail::is_valid_utf8;
  for (std::size_t i = 0; i < catalog.size(); ++i) {
    const auto item = ItemIndex(i);
    if (catalog.id(item).empty()) fail("an empty item id");
    if (!is_valid_utf8(catalog.id(item))) fail("an item id that is not UTF-8");
    for (std::size_t a = 0; a < catalog.num_attributes(); ++a)
      if (!is_valid_utf8(catalog.value(item, a))) fail("an attribute value that is not UTF-8");
  }
  std::size_t total = 0;
  for (std::size_t u = 0; u < interactions.num_users(); ++u) {
    const auto user = UserIndex(u);
    if (!is_valid_utf8(interactions.user_id(user))) fail("a user id that is not UTF-8");
    const auto& events = interactions.sequence(user);
    total += events.size();
    for (const auto& e : events) {
      if (e.item < 0 || std::size_t(e.item) >= catalog.size()) fail("an interaction with an item outside the catalog");
      if (e.has_timestamp() && (e.timestamp < limits::kMinTimestamp || e.timestamp > limits::kMaxTimestamp))
        fail("a timestamp out of range");
      if (e.has_rating() && !std::isfinite(e.rating)) fail("a rating that is not finite");
    }
  }
  if (total != interactions.size()) fail("Interactions::size() differs from the sum of the sequences");
}

}  // namespace lamia::fuzz
