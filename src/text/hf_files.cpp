// Hugging Face tokenizer files: vocab.json, merges.txt, tokenizer.json,
// added_tokens.json, special_tokens_map.json, tokenizer_config.json.
#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/data/detail/json_io.hpp>
#include <lamia/data/detail/text_io.hpp>
#include <lamia/text/byte_level_bpe.hpp>
#include <lamia/text/pretokenizer.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <ostream>
#include <set>

namespace lamia {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A flat JSON object of string -> integer (vocab.json, added_tokens.json),
// parsed by hand so that every error names its line.
class FlatJsonParser {
 public:
  FlatJsonParser(std::string_view text, std::string file) : s_(text), file_(std::move(file)) {}

  std::vector<std::pair<std::string, TokenId>> parse() {
    std::vector<std::pair<std::string, TokenId>> out;
    skip_ws();
    expect('{', "the file must be one JSON object of token -> id");
    skip_ws();
    if (peek() == '}') {
      ++pos_;
    } else {
      for (;;) {
        skip_ws();
        const std::size_t key_line = line_;
        std::string key = parse_string();
        skip_ws();
        expect(':', "expected ':' after the token");
        skip_ws();
        const TokenId id = parse_id(key);
        out.emplace_back(std::move(key), id);
        lines_.push_back(key_line);
        skip_ws();
        const char c = peek();
        ++pos_;
        if (c == '}') break;
        if (c != ',') fail({}, fmt::format("expected ',' or '}}' after an entry, got {}", describe(c)));
      }
    }
    skip_ws();
    if (pos_ < s_.size()) fail({}, "unexpected content after the closing '}'");
    return out;
  }
  /// Line of entry i.
  std::size_t line(std::size_t i) const { return lines_[i]; }

 private:
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw ParseError({file_, line_, field}, what);
  }
  static std::string describe(char c) {
    if (c == '\0') return "end of file";
    return fmt::format("'{}'", c);
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '\n') ++line_;
      else if (c != ' ' && c != '\t' && c != '\r') break;
      ++pos_;
    }
  }
  void expect(char c, const char* what) {
    if (peek() != c) fail({}, fmt::format("{} (got {})", what, describe(peek())));
    ++pos_;
  }
  unsigned hex4() {
    if (pos_ + 4 > s_.size()) fail({}, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
      else fail({}, fmt::format("bad hex digit '{}' in \\u escape", c));
    }
    return v;
  }
  std::string parse_string() {
    expect('"', "expected a token in double quotes");
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) fail({}, "unterminated string");
      const char c = s_[pos_++];
      if (c == '"') break;
      if (c == '\n') fail({}, "newline inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) fail({}, "unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          char32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (pos_ + 2 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u')
              fail({}, "unpaired surrogate in \\u escape");
            pos_ += 2;
            const char32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail({}, "unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail({}, "unpaired surrogate in \\u escape");
          }
          std::string utf8;
          if (cp < 0x80) utf8 += char(cp);
          else if (cp < 0x800) utf8 += {char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
          else if (cp < 0x10000)
            utf8 += {char(0xE0 | (cp >> 12)), char(0x80 | ((cp >> 6) & 0x3F)), char(0x80 | (cp & 0x3F))};
          else
            utf8 += {char(0xF0 | (cp >> 18)), char(0x80 | ((cp >> 12) & 0x3F)), char(0x80 | ((cp >> 6) & 0x3F)),
                     char(0x80 | (cp & 0x3F))};
          out += utf8;
          break;
        }
        default: fail({}, fmt::format("unknown escape '\\{}'", e));
      }
    }
    // JSON text is UTF-8 (escapes above only make valid UTF-8): a token with other bytes loaded,
    // and then could not be saved (found by fuzz_tokenizer_files).
    if (const auto bad = detail::find_invalid_utf8(out); bad != std::string::npos)
      fail({}, fmt::format("invalid UTF-8 in a token (byte 0x{:02X})", unsigned(static_cast<unsigned char>(out[bad]))));
    return out;
  }
  TokenId parse_id(const std::string& key) {
    const std::size_t start = pos_;
    if (peek() == '-') ++pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    const std::string digits(s_.substr(start, pos_ - start));
    if (digits.empty() || digits == "-")
      fail(key, fmt::format("expected an integer id, got {}", describe(peek())));
    if (peek() == '.' || peek() == 'e' || peek() == 'E') fail(key, "the id must be an integer");
    const long long v = std::strtoll(digits.c_str(), nullptr, 10);
    if (v < 0 || v > 0x7FFFFFFFLL) fail(key, fmt::format("id {} out of range (0 .. 2147483647)", digits));
    return static_cast<TokenId>(v);
  }

  std::string_view s_;
  std::string file_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
  std::vector<std::size_t> lines_;
};

