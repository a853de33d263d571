// libFuzzer target: the artifact manifest of a `lamia run` folder (manifest.json, read by
// lamia::Manifest::load). A manifest that loads is saved and loaded again: the second load must
// give the same stages and artifacts.
#include "fuzz_util.hpp"

#include <lamia/pipeline/manifest.hpp>

#include <optional>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lamia::fuzz;
  const auto dir = scratch().fresh_dir();
  write_file(dir / "manifest.json", std::string_view(reinterpret_cast<const char*>(data), size));
  std::optional<lamia::Manifest> m;
  expect_clean([&] { m = lamia::Manifest::load(dir); });
  if (!m) return 0;
  for (const auto& [name, a] : m->artifacts()) {
    if (m->artifact(name) != &a) fail("artifact() does not find a listed artifact");
    const std::filesystem::path p(a.path);
    if (p.is_absolute() || a.path.find("..") != std::string::npos) fail("an artifact path outside the run folder");
  }
  const auto saved = scratch().fresh_dir("saved");
  m->save(saved);
  const auto again = lamia::Manifest::load(saved);
  if (again.artifacts().size() != m->artifacts().size()) fail("save + load changed the artifacts");
  for (const auto& [name, a] : m->artifacts()) {
    const auto* b = again.artifact(name);
    if (!b || b->path != a.path || b->stage != a.stage || b->size != a.size || b->checksum != a.checksum ||
        b->format_version != a.format_version || b->config_hash != a.config_hash)
      fail("save + load changed artifact '" + name + "'");
  }
  return 0;
}
