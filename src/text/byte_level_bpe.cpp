#include <lamia/core/errors.hpp>
#include <lamia/text/byte_level_bpe.hpp>
#include <lamia/text/pretokenizer.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string_view>

namespace lamia {
namespace {

std::uint64_t pair_key(TokenId a, TokenId b) noexcept {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string squote(std::string_view s) {
  std::string out = "'";
  out += s;
  out += "'";
  return out;
}

}  // namespace

const std::array<char32_t, 256>& byte_to_unicode() noexcept {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    std::array<bool, 256> printable{};
    for (int b = '!'; b <= '~'; ++b) printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) t[b] = printable[b] ? char32_t(b) : next++;
    return t;
  }();
  return table;
}

std::string bytes_to_token(std::string_view bytes) {
  const auto& table = byte_to_unicode();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) append_utf8(out, table[b]);
  return out;
}

std::optional<std::string> token_to_bytes(std::string_view token) {
  static const std::array<int, 324> inverse = [] {
    std::array<int, 324> inv{};
    inv.fill(-1);
    const auto& table = byte_to_unicode();
    for (int b = 0; b < 256; ++b) inv[table[b]] = b;
    return inv;
  }();
  std::string out;
  out.reserve(token.size());
  std::size_t pos = 0;
  while (pos < token.size()) {
    char32_t cp = 0;
    const int len = decode_utf8(token.substr(pos), cp);
    if (len == 0 || cp >= inverse.size() || inverse[cp] < 0) return std::nullopt;
    out += static_cast<char>(inverse[cp]);
    pos += static_cast<std::size_t>(len);
  }
  return out;
}

// ---------------------------------------------------------------------------
// The piece cache: piece bytes -> ids, bounded, shared by all threads.

struct ByteLevelBpeTokenizer::Cache {
  static constexpr std::size_t kMaxEntries = 1 << 18;
  static constexpr std::size_t kMaxPieceBytes = 128;
  // Open addressing with linear probing over a flat arena: no allocation per entry.
  struct Slot {
    std::uint64_t hash = 0;  // 0: empty
    std::uint32_t key_offset = 0;
    std::uint32_t ids_offset = 0;
    std::uint16_t key_length = 0;
    std::uint16_t num_ids = 0;
  };
  std::mutex mutex;
  std::vector<Slot> slots = std::vector<Slot>(1 << 12);
  std::string keys;
  std::vector<TokenId> ids;
  std::size_t count = 0;

  static std::uint64_t hash_of(std::string_view piece) noexcept {
    return std::hash<std::string_view>{}(piece) | 1u;
  }
  // The slot holding piece, or the empty slot where it would go.
  std::size_t find(std::string_view piece, std::uint64_t h) const noexcept {
    const std::size_t mask = slots.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots[i];
      if (s.hash == 0) return i;
      if (s.hash == h && s.key_length == piece.size() &&
          std::memcmp(keys.data() + s.key_offset, piece.data(), piece.size()) == 0)
        return i;
    }
  }
  bool lookup(std::string_view piece, std::vector<TokenId>& out) {
    const std::uint64_t h = hash_of(piece);
    std::lock_guard<std::mutex> lock(mutex);
    const Slot& s = slots[find(piece, h)];
    if (s.hash == 0) return false;
    out.insert(out.end(), ids.begin() + s.ids_offset, ids.begin() + s.ids_offset + s.num_ids);
    return true;
  }
  void insert(std::string_view piece, const TokenId* first, std::size_t n) {
    const std::uint64_t h = hash_of(piece);
    std::lock_guard<std::mutex> lock(mutex);
    if (count >= kMaxEntries) clear_locked();
    if ((count + 1) * 2 > slots.size()) grow();
    Slot& s = slots[find(piece, h)];
    if (s.hash != 0) return;
    s.hash = h;
    s.key_offset = static_cast<std::uint32_t>(keys.size());
    s.key_length = static_cast<std::uint16_t>(piece.size());
    s.ids_offset = static_cast<std::uint32_t>(ids.size());
    s.num_ids = static_cast<std::uint16_t>(n);
    keys.append(piece.data(), piece.size());
    ids.insert(ids.end(), first, first + n);
    ++count;
  }
  void grow() {
    std::vector<Slot> old(slots.size() * 2);
    old.swap(slots);
    const std::size_t mask = slots.size() - 1;
    for (const Slot& s : old) {
      if (s.hash == 0) continue;
      std::size_t i = s.hash & mask;
      while (slots[i].hash != 0) i = (i + 1) & mask;
      slots[i] = s;
    }
  }
  void clear_locked() {
    slots.assign(1 << 12, Slot{});
    keys.clear();
    ids.clear();
    count = 0;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex);
    clear_locked();
  }
};