std::vector<std::pair<std::string, TokenId>> read_flat_json(const fs::path& path) {
  const std::string text = read_file(path);
  FlatJsonParser parser(text, path.string());
  auto entries = parser.parse();
  std::map<TokenId, std::size_t> by_id;
  std::map<std::string, std::size_t> by_token;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& [token, id] = entries[i];
    if (auto [it, fresh] = by_token.emplace(token, i); !fresh)
      throw ParseError({path.string(), parser.line(i), token},
                       fmt::format("token appears twice (first on line {})", parser.line(it->second)));
    if (auto [it, fresh] = by_id.emplace(id, i); !fresh)
      throw ParseError({path.string(), parser.line(i), token},
                       fmt::format("id {} is already used by '{}' (line {})", id, entries[it->second].first,
                                   parser.line(it->second)));
  }
  return entries;
}

struct MergesFile {
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<std::size_t> lines;
};

MergesFile read_merges(const fs::path& path) {
  const std::string text = read_file(path);
  MergesFile out;
  std::size_t line_no = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line_no == 1 && line.substr(0, 8) == "#version") continue;
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 >= line.size() ||
        line.find(' ', space + 1) != std::string_view::npos)
      throw ParseError({path.string(), line_no, "merge"},
                       fmt::format("expected two tokens separated by one space, got '{}'", line));
    out.merges.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
    out.lines.push_back(line_no);
  }
  return out;
}

// Checks merges against the vocabulary so that errors name the merges.txt line.
void check_merges(const MergesFile& m, const std::vector<std::pair<std::string, TokenId>>& vocab,
                  const fs::path& merges_path, const fs::path& vocab_path) {
  std::set<std::string_view> known;
  for (const auto& [token, id] : vocab) known.insert(token);
  for (std::size_t i = 0; i < m.merges.size(); ++i) {
    const auto& [a, b] = m.merges[i];
    const std::string merged = a + b;
    const std::pair<const char*, const std::string*> parts[] = {{"left token", &a}, {"right token", &b},
                                                                {"merged token", &merged}};
    for (const auto& [what, t] : parts) {
      if (!known.count(*t))
        throw ParseError({merges_path.string(), m.lines[i], "merge"},
                         fmt::format("'{} {}': the {} '{}' is not in {}", a, b, what, *t,
                                     vocab_path.filename().string()));
    }
  }
}

// The loaders' reader (include/lamia/data/detail/json_io.hpp): "invalid JSON" at file, line and key;
// nested at most limits::kMaxJsonDepth deep; a number a double cannot hold (1e400) is read as a
// string of its text instead of escaping as nlohmann's out_of_range (found by fuzz_tokenizer_json).
json parse_json_file(const fs::path& path) { return detail::parse_json(read_file(path), path.string(), 1); }

[[noreturn]] void field_error(const fs::path& path, const std::string& field, const std::string& what) {
  throw ParseError({path.string(), 0, field}, what);
}

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// A special token in a config: "text" or {"content": "text", ...}; nullopt for null/absent.
std::optional<std::string> token_content(const json& obj, const char* key, const fs::path& path) {
  const json* v = member(obj, key);
  if (!v) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) {
    const json* c = member(*v, "content");
    if (c && c->is_string()) return c->get<std::string>();
  }
  field_error(path, key, "expected a string or an object with a string 'content'");
}

std::optional<bool> bool_field(const json& obj, const char* key, const fs::path& path) {
  const json* v = member(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) field_error(path, key, "expected true or false, got " + v->dump());
  return v->get<bool>();
}

