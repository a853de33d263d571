#include <lamia/data/detail/json_io.hpp>
#include <lamia/data/detail/text_io.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace lamia::detail {

JsonObjectScanner::JsonObjectScanner(std::string_view text, std::string file, std::string what_keys)
    : text_(text), file_(std::move(file)), what_keys_(std::move(what_keys)) {
  if (text_.size() >= 3 && std::memcmp(text_.data(), "\xEF\xBB\xBF", 3) == 0) pos_ = line_pos_ = 3;
}

std::size_t JsonObjectScanner::line_at(std::size_t offset) const {
  return std::size_t(1 + std::count(text_.begin(), text_.begin() + std::ptrdiff_t(std::min(offset, text_.size())), '\n'));
}

void JsonObjectScanner::fail(std::size_t offset, const std::string& what) const {
  throw ParseError({file_, line_at(offset), key_.empty() ? what_keys_ : key_}, what);
}

void JsonObjectScanner::skip_space() {
  while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' || text_[pos_] == '\t'))
    ++pos_;
}

std::size_t JsonObjectScanner::skip_string(std::size_t at) const {
  std::size_t i = at + 1;
  for (;;) {
    const void* q = std::memchr(text_.data() + i, '"', text_.size() - i);
    if (!q) fail(at, "string is not closed before the end of the file (truncated?)");
    std::size_t j = std::size_t(static_cast<const char*>(q) - text_.data());
    // The quote is escaped when an odd number of backslashes precede it.
    std::size_t b = j;
    while (b > i && text_[b - 1] == '\\') --b;
    if ((j - b) % 2 == 0) return j + 1;
    i = j + 1;
  }
}

std::size_t JsonObjectScanner::skip_value(std::size_t at) const {
  std::size_t i = at, depth = 0;
  const std::size_t n = text_.size();
  while (i < n) {
    char c = text_[i];
    if (c == '"') {
      i = skip_string(i);
      if (depth == 0) return i;
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return i;  // end of the enclosing object: the value was empty
      if (--depth == 0) return i + 1;
    } else if (depth == 0 && (c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
      return i;  // end of a scalar
    }
    ++i;
  }
  if (depth > 0) fail(at, "value is not closed before the end of the file (truncated?)");
  return i;
}

bool JsonObjectScanner::next(JsonMember& member) {
  if (done_) return false;
  skip_space();
  if (!started_) {
    started_ = true;
    if (pos_ >= text_.size()) fail(pos_, "file is empty, expected a JSON object");
    if (text_[pos_] != '{') fail(pos_, fmt::format("expected a JSON object ('{{'), found '{}'", text_[pos_]));
    ++pos_;
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      done_ = true;
      return false;
    }
  } else {
    if (pos_ >= text_.size()) fail(pos_, "object is not closed before the end of the file (truncated?)");
    if (text_[pos_] == '}') {
      done_ = true;
      ++pos_;
      skip_space();
      if (pos_ < text_.size()) fail(pos_, "unexpected text after the JSON object");
      return false;
    }
    if (text_[pos_] != ',') fail(pos_, fmt::format("expected ',' or '}}' between members, found '{}'", text_[pos_]));
    ++pos_;
    skip_space();
  }
  if (pos_ >= text_.size()) fail(pos_, "object is not closed before the end of the file (truncated?)");
  if (text_[pos_] != '"') fail(pos_, fmt::format("expected a quoted key, found '{}'", text_[pos_]));
  std::size_t key_end = skip_string(pos_);
  // Count lines incrementally (members come in order).
  line_ += std::size_t(std::count(text_.begin() + std::ptrdiff_t(line_pos_), text_.begin() + std::ptrdiff_t(pos_), '\n'));
  line_pos_ = pos_;
  member.line = line_;
  auto raw_key = text_.substr(pos_, key_end - pos_);
  if (raw_key.find('\\') == std::string_view::npos) {
    member.key.assign(raw_key.data() + 1, raw_key.size() - 2);
  } else {
    member.key = parse_json(raw_key, file_, line_).get<std::string>();
  }
  key_ = member.key;
  pos_ = key_end;
  skip_space();
  if (pos_ >= text_.size() || text_[pos_] != ':') fail(pos_, "expected ':' after the key");
  ++pos_;
  skip_space();
  if (pos_ >= text_.size()) fail(pos_, "value missing before the end of the file (truncated?)");
  member.value_line = line_ + std::size_t(std::count(text_.begin() + std::ptrdiff_t(line_pos_),
                                                     text_.begin() + std::ptrdiff_t(pos_), '\n'));
  std::size_t end = skip_value(pos_);
  if (end == pos_) fail(pos_, "value missing");
  member.value = text_.substr(pos_, end - pos_);
  pos_ = end;
  skip_space();
  return true;
}

