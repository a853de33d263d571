#include <lamia/core/errors.hpp>
#include <lamia/core/input_file.hpp>

namespace lamia {
namespace fs = std::filesystem;

void require_regular_file(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);  // follows symlinks: a link to a FIFO is a FIFO
  const std::string p = path.string();
  switch (status.type()) {
    case fs::file_type::regular: return;
    case fs::file_type::not_found: throw IOError(p + ": does not exist");
    case fs::file_type::directory: throw IOError(p + ": is a directory, expected a file");
    case fs::file_type::fifo: throw IOError(p + ": is not a regular file (a FIFO), expected a file");
    case fs::file_type::socket: throw IOError(p + ": is not a regular file (a socket), expected a file");
    case fs::file_type::character: throw IOError(p + ": is not a regular file (a character device), expected a file");
    case fs::file_type::block: throw IOError(p + ": is not a regular file (a block device), expected a file");
    default: break;
  }
  if (ec) throw IOError(p + ": cannot be accessed: " + ec.message());
  throw IOError(p + ": is not a regular file, expected a file");
}

}  // namespace lamia