// Appends or marks an added token whose id is fixed by a file.
void add_token_with_id(ByteLevelBpeTokenizer& tok, const std::string& content, TokenId id, const fs::path& path,
                       const std::string& field) {
  if (auto existing = tok.token_to_id(content)) {
    if (*existing != id)
      field_error(path, field, fmt::format("'{}' has id {} here but {} in the vocabulary", content, id, *existing));
    tok.add_special_token(content);
    return;
  }
  if (static_cast<std::size_t>(id) != tok.vocab_size())
    field_error(path, field,
                fmt::format("added token '{}' has id {}, expected the next free id {} (added ids must follow the "
                            "vocabulary without gaps)",
                            content, id, tok.vocab_size()));
  tok.add_special_token(content);
}

// The post-processor of tokenizer.json: which special tokens wrap a single sequence.
void apply_post_processor(const json& pp, ByteLevelBpeTokenizer& tok, ByteLevelBpeOptions& options,
                          const fs::path& path) {
  const json* type = member(pp, "type");
  const std::string t = type && type->is_string() ? type->get<std::string>() : "";
  if (t == "ByteLevel" || t.empty()) return;
  if (t == "RobertaProcessing" || t == "BertProcessing") {
    const json* cls = member(pp, "cls");
    const json* sep = member(pp, "sep");
    if (!cls || !sep || !cls->is_array() || !sep->is_array() || cls->empty() || sep->empty() ||
        !(*cls)[0].is_string() || !(*sep)[0].is_string())
      field_error(path, "post_processor", "expected 'cls' and 'sep' as [token, id]");
    tok.set_bos_token((*cls)[0].get<std::string>());
    tok.set_eos_token((*sep)[0].get<std::string>());
    options.add_bos_token = options.add_eos_token = true;
    return;
  }
  if (t == "TemplateProcessing") {
    const json* single = member(pp, "single");
    if (!single || !single->is_array()) field_error(path, "post_processor.single", "expected a list");
    bool seen_sequence = false;
    for (std::size_t i = 0; i < single->size(); ++i) {
      const json& piece = (*single)[i];
      if (member(piece, "Sequence")) {
        seen_sequence = true;
        continue;
      }
      const json* st = member(piece, "SpecialToken");
      const json* id = st ? member(*st, "id") : nullptr;
      if (!id || !id->is_string())
        field_error(path, fmt::format("post_processor.single[{}]", i), "expected Sequence or SpecialToken");
      if (seen_sequence) {
        tok.set_eos_token(id->get<std::string>());
        options.add_eos_token = true;
      } else {
        tok.set_bos_token(id->get<std::string>());
        options.add_bos_token = true;
      }
    }
    return;
  }
  if (t == "Sequence") {
    const json* procs = member(pp, "processors");
    if (procs && procs->is_array())
      for (const json& p : *procs) apply_post_processor(p, tok, options, path);
    return;
  }
  field_error(path, "post_processor.type", "unsupported post-processor '" + t + "'");
}

// Is this pre_tokenizer GPT-2's ByteLevel (with its regex)? Sets add_prefix_space.
void check_pre_tokenizer(const json* pre, ByteLevelBpeOptions& options, const fs::path& path) {
  if (!pre) field_error(path, "pre_tokenizer", "missing: lamia supports byte-level BPE (pre_tokenizer ByteLevel)");
  const json* type = member(*pre, "type");
  const std::string t = type && type->is_string() ? type->get<std::string>() : "";
  if (t == "Sequence") {
    const json* list = member(*pre, "pretokenizers");
    if (!list || !list->is_array() || list->size() != 1)
      field_error(path, "pre_tokenizer",
                  "a Sequence of pre-tokenizers other than a single ByteLevel is not supported (lamia implements "
                  "GPT-2's ByteLevel pre-tokenization only)");
    check_pre_tokenizer(&(*list)[0], options, path);
    return;
  }
  if (t != "ByteLevel")
    field_error(path, "pre_tokenizer.type",
                "'" + t + "' is not supported: lamia loads byte-level BPE models (pre_tokenizer ByteLevel)");
  if (auto v = bool_field(*pre, "use_regex", path); v && !*v)
    field_error(path, "pre_tokenizer.use_regex", "false is not supported (GPT-2's regex is built in)");
  if (auto v = bool_field(*pre, "add_prefix_space", path)) options.add_prefix_space = *v;
}

}  // namespace

