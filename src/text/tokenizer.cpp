#include <lamia/text/tokenizer.hpp>

#include <algorithm>

namespace lamia {

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool parse_special) const {
  if (!parse_special) return encode(text);
  // Generic path: leftmost, then longest, occurrence of any added token string.
  std::vector<std::pair<std::string, TokenId>> specials;
  for (const auto& s : added_tokens()) {
    if (s.empty()) continue;
    if (auto id = token_to_id(s)) specials.emplace_back(s, *id);
  }
  std::vector<TokenId> out;
  std::size_t start = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::pair<std::string, TokenId>* best = nullptr;
    for (const auto& s : specials) {
      if (text.compare(pos, s.first.size(), s.first) == 0 && (!best || s.first.size() > best->first.size()))
        best = &s;
    }
    if (!best) {
      ++pos;
      continue;
    }
    if (pos > start) {
      auto part = encode(text.substr(start, pos - start));
      out.insert(out.end(), part.begin(), part.end());
    }
    out.push_back(best->second);
    pos += best->first.size();
    start = pos;
  }
  if (start < text.size()) {
    auto part = encode(text.substr(start));
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

std::vector<TokenId> Tokenizer::encode_with_special_tokens(std::string_view text) const {
  const SpecialTokenIds special = special_tokens();
  std::vector<TokenId> out;
  if (add_bos_token() && special.bos) out.push_back(*special.bos);
  auto body = encode(text, /*parse_special=*/true);
  out.insert(out.end(), body.begin(), body.end());
  if (add_eos_token() && special.eos) out.push_back(*special.eos);
  return out;
}

}  // namespace lamia