// A byte trie over the strings of special tokens, for encode(text, true).
struct ByteLevelBpeTokenizer::SpecialTrie {
  struct Node {
    std::vector<std::pair<unsigned char, std::int32_t>> children;
    TokenId id = -1;
  };
  std::vector<Node> nodes{Node{}};
  std::array<bool, 256> first{};

  void insert(std::string_view s, TokenId id) {
    std::int32_t node = 0;
    for (unsigned char c : s) {
      std::int32_t child = -1;
      for (const auto& [byte, index] : nodes[node].children)
        if (byte == c) child = index;
      if (child < 0) {
        child = static_cast<std::int32_t>(nodes.size());
        nodes[node].children.emplace_back(c, child);
        nodes.emplace_back();
      }
      node = child;
    }
    nodes[node].id = id;
    first[static_cast<unsigned char>(s[0])] = true;
  }
  // Longest special token starting at text[pos]: (id, length) or (-1, 0).
  std::pair<TokenId, std::size_t> match(std::string_view text, std::size_t pos) const {
    std::pair<TokenId, std::size_t> best{-1, 0};
    std::int32_t node = 0;
    for (std::size_t i = pos; i < text.size(); ++i) {
      const auto c = static_cast<unsigned char>(text[i]);
      std::int32_t child = -1;
      for (const auto& [byte, index] : nodes[node].children)
        if (byte == c) child = index;
      if (child < 0) break;
      node = child;
      if (nodes[node].id >= 0) best = {nodes[node].id, i + 1 - pos};
    }
    return best;
  }
};

// ---------------------------------------------------------------------------

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(const std::vector<std::pair<std::string, TokenId>>& vocab,
                                             const std::vector<std::pair<std::string, std::string>>& merges,
                                             ByteLevelBpeOptions options, const std::string& source)
    : options_(options), cache_(std::make_unique<Cache>()) {
  TokenId max_id = -1;
  for (const auto& [spelling, id] : vocab) {
    if (id < 0) throw ValueError(fmt::format("{}: token {} has negative id {}", source, squote(spelling), id));
    max_id = std::max(max_id, id);
  }
  tokens_.resize(static_cast<std::size_t>(max_id) + 1);
  by_spelling_.reserve(vocab.size());
  for (const auto& [spelling, id] : vocab) {
    Token& t = tokens_[static_cast<std::size_t>(id)];
    if (t.present)
      throw ValueError(fmt::format("{}: tokens {} and {} both have id {}", source, squote(t.spelling),
                                   squote(spelling), id));
    if (!by_spelling_.emplace(spelling, id).second)
      throw ValueError(fmt::format("{}: token {} appears twice", source, squote(spelling)));
    t.spelling = spelling;
    auto bytes = token_to_bytes(spelling);
    t.bytes = bytes ? std::move(*bytes) : spelling;  // not byte-level (e.g. "<s>" is, "<|x|>" is): its text
    t.present = true;
  }
  base_size_ = tokens_.size();
  const auto& table = byte_to_unicode();
  for (int b = 0; b < 256; ++b) {
    std::string spelling;
    append_utf8(spelling, table[b]);
    auto it = by_spelling_.find(spelling);
    if (it == by_spelling_.end())
      throw ValueError(fmt::format("{}: no token for byte 0x{:02X} (spelled {}); a byte-level vocabulary "
                                   "needs all 256 byte tokens",
                                   source, b, squote(spelling)));
    byte_ids_[static_cast<std::size_t>(b)] = it->second;
  }
  merges_.reserve(merges.size());
  merge_map_.reserve(merges.size() * 2);
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = by_spelling_.find(a);
    auto ib = by_spelling_.find(b);
    auto im = by_spelling_.find(a + b);
    const char* missing = ia == by_spelling_.end() ? "left token" : ib == by_spelling_.end() ? "right token"
                                                                 : im == by_spelling_.end() ? "merged token"
                                                                                            : nullptr;
    if (missing)
      throw ValueError(fmt::format("{}: merge {} ({} {}): the {} {} is not in the vocabulary", source, rank,
                                   squote(a), squote(b), missing,
                                   squote(ia == by_spelling_.end() ? a : ib == by_spelling_.end() ? b : a + b)));
    merges_.push_back({ia->second, ib->second, im->second});
    // Like GPT-2 and Hugging Face: a repeated pair keeps its last rank.
    merge_map_[pair_key(ia->second, ib->second)] = {static_cast<std::int32_t>(rank), im->second};
  }
  rebuild_special_trie();
}

