#pragma once
// Artifacts are written atomically: to a temporary file beside the target,
// flushed, then renamed over it, so a reader never sees a half-written file.
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

namespace lamia {

/// Calls write(stream) on a temporary file next to path, then renames it to path.
/// On any exception the temporary file is removed and path is left untouched.
/// Throws IOError when the file cannot be created, written or renamed.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::ostream&)>& write);

/// Writes the bytes of content to path atomically.
void write_text_atomically(const std::filesystem::path& path, std::string_view content);

/// Reads a whole file into a string. Throws IOError naming the path.
std::string read_file(const std::filesystem::path& path);

}  // namespace lamia