std::unique_ptr<ByteLevelBpeTokenizer> ByteLevelBpeTokenizer::from_files(const fs::path& vocab_json,
                                                                         const fs::path& merges_txt) {
  auto vocab = read_flat_json(vocab_json);
  auto merges = read_merges(merges_txt);
  check_merges(merges, vocab, merges_txt, vocab_json);
  return std::make_unique<ByteLevelBpeTokenizer>(vocab, merges.merges, ByteLevelBpeOptions{}, vocab_json.string());
}

std::unique_ptr<ByteLevelBpeTokenizer> ByteLevelBpeTokenizer::from_tokenizer_json(const fs::path& path) {
  const json doc = parse_json_file(path);
  if (!doc.is_object()) field_error(path, "", "expected a JSON object");
  const json* model = member(doc, "model");
  if (!model || !model->is_object()) field_error(path, "model", "missing or not an object");
  if (const json* type = member(*model, "type"); type && *type != "BPE")
    field_error(path, "model.type", "'" + type->get<std::string>() + "' is not supported: lamia loads BPE models");
  if (member(*model, "dropout")) field_error(path, "model.dropout", "BPE dropout is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json* v = member(*model, key);
    if (v && !(v->is_string() && v->get<std::string>().empty()))
      field_error(path, std::string("model.") + key, "not supported by byte-level BPE");
  }
  if (member(doc, "normalizer")) field_error(path, "normalizer", "normalizers are not supported (expected null)");
  ByteLevelBpeOptions options;
  check_pre_tokenizer(member(doc, "pre_tokenizer"), options, path);
  if (auto v = bool_field(*model, "ignore_merges", path)) options.ignore_merges = *v;

  const json* vocab_json = member(*model, "vocab");
  if (!vocab_json || !vocab_json->is_object()) field_error(path, "model.vocab", "missing or not an object");
  std::vector<std::pair<std::string, TokenId>> vocab;
  vocab.reserve(vocab_json->size());
  for (auto it = vocab_json->begin(); it != vocab_json->end(); ++it) {
    if (!it->is_number_integer() || it->get<long long>() < 0 || it->get<long long>() > 0x7FFFFFFFLL)
      field_error(path, "model.vocab." + it.key(), "expected a non-negative integer id, got " + it->dump());
    vocab.emplace_back(it.key(), it->get<TokenId>());
  }
  const json* merges_json = member(*model, "merges");
  if (!merges_json || !merges_json->is_array()) field_error(path, "model.merges", "missing or not a list");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(merges_json->size());
  for (std::size_t i = 0; i < merges_json->size(); ++i) {
    const json& m = (*merges_json)[i];
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const std::size_t space = s.find(' ');
      if (space == std::string::npos || space == 0 || space + 1 >= s.size() || s.find(' ', space + 1) != std::string::npos)
        field_error(path, fmt::format("model.merges[{}]", i), "expected \"left right\", got '" + s + "'");
      merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      field_error(path, fmt::format("model.merges[{}]", i), "expected \"left right\" or [left, right]");
    }
  }
  std::unique_ptr<ByteLevelBpeTokenizer> tok;
  try {
    tok = std::make_unique<ByteLevelBpeTokenizer>(vocab, merges, options, path.string());
  } catch (const ParseError&) {
    throw;
  } catch (const ValueError& e) {
    throw ParseError({path.string(), 0, "model"}, e.what());
  }
  if (const json* added = member(doc, "added_tokens")) {
    if (!added->is_array()) field_error(path, "added_tokens", "expected a list");
    std::vector<std::pair<TokenId, std::string>> entries;
    for (std::size_t i = 0; i < added->size(); ++i) {
      const json& a = (*added)[i];
      const json* id = member(a, "id");
      const json* content = member(a, "content");
      if (!id || !id->is_number_integer() || id->get<long long>() < 0 || id->get<long long>() > 0x7FFFFFFFLL ||
          !content || !content->is_string())
        field_error(path, fmt::format("added_tokens[{}]", i), "expected {\"id\": int >= 0, \"content\": string}");
      entries.emplace_back(id->get<TokenId>(), content->get<std::string>());
    }
    std::sort(entries.begin(), entries.end());
    for (const auto& [id, content] : entries) add_token_with_id(*tok, content, id, path, "added_tokens");
  }
  if (const json* pp = member(doc, "post_processor")) apply_post_processor(*pp, *tok, options, path);
  tok->set_options(options);
  return tok;
}