ByteLevelBpeTokenizer::~ByteLevelBpeTokenizer() = default;
ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(ByteLevelBpeTokenizer&&) noexcept = default;
ByteLevelBpeTokenizer& ByteLevelBpeTokenizer::operator=(ByteLevelBpeTokenizer&&) noexcept = default;

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(const ByteLevelBpeTokenizer& other)
    : tokens_(other.tokens_),
      base_size_(other.base_size_),
      by_spelling_(other.by_spelling_),
      merge_map_(other.merge_map_),
      merges_(other.merges_),
      byte_ids_(other.byte_ids_),
      special_(other.special_),
      options_(other.options_),
      special_trie_(other.special_trie_),
      cache_(std::make_unique<Cache>()) {}

ByteLevelBpeTokenizer& ByteLevelBpeTokenizer::operator=(const ByteLevelBpeTokenizer& other) {
  if (this != &other) {
    ByteLevelBpeTokenizer copy(other);
    *this = std::move(copy);
  }
  return *this;
}

void ByteLevelBpeTokenizer::set_options(const ByteLevelBpeOptions& options) {
  options_ = options;
  cache_->clear();  // ignore_merges changes piece encodings
}

void ByteLevelBpeTokenizer::rebuild_special_trie() {
  auto trie = std::make_shared<SpecialTrie>();
  for (std::size_t id = 0; id < tokens_.size(); ++id) {
    const Token& t = tokens_[id];
    if (t.present && t.special && !t.bytes.empty()) trie->insert(t.bytes, static_cast<TokenId>(id));
  }
  special_trie_ = std::move(trie);
}

std::array<TokenId, 3> ByteLevelBpeTokenizer::merge(std::size_t rank) const {
  if (rank >= merges_.size())
    throw IndexError(fmt::format("merge rank {} out of range: the tokenizer has {} merges", rank, merges_.size()));
  return merges_[rank];
}

void ByteLevelBpeTokenizer::check_id(TokenId id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size() || !tokens_[static_cast<std::size_t>(id)].present)
    throw IndexError(fmt::format("token id {} is not in the vocabulary (vocab_size {}{})", id, tokens_.size(),
                                 id >= 0 && static_cast<std::size_t>(id) < tokens_.size() ? ", unused id" : ""));
}

const std::string& ByteLevelBpeTokenizer::token_bytes(TokenId id) const {
  check_id(id);
  return tokens_[static_cast<std::size_t>(id)].bytes;
}

bool ByteLevelBpeTokenizer::is_special(TokenId id) const {
  check_id(id);
  return tokens_[static_cast<std::size_t>(id)].special;
}

// ---------------------------------------------------------------------------
// BPE of one piece: merges lowest rank first, leftmost first among equal ranks.

