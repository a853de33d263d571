#include <lamia/core/preview.hpp>
#include <lamia/data/detail/json_io.hpp>
#include <lamia/data/detail/text_io.hpp>
#include <lamia/data/loaders/limits.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <unordered_set>
#include <vector>

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
    // As JSON requires (and nlohmann checks on the escaped path below): no raw control characters.
    for (std::size_t k = 1; k + 1 < raw_key.size(); ++k)
      if (static_cast<unsigned char>(raw_key[k]) < 0x20)
        fail(pos_ + k, fmt::format("control character 0x{:02X} in a key (JSON needs it escaped)",
                                   unsigned(static_cast<unsigned char>(raw_key[k]))));
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

// The keys of one JSON object: a short list while it is small (a record has a few keys), a hash
// set from kKeySetListMax keys on (a tokenizer's vocabulary has 50k).
class KeySet {
 public:
  void clear() {
    list_.clear();
    set_.clear();
  }
  /// False when key is in the set already.
  bool insert(const std::string& key) {
    if (!set_.empty()) return set_.insert(key).second;
    if (std::find(list_.begin(), list_.end(), key) != list_.end()) return false;
    list_.push_back(key);
    if (list_.size() >= kKeySetListMax) {
      set_.insert(list_.begin(), list_.end());
      list_.clear();
    }
    return true;
  }

 private:
  static constexpr std::size_t kKeySetListMax = 32;
  std::vector<std::string> list_;
  std::unordered_set<std::string> set_;
};

// Builds the value as nlohmann's own parser does, but stops at limits::kMaxJsonDepth: the
// parser itself is iterative, while copying, printing and walking a value recurse, so a
// 100k-deep value would overflow the stack later. Errors are kept, not thrown, so that the
// caller can name the file, line and field. A key that appears twice in one object stops the parse
// too (duplicate_key): nlohmann keeps the last value and drops the first in silence.
template <class Json>
class DepthLimitedBuilder {
 public:
  explicit DepthLimitedBuilder(Json& result) : dom_(result, true) {}
  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(typename Json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(typename Json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(typename Json::number_float_t v, const typename Json::string_t& s) {
    return dom_.number_float(v, s);
  }
  bool string(typename Json::string_t& v) { return dom_.string(v); }
  bool binary(typename Json::binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) {
    if (!deeper()) return false;
    if (keys_.size() < depth_) keys_.resize(depth_);
    keys_[depth_ - 1].clear();
    return dom_.start_object(n);
  }
  bool key(typename Json::string_t& k) {
    if (!keys_[depth_ - 1].insert(k)) {  // the parser would keep the last value and drop the first
      duplicate_key = true;
      return false;
    }
    return dom_.key(k);
  }
  bool end_object() {
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return deeper() && dom_.start_array(n); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string& /*last_token*/, const nlohmann::detail::exception& ex) {
    error_byte = position;
    error_id = ex.id;
    error_what = ex.what();
    return false;
  }

  bool too_deep = false;
  bool duplicate_key = false;
  std::size_t error_byte = 0;
  int error_id = 0;
  std::string error_what;

 private:
  bool deeper() {
    if (++depth_ <= limits::kMaxJsonDepth) return true;
    too_deep = true;
    return false;
  }
  nlohmann::detail::json_sax_dom_parser<Json> dom_;
  std::size_t depth_ = 0;
  std::vector<KeySet> keys_;  // the keys of the open object at each depth (arrays leave theirs unused)
};

// Offset of the bracket that opens level limits::kMaxJsonDepth + 1 (outside strings).
std::size_t offset_too_deep(std::string_view text) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limits::kMaxJsonDepth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return text.size();
}

// The text with every number that a double cannot hold (1e400, a 400-digit integer) written as
// a string. JSON allows such numbers; nlohmann's parser rejects them (out_of_range 406). As
// strings they are kept as written where lamia does not use them, and where it does (a rating,
// a timestamp, a config value) the field's own check names the file, line and field.
std::string quote_numbers_out_of_double_range(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {  // copy the string, escapes included
      std::size_t j = i + 1;
      while (j < text.size() && text[j] != '"') j += text[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, text.size());
      out.append(text.substr(i, j - i));
      i = j;
      continue;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      std::size_t j = i + 1;
      while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.' ||
                                 text[j] == 'e' || text[j] == 'E' || text[j] == '+' || text[j] == '-'))
        ++j;
      const std::string number(text.substr(i, j - i));
      const double value = std::strtod(number.c_str(), nullptr);
      if (std::isinf(value)) out += '"' + number + '"';
      else out += number;
      i = j;
      continue;
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

template <class Json>
Json parse_json_as(std::string_view text, const std::string& file, std::size_t first_line) {
  Json result;
  DepthLimitedBuilder<Json> builder(result);
  if (Json::sax_parse(text.begin(), text.end(), &builder)) return result;
  auto line_of = [&](std::size_t at) {
    return first_line + std::size_t(std::count(text.begin(), text.begin() + std::ptrdiff_t(at), '\n'));
  };
  if (builder.too_deep) {
    const std::size_t at = offset_too_deep(text);
    throw ParseError({file, line_of(at), json_key_before(text, at)},
                     fmt::format("JSON nested deeper than {} levels (the limit of lamia's readers)",
                                 limits::kMaxJsonDepth));
  }
  if (builder.duplicate_key) {
    check_unique_keys(text, file, first_line);  // throws at the second key's line, with its path
    throw ParseError({file, first_line, ""}, "a key appears twice in one object");  // not reached
  }
  if (builder.error_id == 406) {  // a number out of the range of a double
    const std::string quoted = quote_numbers_out_of_double_range(text);
    if (quoted != text) return parse_json_as<Json>(quoted, file, first_line);
  }
  const std::size_t at = std::min(builder.error_byte > 0 ? builder.error_byte - 1 : 0, text.size());
  std::string reason = builder.error_what;
  // "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ..." -> the tail
  auto colon = reason.find(": ");
  if (colon != std::string::npos) reason = reason.substr(colon + 2);
  throw ParseError({file, line_of(at), json_key_before(text, at)}, "invalid JSON: " + preview(reason, 200));
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

}  // namespace

namespace {

// Walks valid JSON (parse_json has checked the syntax and the depth, so the recursion is bounded)
// and remembers each object's keys.
class UniqueKeyChecker {
 public:
  UniqueKeyChecker(std::string_view text, const std::string& file, std::size_t first_line)
      : text_(text), file_(file), first_line_(first_line) {}

