#include <lamia/core/errors.hpp>
#include <lamia/data/catalog.hpp>
#include <lamia/text/bpe_trainer.hpp>
#include <lamia/text/pretokenizer.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

namespace lamia {
namespace {

using PairKey = std::uint64_t;

PairKey make_pair_key(TokenId a, TokenId b) noexcept {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
}
TokenId left_of(PairKey k) noexcept { return static_cast<TokenId>(k >> 32); }
TokenId right_of(PairKey k) noexcept { return static_cast<TokenId>(k & 0xFFFFFFFFu); }

struct HeapEntry {
  std::int64_t count;
  PairKey pair;
  // Max-heap order: higher count first, then the smaller (left, right) pair.
  bool operator<(const HeapEntry& o) const noexcept { return count != o.count ? count < o.count : pair > o.pair; }
};

std::vector<std::string> special_list(const BpeTrainerOptions& options) {
  std::vector<std::string> out;
  auto add = [&](const std::string& s) {
    if (s.empty()) return;
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  };
  for (const auto& s : options.special_tokens) {
    if (s.empty()) throw ValueError("BpeTrainerOptions.special_tokens: a special token must not be empty");
    add(s);
  }
  for (const auto* s : {&options.bos_token, &options.pad_token, &options.eos_token, &options.unk_token}) add(*s);
  for (const auto& s : out)
    if (!is_valid_utf8(s))
      throw ValueError("BpeTrainerOptions.special_tokens: a special token is not valid UTF-8");
  return out;
}

ByteLevelBpeTokenizer train_impl(const std::vector<std::string_view>& texts, const BpeTrainerOptions& options,
                                 BpeTrainerReport* report) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<std::string> specials = special_list(options);
  const std::size_t min_size = specials.size() + 256;
  if (options.vocab_size < min_size)
    throw ValueError(fmt::format("BpeTrainerOptions.vocab_size must be at least {} (256 bytes + {} special "
                                 "tokens), got {}",
                                 min_size, specials.size(), options.vocab_size));
  if (options.vocab_size > 0x7FFFFFFF)
    throw ValueError(fmt::format("BpeTrainerOptions.vocab_size too large: {}", options.vocab_size));
  if (options.min_frequency == 0) throw ValueError("BpeTrainerOptions.min_frequency must be >= 1, got 0");

  BpeTrainerReport rep;
  rep.num_texts = texts.size();

  // 1. Count pieces.
  std::unordered_map<std::string_view, std::int64_t> piece_counts;
  {
    std::vector<std::string_view> pieces;
    for (std::string_view text : texts) {
      rep.num_bytes += text.size();
      pieces.clear();
      gpt2_pretokenize(text, pieces);
      rep.num_pieces += pieces.size();
      for (std::string_view p : pieces) ++piece_counts[p];
    }
  }
  rep.num_unique_pieces = piece_counts.size();