void ByteLevelBpeTokenizer::bpe_piece(std::string_view piece, std::vector<TokenId>& out) const {
  if (piece.size() == 1) {
    out.push_back(byte_ids_[static_cast<unsigned char>(piece[0])]);
    return;
  }
  const bool cacheable = piece.size() <= Cache::kMaxPieceBytes;
  if (cacheable && cache_->lookup(piece, out)) return;
  const std::size_t first_out = out.size();

  if (options_.ignore_merges) {
    auto it = by_spelling_.find(bytes_to_token(piece));
    if (it != by_spelling_.end() && !tokens_[static_cast<std::size_t>(it->second)].special) {
      out.push_back(it->second);
      if (cacheable) cache_->insert(piece, out.data() + first_out, 1);
      return;
    }
  }

  struct Symbol {
    TokenId id;
    std::int32_t prev, next;
  };
  struct Candidate {
    std::int32_t rank;
    std::int32_t pos;
    // std::push_heap builds a max-heap: "less" means higher rank, then later position.
    bool operator<(const Candidate& o) const noexcept { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  const auto n = static_cast<std::int32_t>(piece.size());
  symbols.resize(static_cast<std::size_t>(n));
  heap.clear();
  for (std::int32_t i = 0; i < n; ++i)
    symbols[i] = {byte_ids_[static_cast<unsigned char>(piece[static_cast<std::size_t>(i)])], i - 1,
                  i + 1 < n ? i + 1 : -1};
  auto push = [&](std::int32_t pos) {
    const std::int32_t next = symbols[pos].next;
    if (next < 0) return;
    auto it = merge_map_.find(pair_key(symbols[pos].id, symbols[next].id));
    if (it == merge_map_.end()) return;
    heap.push_back({it->second.rank, pos});
    std::push_heap(heap.begin(), heap.end());
  };
  for (std::int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& s = symbols[c.pos];
    if (s.id < 0 || s.next < 0) continue;  // merged away, or now last
    auto it = merge_map_.find(pair_key(s.id, symbols[s.next].id));
    if (it == merge_map_.end() || it->second.rank != c.rank) continue;  // stale
    const std::int32_t removed = s.next;
    s.id = it->second.merged;
    s.next = symbols[removed].next;
    if (s.next >= 0) symbols[s.next].prev = c.pos;
    symbols[removed].id = -1;
    if (s.prev >= 0) push(s.prev);
    push(c.pos);
  }
  for (std::int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
  if (cacheable) cache_->insert(piece, out.data() + first_out, out.size() - first_out);
}

void ByteLevelBpeTokenizer::encode_plain(std::string_view text, std::vector<TokenId>& out) const {
  if (text.empty()) return;
  std::string prefixed;
  if (options_.add_prefix_space && text[0] != ' ') {
    prefixed.reserve(text.size() + 1);
    prefixed += ' ';
    prefixed += text;
    text = prefixed;
  }
  thread_local std::vector<std::string_view> pieces;
  pieces.clear();
  gpt2_pretokenize(text, pieces);
  out.reserve(out.size() + text.size() / 3);
  for (std::string_view piece : pieces) bpe_piece(piece, out);
}

void ByteLevelBpeTokenizer::encode_into(std::string_view text, std::vector<TokenId>& out) const {
  encode_plain(text, out);
}

std::vector<TokenId> ByteLevelBpeTokenizer::encode(std::string_view text) const {
  std::vector<TokenId> out;
  encode_plain(text, out);
  return out;
}

std::vector<TokenId> ByteLevelBpeTokenizer::encode(std::string_view text, bool parse_special) const {
  if (!parse_special) return encode(text);
  std::shared_ptr<const SpecialTrie> trie = special_trie_;
  std::vector<TokenId> out;
  std::size_t start = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (!trie->first[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    const auto [id, len] = trie->match(text, pos);
    if (id < 0) {
      ++pos;
      continue;
    }
    encode_plain(text.substr(start, pos - start), out);
    out.push_back(id);
    pos += len;
    start = pos;
  }
  encode_plain(text.substr(start), out);
  return out;
}

std::string ByteLevelBpeTokenizer::decode(const std::vector<TokenId>& ids) const {
  std::string out;
  out.reserve(ids.size() * 4);
  for (TokenId id : ids) {
    check_id(id);
    out += tokens_[static_cast<std::size_t>(id)].bytes;
  }
  return out;
}

TokenId ByteLevelBpeTokenizer::add_special_token(const std::string& token) {
  if (token.empty()) throw ValueError("add_special_token: the token must not be empty");
  if (!is_valid_utf8(token))
    throw ValueError("add_special_token: the token must be valid UTF-8, got " + squote(bytes_to_token(token)) +
                     " (byte-level spelling)");
  auto it = by_spelling_.find(token);
  TokenId id;
  if (it != by_spelling_.end()) {
    id = it->second;
    if (tokens_[static_cast<std::size_t>(id)].special) return id;
  } else {
    id = static_cast<TokenId>(tokens_.size());
    tokens_.push_back(Token{token, token, true, false});
    by_spelling_.emplace(token, id);
  }
  tokens_[static_cast<std::size_t>(id)].special = true;
  rebuild_special_trie();
  cache_->clear();  // ignore_merges must not produce a special token
  return id;
}

TokenId ByteLevelBpeTokenizer::set_bos_token(const std::string& token) { return *(special_.bos = add_special_token(token)); }
TokenId ByteLevelBpeTokenizer::set_eos_token(const std::string& token) { return *(special_.eos = add_special_token(token)); }
TokenId ByteLevelBpeTokenizer::set_pad_token(const std::string& token) { return *(special_.pad = add_special_token(token)); }
TokenId ByteLevelBpeTokenizer::set_unk_token(const std::string& token) { return *(special_.unk = add_special_token(token)); }

std::optional<TokenId> ByteLevelBpeTokenizer::token_to_id(std::string_view token) const {
  auto it = by_spelling_.find(std::string(token));
  if (it == by_spelling_.end()) return std::nullopt;
  return it->second;
}

std::string ByteLevelBpeTokenizer::id_to_token(TokenId id) const {
  check_id(id);
  return tokens_[static_cast<std::size_t>(id)].spelling;
}

std::vector<std::string> ByteLevelBpeTokenizer::added_tokens() const {
  std::vector<std::string> out;
  for (const Token& t : tokens_)
    if (t.present && t.special) out.push_back(t.spelling);
  return out;
}

}  // namespace lamia