  void value(const std::string& path) {
    space();
    if (at('{')) {
      ++pos_;
      std::vector<std::string> keys;
      for (space(); pos_ < text_.size() && !at('}'); space()) {
        if (at(',')) {
          ++pos_;
          space();
        }
        const std::size_t key_at = pos_;
        std::string key;
        if (!unescape_json_string(text_, pos_, key)) return;  // cannot happen after parse_json
        const std::string key_path = path.empty() ? key : path + "." + key;
        if (std::find(keys.begin(), keys.end(), key) != keys.end()) {
          const auto line = first_line_ + std::size_t(std::count(text_.begin(), text_.begin() + std::ptrdiff_t(key_at), '\n'));
          throw ParseError({file_, line, key_path},
                           "the key appears twice in one object (the second value would silently replace the first)");
        }
        keys.push_back(std::move(key));
        space();
        ++pos_;  // ':'
        value(key_path);
      }
      ++pos_;
    } else if (at('[')) {
      ++pos_;
      for (std::size_t index = 0;; ++index) {
        space();
        if (pos_ >= text_.size() || at(']')) break;
        if (at(',')) ++pos_;
        value(fmt::format("{}[{}]", path, index));
      }
      ++pos_;
    } else if (at('"')) {
      std::string ignored;
      unescape_json_string(text_, pos_, ignored);
    } else {  // a number, true, false or null
      while (pos_ < text_.size() && !std::strchr(",]} \t\r\n", text_[pos_])) ++pos_;
    }
  }

 private:
  bool at(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  void space() {
    while (pos_ < text_.size() && std::strchr(" \t\r\n", text_[pos_]) && text_[pos_] != '\0') ++pos_;
  }

  std::string_view text_;
  const std::string& file_;
  std::size_t first_line_;
  std::size_t pos_ = 0;
};

}  // namespace

void check_unique_keys(std::string_view text, const std::string& file, std::size_t first_line) {
  if (text.size() >= 3 && std::memcmp(text.data(), "\xEF\xBB\xBF", 3) == 0) text.remove_prefix(3);
  UniqueKeyChecker(text, file, first_line).value("");
}

bool unescape_json_string(std::string_view t, std::size_t& i, std::string& out) {
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
    if (i >= t.size() || t[i] != '"' || !unescape_json_string(t, i, key)) return false;
    space();
    if (i >= t.size() || t[i] != ':') return false;
    ++i;
    space();
    if (i >= t.size() || t[i] != '"' || !unescape_json_string(t, i, value)) return false;
    for (const auto& kv : out)  // a key twice: parse_json names it (records have a few keys)
      if (kv.first == key) return false;
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
    const std::string num(t_.substr(s, i_ - s));
    char* end = nullptr;
    errno = 0;
    if (!is_float) {
      const long long v = std::strtoll(num.c_str(), &end, 10);
      if (end == num.c_str() + num.size() && !num.empty() && errno != ERANGE) return v;
      if (end != num.c_str() + num.size() || num.empty()) fail("bad number '" + preview(num) + "'");
    }
    // Python's ints have no limit and its floats overflow to inf: what a double cannot hold
    // exactly enough is kept as written (the metadata fields lamia reads are text).
    errno = 0;
    const double d = std::strtod(num.c_str(), &end);
    if (end != num.c_str() + num.size() || num.empty()) fail("bad number '" + preview(num) + "'");
    if (errno == ERANGE || !std::isfinite(d)) return num;
    return d;
  }
  nlohmann::json value() {
    if (++depth_ > limits::kMaxJsonDepth)
      fail(fmt::format("nested deeper than {} levels (the limit of lamia's readers)", limits::kMaxJsonDepth));
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
        const auto& key = k.get_ref<const std::string&>();
        if (out.contains(key)) fail(fmt::format("the key '{}' appears twice in one dictionary (the second value would "
                                                "silently replace the first)", preview(key, 60)));
        out[key] = value();
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
  std::size_t depth_ = 0;
};

}  // namespace

nlohmann::json parse_python_literal(std::string_view text, const std::string& file, std::size_t line) {
  return PyLiteral(text, file, line).parse_all();
}

}  // namespace lamia::detail
