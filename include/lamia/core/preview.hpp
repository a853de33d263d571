#pragma once
// Values from input files quoted in error messages are cut: a message never carries a whole
// 50 MB field, JSON value or key.
#include <cstddef>
#include <string>
#include <string_view>

namespace lamia {

/// At most max_bytes of text (cut at a UTF-8 character boundary), then "... (N bytes)" with the
/// full size when it was cut. Not quoted.
std::string preview(std::string_view text, std::size_t max_bytes = 60);

}  // namespace lamia
