#pragma once
// A fresh folder under the system's temporary folder, removed (permissions restored first) at the
// end of the test (tests only).
#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace lamia::testing {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "lamia-test-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  // Movable (a helper may return the folder it filled), not copyable: one owner removes it.
  TempDir(TempDir&& other) noexcept : path(std::move(other.path)) { other.path.clear(); }
  ~TempDir() {
    if (path.empty()) return;
    std::error_code ec;
    std::filesystem::permissions(path, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  /// Writes text (bytes) to path/name, making the folders on the way; returns the file's path.
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    auto p = path / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
};

}  // namespace lamia::testing