  // 2. The initial vocabulary: specials, then bytes in GPT-2's order.
  std::vector<std::string> spellings;  // by id
  std::unordered_map<std::string, TokenId> ids;
  for (const auto& s : specials) {
    ids.emplace(s, static_cast<TokenId>(spellings.size()));
    spellings.push_back(s);
  }
  const auto& b2u = byte_to_unicode();
  std::array<int, 256> order{};
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return b2u[a] < b2u[b]; });
  std::array<TokenId, 256> byte_id{};
  for (int b : order) {
    const std::string s = bytes_to_token(std::string(1, static_cast<char>(b)));
    auto [it, fresh] = ids.emplace(s, static_cast<TokenId>(spellings.size()));
    if (!fresh)
      throw ValueError(fmt::format("BpeTrainerOptions.special_tokens: '{}' is the spelling of byte 0x{:02X}", s, b));
    byte_id[b] = it->second;
    spellings.push_back(s);
  }

  // 3. Words (distinct pieces of two or more bytes) and their pair counts.
  std::vector<std::vector<TokenId>> words;
  std::vector<std::int64_t> counts;
  words.reserve(piece_counts.size());
  counts.reserve(piece_counts.size());
  {
    // Deterministic word order (the map's order is not).
    std::vector<std::pair<std::string_view, std::int64_t>> sorted(piece_counts.begin(), piece_counts.end());
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [piece, count] : sorted) {
      if (piece.size() < 2) continue;
      std::vector<TokenId> w(piece.size());
      for (std::size_t i = 0; i < piece.size(); ++i) w[i] = byte_id[static_cast<unsigned char>(piece[i])];
      words.push_back(std::move(w));
      counts.push_back(count);
    }
  }
  std::unordered_map<PairKey, std::int64_t> pair_counts;
  std::unordered_map<PairKey, std::vector<std::uint32_t>> where;
  pair_counts.reserve(words.size() * 2);
  for (std::uint32_t w = 0; w < words.size(); ++w) {
    const auto& word = words[w];
    for (std::size_t i = 0; i + 1 < word.size(); ++i) {
      const PairKey k = make_pair_key(word[i], word[i + 1]);
      pair_counts[k] += counts[w];
      auto& list = where[k];
      if (list.empty() || list.back() != w) list.push_back(w);
    }
  }
  std::vector<HeapEntry> heap;
  heap.reserve(pair_counts.size());
  for (const auto& [k, c] : pair_counts) heap.push_back({c, k});
  std::make_heap(heap.begin(), heap.end());

  // 4. Merge.
  std::vector<std::pair<std::string, std::string>> merges;
  std::unordered_set<PairKey> forbidden;  // pairs whose result would spell a special token
  std::unordered_map<PairKey, std::int64_t> delta;
  std::vector<TokenId> merged_word;
  rep.stop_reason = "no pair left to merge";
  while (spellings.size() < options.vocab_size) {
    if (heap.empty()) break;
    std::pop_heap(heap.begin(), heap.end());
    const HeapEntry top = heap.back();
    heap.pop_back();
    auto pc = pair_counts.find(top.pair);
    const std::int64_t current = pc == pair_counts.end() ? 0 : pc->second;
    if (current != top.count) {  // stale entry
      if (current > 0) {
        heap.push_back({current, top.pair});
        std::push_heap(heap.begin(), heap.end());
      }
      continue;
    }
    if (current < static_cast<std::int64_t>(options.min_frequency)) {
      rep.stop_reason = "no pair reaches min_frequency";
      break;
    }
    if (forbidden.count(top.pair)) continue;
    const TokenId left = left_of(top.pair), right = right_of(top.pair);
    const std::string spelling = spellings[static_cast<std::size_t>(left)] + spellings[static_cast<std::size_t>(right)];
    TokenId merged_id;
    if (auto it = ids.find(spelling); it != ids.end()) {
      if (static_cast<std::size_t>(it->second) < specials.size()) {  // would spell a special token
        forbidden.insert(top.pair);
        continue;
      }
      merged_id = it->second;  // another merge already made this string
    } else {
      merged_id = static_cast<TokenId>(spellings.size());
      ids.emplace(spelling, merged_id);
      spellings.push_back(spelling);
    }
    merges.emplace_back(spellings[static_cast<std::size_t>(left)], spellings[static_cast<std::size_t>(right)]);
    rep.merge_counts.push_back(static_cast<std::size_t>(current));

    // Apply the merge to every word that has the pair; collect count changes.
    delta.clear();
    auto& list = where[top.pair];
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    const std::vector<std::uint32_t> targets = std::move(list);
    where.erase(top.pair);
    for (std::uint32_t w : targets) {
      auto& word = words[w];
      const std::int64_t c = counts[w];
      merged_word.clear();
      bool changed = false;
      for (std::size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == left && word[i + 1] == right) {
          changed = true;
          if (!merged_word.empty()) {
            delta[make_pair_key(merged_word.back(), left)] -= c;
            const PairKey added = make_pair_key(merged_word.back(), merged_id);
            delta[added] += c;
            auto& l = where[added];
            if (l.empty() || l.back() != w) l.push_back(w);
          }
          if (i + 2 < word.size()) {
            delta[make_pair_key(right, word[i + 2])] -= c;
            const PairKey added = make_pair_key(merged_id, word[i + 2]);
            delta[added] += c;
            auto& l = where[added];
            if (l.empty() || l.back() != w) l.push_back(w);
          }
          merged_word.push_back(merged_id);
          i += 2;
        } else {
          merged_word.push_back(word[i]);
          ++i;
        }
      }
      if (changed) word.assign(merged_word.begin(), merged_word.end());
    }
    pair_counts.erase(top.pair);
    for (const auto& [k, d] : delta) {
      if (k == top.pair || d == 0) continue;
      auto& v = pair_counts[k];
      v += d;
      if (v <= 0) {
        pair_counts.erase(k);
      } else if (d > 0) {
        heap.push_back({v, k});
        std::push_heap(heap.begin(), heap.end());
      }
    }
  }
  if (spellings.size() >= options.vocab_size) rep.stop_reason = "vocab_size reached";
  rep.num_merges = merges.size();

  std::vector<std::pair<std::string, TokenId>> vocab;
  vocab.reserve(spellings.size());
  for (std::size_t id = 0; id < spellings.size(); ++id) vocab.emplace_back(spellings[id], static_cast<TokenId>(id));
  ByteLevelBpeOptions bpe_options;
  bpe_options.add_bos_token = options.add_bos_token;
  bpe_options.add_eos_token = options.add_eos_token;
  ByteLevelBpeTokenizer tok(vocab, merges, bpe_options, "train_bpe");
  for (const auto& s : specials) tok.add_special_token(s);
  if (!options.bos_token.empty()) tok.set_bos_token(options.bos_token);
  if (!options.eos_token.empty()) tok.set_eos_token(options.eos_token);
  if (!options.pad_token.empty()) tok.set_pad_token(options.pad_token);
  if (!options.unk_token.empty()) tok.set_unk_token(options.unk_token);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (report) *report = std::move(rep);
  return tok;
}

}  // namespace

BpeTrainerOptions bpe_trainer_default_options() { return BpeTrainerOptions{}; }

ByteLevelBpeTokenizer train_bpe(const std::vector<std::string_view>& texts, const BpeTrainerOptions& options,
                                BpeTrainerReport* report) {
  return train_impl(texts, options, report);
}

ByteLevelBpeTokenizer train_bpe(const std::vector<std::string>& texts, const BpeTrainerOptions& options,
                                BpeTrainerReport* report) {
  std::vector<std::string_view> views(texts.begin(), texts.end());
  return train_impl(views, options, report);
}

std::vector<std::string> catalog_texts(const Catalog& catalog, bool with_attribute_names) {
  std::vector<std::string> out;
  out.reserve(catalog.size() * catalog.num_attributes());
  for (ItemIndex item = 0; item < static_cast<ItemIndex>(catalog.size()); ++item) {
    for (std::size_t a = 0; a < catalog.num_attributes(); ++a) {
      const std::string& v = catalog.value(item, a);
      if (v.empty()) continue;
      out.push_back(with_attribute_names ? catalog.attribute_names()[a] + ": " + v : v);
    }
  }
  return out;
}

ByteLevelBpeTokenizer train_bpe(const Catalog& catalog, const BpeTrainerOptions& options, BpeTrainerReport* report,
                                bool with_attribute_names) {
  return train_bpe(catalog_texts(catalog, with_attribute_names), options, report);
}

}  // namespace lamia