std::unique_ptr<ByteLevelBpeTokenizer> ByteLevelBpeTokenizer::from_pretrained(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw IOError("tokenizer folder " + dir.string() + " does not exist or is not a directory");
  std::unique_ptr<ByteLevelBpeTokenizer> tok;
  if (fs::exists(dir / "tokenizer.json")) {
    tok = from_tokenizer_json(dir / "tokenizer.json");
  } else if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt")) {
    tok = from_files(dir / "vocab.json", dir / "merges.txt");
    if (fs::exists(dir / "added_tokens.json")) {
      const fs::path path = dir / "added_tokens.json";
      auto entries = read_flat_json(path);
      std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
      for (const auto& [content, id] : entries) add_token_with_id(*tok, content, id, path, content);
    }
  } else {
    throw IOError("tokenizer folder " + dir.string() +
                  " has neither tokenizer.json nor vocab.json + merges.txt");
  }
  ByteLevelBpeOptions options = tok->options();

  json config = json::object();
  const fs::path config_path = dir / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    config = parse_json_file(config_path);
    if (!config.is_object()) field_error(config_path, "", "expected a JSON object");
    if (const json* decoder = member(config, "added_tokens_decoder")) {
      if (!decoder->is_object()) field_error(config_path, "added_tokens_decoder", "expected an object");
      std::vector<std::pair<TokenId, std::string>> entries;
      for (auto it = decoder->begin(); it != decoder->end(); ++it) {
        const std::string field = "added_tokens_decoder." + it.key();
        char* end = nullptr;
        const long long id = std::strtoll(it.key().c_str(), &end, 10);
        if (it.key().empty() || *end != '\0' || id < 0) field_error(config_path, field, "the key must be an id");
        const json* content = member(*it, "content");
        if (!content || !content->is_string()) field_error(config_path, field, "expected a string 'content'");
        entries.emplace_back(static_cast<TokenId>(id), content->get<std::string>());
      }
      std::sort(entries.begin(), entries.end());
      for (const auto& [id, content] : entries)
        add_token_with_id(*tok, content, id, config_path, "added_tokens_decoder." + std::to_string(id));
    }
    if (auto v = bool_field(config, "add_bos_token", config_path)) options.add_bos_token = *v;
    if (auto v = bool_field(config, "add_eos_token", config_path)) options.add_eos_token = *v;
    if (auto v = bool_field(config, "add_prefix_space", config_path)) options.add_prefix_space = *v;
  }
  json map = json::object();
  const fs::path map_path = dir / "special_tokens_map.json";
  if (fs::exists(map_path)) {
    map = parse_json_file(map_path);
    if (!map.is_object()) field_error(map_path, "", "expected a JSON object");
  }
  // Roles: special_tokens_map.json, then tokenizer_config.json, then GPT-2's
  // defaults (<|endoftext|> for bos, eos and unk when the vocabulary has it).
  using Setter = TokenId (ByteLevelBpeTokenizer::*)(const std::string&);
  const std::pair<const char*, Setter> roles[] = {{"bos_token", &ByteLevelBpeTokenizer::set_bos_token},
                                                  {"eos_token", &ByteLevelBpeTokenizer::set_eos_token},
                                                  {"unk_token", &ByteLevelBpeTokenizer::set_unk_token},
                                                  {"pad_token", &ByteLevelBpeTokenizer::set_pad_token}};
  const SpecialTokenIds before = tok->special_tokens();
  for (const auto& [key, setter] : roles) {
    std::optional<std::string> content = token_content(map, key, map_path);
    if (!content) content = token_content(config, key, config_path);
    const std::string role(key);
    const bool already = (role == "bos_token" && before.bos) || (role == "eos_token" && before.eos) ||
                         (role == "unk_token" && before.unk) || (role == "pad_token" && before.pad);
    if (!content && !already && role != "pad_token" && tok->token_to_id("<|endoftext|>")) content = "<|endoftext|>";
    if (content) ((*tok).*setter)(*content);
  }
  for (const auto* src : {&map, &config}) {
    const fs::path& p = src == &map ? map_path : config_path;
    if (const json* extra = member(*src, "additional_special_tokens")) {
      if (!extra->is_array()) field_error(p, "additional_special_tokens", "expected a list");
      for (std::size_t i = 0; i < extra->size(); ++i) {
        const json& e = (*extra)[i];
        if (e.is_string()) tok->add_special_token(e.get<std::string>());
        else if (const json* c = member(e, "content"); c && c->is_string()) tok->add_special_token(c->get<std::string>());
        else field_error(p, fmt::format("additional_special_tokens[{}]", i), "expected a string or {\"content\": ...}");
      }
    }
  }
  tok->set_options(options);
  return tok;
}