std::string json_key_before(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  while (offset > 0) {
    auto colon = text.rfind(':', offset - 1);
    if (colon == std::string_view::npos) return {};
    std::size_t q = colon;
    while (q > 0 && (text[q - 1] == ' ' || text[q - 1] == '\t' || text[q - 1] == '\n' || text[q - 1] == '\r')) --q;
    if (q > 0 && text[q - 1] == '"') {
      std::size_t close = q - 1;
      std::size_t open = close;
      while (open > 0) {
        open = text.rfind('"', open - 1);
        if (open == std::string_view::npos) return {};
        if (open == 0 || text[open - 1] != '\\') break;
      }
      if (open < close) return std::string(text.substr(open + 1, close - open - 1));
      return {};
    }
    offset = colon;
  }
  return {};
}

namespace {
template <class Json>
Json parse_json_as(std::string_view text, const std::string& file, std::size_t first_line) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    std::size_t at = std::min(e.byte > 0 ? e.byte - 1 : 0, text.size());
    std::size_t line = first_line + std::size_t(std::count(text.begin(), text.begin() + std::ptrdiff_t(at), '\n'));
    std::string reason = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ..." -> the tail
    auto colon = reason.find(": ");
    if (colon != std::string::npos) reason = reason.substr(colon + 2);
    throw ParseError({file, line, json_key_before(text, at)}, "invalid JSON: " + reason);
  }
}
}  // namespace

nlohmann::json parse_json(std::string_view text, const std::string& file, std::size_t first_line) {
  return parse_json_as<nlohmann::json>(text, file, first_line);
}

nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& file, std::size_t first_line) {
  return parse_json_as<nlohmann::ordered_json>(text, file, first_line);
}

// ---------------------------------------------------------------------------------------------

namespace {

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

bool hex4(std::string_view t, std::size_t at, std::uint32_t& v) {
  if (at + 4 > t.size()) return false;
  v = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    char c = t[at + k];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= std::uint32_t(c - '0');
    else if (c >= 'a' && c <= 'f') v |= std::uint32_t(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= std::uint32_t(c - 'A' + 10);
    else return false;
  }
  return true;
}

// A JSON string starting at t[i] == '"'; on success i is past the closing quote.
bool json_string(std::string_view t, std::size_t& i, std::string& out) {
  out.clear();
  ++i;
  for (;;) {
    std::size_t j = i;
    while (j < t.size() && t[j] != '"' && t[j] != '\\') {
      if (static_cast<unsigned char>(t[j]) < 0x20) return false;  // control characters must be escaped
      ++j;
    }
    out.append(t.data() + i, j - i);
    if (j >= t.size()) return false;
    if (t[j] == '"') {
      i = j + 1;
      return true;
    }
    if (j + 1 >= t.size()) return false;
    char e = t[j + 1];
    i = j + 2;
    switch (e) {
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case '/': out.push_back('/'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'u': {
        std::uint32_t cp;
        if (!hex4(t, i, cp)) return false;
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {  // a surrogate pair
          std::uint32_t lo;
          if (i + 6 > t.size() || t[i] != '\\' || t[i + 1] != 'u' || !hex4(t, i + 2, lo) || lo < 0xDC00 || lo > 0xDFFF)
            return false;
          i += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return false;
        }
        append_utf8(out, cp);
        break;
      }
      default: return false;
    }
  }
}

}  // namespace

bool parse_flat_string_object(std::string_view t, std::vector<std::pair<std::string, std::string>>& out) {
  out.clear();
  std::size_t i = 0;
  auto space = [&] {
    while (i < t.size() && (t[i] == ' ' || t[i] == '\n' || t[i] == '\r' || t[i] == '\t')) ++i;
  };
  space();
  if (i >= t.size() || t[i] != '{') return false;
  ++i;
  space();
  if (i < t.size() && t[i] == '}') {
    ++i;
    space();
    return i == t.size();
  }
  std::string key, value;
  for (;;) {
    if (i >= t.size() || t[i] != '"' || !json_string(t, i, key)) return false;
    space();
    if (i >= t.size() || t[i] != ':') return false;
    ++i;
    space();
    if (i >= t.size() || t[i] != '"' || !json_string(t, i, value)) return false;
    out.emplace_back(key, value);
    space();
    if (i < t.size() && t[i] == ',') {
      ++i;
      space();
      continue;
    }
    if (i < t.size() && t[i] == '}') {
      ++i;
      space();
      return i == t.size();
    }
    return false;
  }
}

namespace {

class PyLiteral {
 public:
  PyLiteral(std::string_view t, const std::string& file, std::size_t line) : t_(t), file_(file), line_(line) {}

