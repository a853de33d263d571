#include <lamia/text/detail/unicode_tables.hpp>
#include <lamia/text/pretokenizer.hpp>

#include <algorithm>
#include <array>
#include <iterator>

namespace lamia {
namespace {

template <std::size_t N>
bool in_ranges(const detail::CodePointRange (&ranges)[N], char32_t cp) noexcept {
  auto it = std::upper_bound(std::begin(ranges), std::end(ranges), cp,
                             [](char32_t c, const detail::CodePointRange& r) { return c < r.first; });
  return it != std::begin(ranges) && cp <= std::prev(it)->last;
}

CharClass classify_slow(char32_t cp) noexcept {
  if (in_ranges(detail::kWhiteSpaceRanges, cp)) return CharClass::kWhiteSpace;
  if (in_ranges(detail::kLetterRanges, cp)) return CharClass::kLetter;
  if (in_ranges(detail::kNumberRanges, cp)) return CharClass::kNumber;
  return CharClass::kOther;
}

// Classes of U+0000..U+07FF (the 1- and 2-byte UTF-8 range), computed once.
struct LowTable {
  std::array<CharClass, 0x800> cls{};
  LowTable() {
    for (char32_t cp = 0; cp < 0x800; ++cp) cls[cp] = classify_slow(cp);
  }
};
const LowTable& low_table() {
  static const LowTable table;
  return table;
}

struct Unit {
  CharClass cls;
  int len;  // bytes
};

inline Unit next_unit(std::string_view text, std::size_t pos) noexcept {
  const auto b = static_cast<unsigned char>(text[pos]);
  if (b < 0x80) return {low_table().cls[b], 1};
  char32_t cp = 0;
  int len = decode_utf8(text.substr(pos), cp);
  if (len == 0) return {CharClass::kInvalid, 1};
  return {cp < 0x800 ? low_table().cls[cp] : classify_slow(cp), len};
}

inline bool is_run_class(CharClass c) noexcept {
  return c == CharClass::kLetter || c == CharClass::kNumber || c == CharClass::kOther;
}

// Length of the contraction ('s 't 're 've 'm 'll 'd) at text[pos] == '\'', or 0.
inline std::size_t contraction_length(std::string_view text, std::size_t pos) noexcept {
  if (pos + 1 >= text.size()) return 0;
  const char a = text[pos + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (pos + 2 >= text.size()) return 0;
  const char b = text[pos + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

}  // namespace

CharClass char_class(char32_t code_point) noexcept {
  if (code_point < 0x800) return low_table().cls[code_point];
  if (code_point > 0x10FFFF) return CharClass::kOther;
  return classify_slow(code_point);
}

int decode_utf8(std::string_view text, char32_t& code_point) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  if (n == 0) return 0;
  const unsigned char b0 = s[0];
  auto cont = [&](std::size_t i) { return i < n && (s[i] & 0xC0) == 0x80; };
  if (b0 < 0x80) {
    code_point = b0;
    return 1;
  }
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (!cont(1)) return 0;
    code_point = (char32_t(b0 & 0x1F) << 6) | (s[1] & 0x3F);
    return 2;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (n < 2) return 0;
    const unsigned char b1 = s[1];
    const unsigned char lo = b0 == 0xE0 ? 0xA0 : 0x80;  // no overlong forms
    const unsigned char hi = b0 == 0xED ? 0x9F : 0xBF;  // no surrogates
    if (b1 < lo || b1 > hi || !cont(2)) return 0;
    code_point = (char32_t(b0 & 0x0F) << 12) | (char32_t(b1 & 0x3F) << 6) | (s[2] & 0x3F);
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (n < 2) return 0;
    const unsigned char b1 = s[1];
    const unsigned char lo = b0 == 0xF0 ? 0x90 : 0x80;  // no overlong forms
    const unsigned char hi = b0 == 0xF4 ? 0x8F : 0xBF;  // nothing above U+10FFFF
    if (b1 < lo || b1 > hi || !cont(2) || !cont(3)) return 0;
    code_point = (char32_t(b0 & 0x07) << 18) | (char32_t(b1 & 0x3F) << 12) |
                 (char32_t(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
  }
  return 0;
}

bool is_valid_utf8(std::string_view text) noexcept {
  std::size_t pos = 0;
  char32_t cp = 0;
  while (pos < text.size()) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const int len = decode_utf8(text.substr(pos), cp);
    if (len == 0) return false;
    pos += static_cast<std::size_t>(len);
  }
  return true;
}

void gpt2_pretokenize(std::string_view text, std::vector<std::string_view>& out) {
  const std::size_t n = text.size();
  std::size_t pos = 0;
  auto run_end = [&](std::size_t p, CharClass cls) {
    while (p < n) {
      const Unit u = next_unit(text, p);
      if (u.cls != cls) break;
      p += static_cast<std::size_t>(u.len);
    }
    return p;
  };
  while (pos < n) {
    // 's|'t|'re|'ve|'m|'ll|'d
    if (text[pos] == '\'') {
      if (const std::size_t len = contraction_length(text, pos)) {
        out.push_back(text.substr(pos, len));
        pos += len;
        continue;
      }
    }
    const Unit u = next_unit(text, pos);
    if (u.cls == CharClass::kInvalid) {
      out.push_back(text.substr(pos, 1));
      pos += 1;
      continue;
    }
    //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+
    if (text[pos] == ' ' && pos + 1 < n) {
      const Unit v = next_unit(text, pos + 1);
      if (is_run_class(v.cls)) {
        const std::size_t end = run_end(pos + 1 + static_cast<std::size_t>(v.len), v.cls);
        out.push_back(text.substr(pos, end - pos));
        pos = end;
        continue;
      }
    }
    if (is_run_class(u.cls)) {
      const std::size_t end = run_end(pos + static_cast<std::size_t>(u.len), u.cls);
      out.push_back(text.substr(pos, end - pos));
      pos = end;
      continue;
    }
    // \s+(?!\S) | \s+ : a whitespace run; when something non-space follows, its
    // last character is left to start the next piece (unless it is the only one).
    std::size_t last_start = pos;
    std::size_t end = pos + static_cast<std::size_t>(u.len);
    while (end < n) {
      const Unit w = next_unit(text, end);
      if (w.cls != CharClass::kWhiteSpace) break;
      last_start = end;
      end += static_cast<std::size_t>(w.len);
    }
    if (end < n && last_start > pos) end = last_start;
    out.push_back(text.substr(pos, end - pos));
    pos = end;
  }
}

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  std::vector<std::string_view> out;
  gpt2_pretokenize(text, out);
  return out;
}

}  // namespace lamia
