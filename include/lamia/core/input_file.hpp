#pragma once
// An input path that must name a regular file: checked with stat before it is opened, so that a
// directory, a FIFO (whose open would block until a writer comes), a device or a missing file
// each get their own message instead of a hang or a vague "cannot open".
#include <filesystem>

namespace lamia {

/// Throws IOError "<path>: does not exist", "<path>: is a directory, expected a file",
/// "<path>: is not a regular file (a FIFO), expected a file" (or a socket, a character or block
/// device), or "<path>: cannot be accessed: <reason>". The path is printed with its bytes.
void require_regular_file(const std::filesystem::path& path);

}  // namespace lamia
