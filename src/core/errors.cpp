#include <lamia/core/errors.hpp>
#include <lamia/core/preview.hpp>

#include <utility>

namespace lamia {

std::string SourceLocation::str() const {
  std::string out = file.empty() ? std::string("<input>") : file;
  if (line > 0) out += ":" + std::to_string(line);
  // A field name may come from the input (a JSON key, an LC-Rec item id): cut like a value.
  if (!field.empty()) out += ": field '" + preview(field, 120) + "'";
  return out;
}

ParseError::ParseError(SourceLocation where, const std::string& what)
    : ValueError(where.str() + ": " + what), where_(std::move(where)), reason_(what) {}

}  // namespace lamia