  nlohmann::json parse_all() {
    auto v = value();
    space();
    if (i_ != t_.size()) fail("unexpected text after the value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw ParseError({file_, line_, ""}, fmt::format("invalid Python literal at column {}: {}", i_ + 1, what));
  }
  void space() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\r' || t_[i_] == '\n')) ++i_;
  }
  bool word(std::string_view w) {
    if (t_.substr(i_, w.size()) == w) {
      i_ += w.size();
      return true;
    }
    return false;
  }
  std::uint32_t hex(std::size_t digits) {
    if (i_ + digits > t_.size()) fail("truncated escape");
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < digits; ++k) {
      char c = t_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= std::uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') v |= std::uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= std::uint32_t(c - 'A' + 10);
      else fail("bad hex digit in escape");
    }
    return v;
  }
  std::string str() {
    char q = t_[i_++];
    std::string out;
    for (;;) {
      if (i_ >= t_.size()) fail("string is not closed");
      char c = t_[i_++];
      if (c == q) break;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= t_.size()) fail("string is not closed");
      char e = t_[i_++];
      switch (e) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'a': out.push_back('\a'); break;
        case 'v': out.push_back('\v'); break;
        case '0': out.push_back('\0'); break;
        case '\\': case '\'': case '"': out.push_back(e); break;
        case '\n': break;  // line continuation
        case 'x': append_utf8(out, hex(2)); break;
        case 'u': append_utf8(out, hex(4)); break;
        case 'U': append_utf8(out, hex(8)); break;
        default:  // Python keeps unknown escapes as written
          out.push_back('\\');
          out.push_back(e);
      }
    }
    if (!is_valid_utf8(out)) fail("string is not valid UTF-8");
    return out;
  }
  nlohmann::json number() {
    std::size_t s = i_;
    if (t_[i_] == '-' || t_[i_] == '+') ++i_;
    bool is_float = false;
    while (i_ < t_.size()) {
      char c = t_[i_];
      if (c >= '0' && c <= '9') {
        ++i_;
      } else if (c == '.' || c == 'e' || c == 'E' || ((c == '-' || c == '+') && (t_[i_ - 1] == 'e' || t_[i_ - 1] == 'E'))) {
        is_float = true;
        ++i_;
      } else {
        break;
      }
    }
    std::string num(t_.substr(s, i_ - s));
    try {
      std::size_t used = 0;
      if (is_float) {
        double d = std::stod(num, &used);
        if (used != num.size()) fail("bad number '" + num + "'");
        return d;
      }
      long long v = std::stoll(num, &used);
      if (used != num.size()) fail("bad number '" + num + "'");
      return v;
    } catch (const std::logic_error&) {
      fail("bad number '" + num + "'");
    }
  }
  nlohmann::json value() {
    if (++depth_ > 200) fail("nested too deeply");
    space();
    if (i_ >= t_.size()) fail("value missing (truncated?)");
    char c = t_[i_];
    nlohmann::json out;
    if (c == '{') {
      ++i_;
      out = nlohmann::json::object();
      space();
      while (i_ < t_.size() && t_[i_] != '}') {
        auto k = value();
        if (!k.is_string()) fail("dictionary keys must be strings");
        space();
        if (i_ >= t_.size() || t_[i_] != ':') fail("expected ':'");
        ++i_;
        out[k.get<std::string>()] = value();
        space();
        if (i_ < t_.size() && t_[i_] == ',') {
          ++i_;
          space();
        } else if (i_ >= t_.size() || t_[i_] != '}') {
          fail("expected ',' or '}'");
        }
      }
      if (i_ >= t_.size()) fail("dictionary is not closed (truncated?)");
      ++i_;
    } else if (c == '[' || c == '(') {
      char close = c == '[' ? ']' : ')';
      ++i_;
      out = nlohmann::json::array();
      space();
      while (i_ < t_.size() && t_[i_] != close) {
        out.push_back(value());
        space();
        if (i_ < t_.size() && t_[i_] == ',') {
          ++i_;
          space();
        } else if (i_ >= t_.size() || t_[i_] != close) {
          fail(fmt::format("expected ',' or '{}'", close));
        }
      }
      if (i_ >= t_.size()) fail("list is not closed (truncated?)");
      ++i_;
    } else if (c == '\'' || c == '"') {
      out = str();
    } else if ((c == 'u' || c == 'b') && i_ + 1 < t_.size() && (t_[i_ + 1] == '\'' || t_[i_ + 1] == '"')) {
      ++i_;  // Python 2 unicode / bytes prefix
      out = str();
    } else if (word("True")) {
      out = true;
    } else if (word("False")) {
      out = false;
    } else if (word("None")) {
      out = nullptr;
    } else if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.') {
      out = number();
    } else {
      fail(fmt::format("unexpected character '{}'", c));
    }
    --depth_;
    return out;
  }

  std::string_view t_;
  const std::string& file_;
  std::size_t line_;
  std::size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

nlohmann::json parse_python_literal(std::string_view text, const std::string& file, std::size_t line) {
  return PyLiteral(text, file, line).parse_all();
}

}  // namespace lamia::detail
