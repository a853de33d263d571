#include <lamia/core/errors.hpp>

#include <utility>

namespace lamia {

std::string SourceLocation::str() const {
  std::string out = file.empty() ? std::string("<input>") : file;
  if (line > 0) out += ":" + std::to_string(line);
  if (!field.empty()) out += ": field '" + field + "'";
  return out;
}

ParseError::ParseError(SourceLocation where, const std::string& what)
    : ValueError(where.str() + ": " + what), where_(std::move(where)), reason_(what) {}

}  // namespace lamia