void ByteLevelBpeTokenizer::save(const fs::path& dir) const {
  if (options_.ignore_merges)
    throw ValueError("cannot save a tokenizer with ignore_merges as vocab.json + merges.txt "
                     "(Hugging Face's slow format has no such option)");
  for (const auto& m : merges_)
    for (int k = 0; k < 2; ++k)
      if (tokens_[static_cast<std::size_t>(m[k])].spelling.find(' ') != std::string::npos)
        throw ValueError("cannot save merges.txt: token '" + tokens_[static_cast<std::size_t>(m[k])].spelling +
                         "' contains a space");
  write_file_atomically(dir / "vocab.json", [&](std::ostream& out) {
    out << "{";
    bool first = true;
    for (std::size_t id = 0; id < base_size_; ++id) {
      if (!tokens_[id].present) continue;
      out << (first ? "\n" : ",\n") << json(tokens_[id].spelling).dump() << ": " << id;
      first = false;
    }
    out << "\n}\n";
  });
  write_file_atomically(dir / "merges.txt", [&](std::ostream& out) {
    out << "#version: 0.2\n";
    for (const auto& m : merges_)
      out << tokens_[static_cast<std::size_t>(m[0])].spelling << ' ' << tokens_[static_cast<std::size_t>(m[1])].spelling
          << '\n';
  });
  nlohmann::ordered_json added_ordered = nlohmann::ordered_json::object();
  for (std::size_t id = base_size_; id < tokens_.size(); ++id) added_ordered[tokens_[id].spelling] = id;
  write_text_atomically(dir / "added_tokens.json", added_ordered.dump(2) + "\n");

  nlohmann::ordered_json map = nlohmann::ordered_json::object();
  std::set<TokenId> with_role;
  const std::pair<const char*, std::optional<TokenId>> roles[] = {
      {"bos_token", special_.bos}, {"eos_token", special_.eos}, {"unk_token", special_.unk}, {"pad_token", special_.pad}};
  for (const auto& [key, id] : roles) {
    if (!id) continue;
    map[key] = tokens_[static_cast<std::size_t>(*id)].spelling;
    with_role.insert(*id);
  }
  nlohmann::ordered_json extra = nlohmann::ordered_json::array();
  for (std::size_t id = 0; id < tokens_.size(); ++id)
    if (tokens_[id].present && tokens_[id].special && !with_role.count(static_cast<TokenId>(id)))
      extra.push_back(tokens_[id].spelling);
  if (!extra.empty()) map["additional_special_tokens"] = extra;
  write_text_atomically(dir / "special_tokens_map.json", map.dump(2) + "\n");

  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  config["tokenizer_class"] = "GPT2Tokenizer";
  config["add_bos_token"] = options_.add_bos_token;
  config["add_eos_token"] = options_.add_eos_token;
  config["add_prefix_space"] = options_.add_prefix_space;
  config["errors"] = "replace";
  write_text_atomically(dir / "tokenizer_config.json", config.dump(2) + "\n");
}

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& dir) { return ByteLevelBpeTokenizer::from_pretrained(dir); }

}  // namespace lamia
