#include <lamia/core/errors.hpp>
#include <lamia/data/detail/random.hpp>
#include <lamia/data/synthetic.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace lamia {

namespace {

// Stream domains: items, users and the vocabulary draw from unrelated streams of one seed.
constexpr std::uint64_t kVocabularyDomain = 1;
constexpr std::uint64_t kItemDomain = 2;
constexpr std::uint64_t kUserDomain = 3;

constexpr std::int64_t kMaxIndex = 2147483647;  // ItemIndex / UserIndex are int32
constexpr std::int64_t kMaxVocabulary = 5000000;

// Pronounceable pseudo-words: 2 or 3 syllables of onset + vowel + optional coda.
std::string pseudo_word(detail::SplitMix64& rng) {
  static const char* const onsets[] = {"b", "d", "f", "g", "k", "l",  "m",  "n",  "p",
                                       "r", "s", "t", "v", "z", "ch", "sh", "tr", "br"};
  static const char* const vowels[] = {"a", "e", "i", "o", "u", "ai", "ou"};
  static const char* const codas[] = {"", "", "", "n", "r", "s", "l"};
  std::string word;
  const auto syllables = 2 + detail::uniform_index(rng, 2);
  for (std::uint64_t s = 0; s < syllables; ++s) {
    word += onsets[detail::uniform_index(rng, std::size(onsets))];
    word += vowels[detail::uniform_index(rng, std::size(vowels))];
    word += codas[detail::uniform_index(rng, std::size(codas))];
  }
  return word;
}

std::string capitalised(std::string w) {
  if (!w.empty() && w[0] >= 'a' && w[0] <= 'z') w[0] = char(w[0] - 'a' + 'A');
  return w;
}

template <class Rng>
const std::string& pick(const std::vector<std::string>& words, Rng& rng) {
  return words[detail::uniform_index(rng, words.size())];
}

}  // namespace

std::vector<SyntheticAttribute> default_synthetic_attributes() {
  return {{"title", AttributeStyle::phrase, {"tone", "topic", "format"}},
          {"description", AttributeStyle::sentences, {"topic", "region", "tone"}},
          {"tags", AttributeStyle::tags, {"topic", "region", "format"}},
          {"category", AttributeStyle::path, {"format", "topic"}}};
}

std::vector<SyntheticAttribute> aspect_per_attribute_synthetic_attributes(const std::vector<std::string>& aspect_names) {
  std::vector<SyntheticAttribute> out{{"description", AttributeStyle::sentences, aspect_names}};
  for (const auto& aspect : aspect_names) out.push_back({aspect + "_text", AttributeStyle::path, {aspect}});
  return out;
}

std::vector<SyntheticAttribute> SyntheticOptions::effective_attributes() const {
  if (attribute_layout == SyntheticAttributeLayout::aspect_per_attribute)
    return aspect_per_attribute_synthetic_attributes(aspect_names);
  return attributes;
}

void SyntheticOptions::validate() const {
  auto fail = [](const std::string& field, const std::string& expected, const std::string& got) {
    throw ValueError(fmt::format("SyntheticOptions: {}: expected {}, got {}", field, expected, got));
  };
  if (num_items < 1 || num_items > kMaxIndex) fail("num_items", "1 .. 2147483647", std::to_string(num_items));
  if (num_users < 0 || num_users > kMaxIndex) fail("num_users", "0 .. 2147483647", std::to_string(num_users));
  if (aspect_names.empty()) fail("aspect_names", "at least one aspect", "none");
  if (aspect_names.size() != aspect_sizes.size())
    fail("aspect_sizes", fmt::format("one size per aspect name ({})", aspect_names.size()),
         fmt::format("{} sizes", aspect_sizes.size()));
  std::int64_t values = 0;
  for (std::size_t a = 0; a < aspect_names.size(); ++a) {
    if (aspect_names[a].empty()) fail(fmt::format("aspect_names[{}]", a), "a non-empty name", "''");
    for (std::size_t b = 0; b < a; ++b)
      if (aspect_names[a] == aspect_names[b])
        fail("aspect_names", "unique names", fmt::format("'{}' twice", aspect_names[a]));
    if (aspect_sizes[a] < 1 || aspect_sizes[a] > 1000000)
      fail(fmt::format("aspect_sizes[{}] ({})", a, aspect_names[a]), "1 .. 1000000", std::to_string(aspect_sizes[a]));
    values += aspect_sizes[a];
  }
  if (words_per_value < 1) fail("words_per_value", ">= 1", std::to_string(words_per_value));
  if (filler_words < 1) fail("filler_words", ">= 1", std::to_string(filler_words));
  if (values * (words_per_value + 1) + filler_words > kMaxVocabulary)
    fail("aspect_sizes, words_per_value, filler_words", fmt::format("a vocabulary of at most {} words", kMaxVocabulary),
         std::to_string(values * (words_per_value + 1) + filler_words));
  const auto listed = effective_attributes();
  if (listed.empty()) fail("attributes", "at least one attribute", "none");
  for (std::size_t t = 0; t < listed.size(); ++t) {
    const auto& attr = listed[t];
    if (attr.name.empty()) fail(fmt::format("attributes[{}].name", t), "a non-empty name", "''");
    for (std::size_t u = 0; u < t; ++u)
      if (listed[u].name == attr.name) fail("attributes", "unique names", fmt::format("'{}' twice", attr.name));
    if (attr.aspects.empty())
      fail(fmt::format("attributes[{}] ({}).aspects", t, attr.name), "at least one aspect name", "none");
    for (const auto& name : attr.aspects)
      if (std::find(aspect_names.begin(), aspect_names.end(), name) == aspect_names.end())
        fail(fmt::format("attributes[{}] ({}).aspects", t, attr.name),
             fmt::format("names from aspect_names ({})", fmt::join(aspect_names, ", ")), fmt::format("'{}'", name));
  }
  if (sentences < 1 || sentences > 1000) fail("sentences", "1 .. 1000", std::to_string(sentences));
  if (filler_per_sentence < 0 || filler_per_sentence > 1000)
    fail("filler_per_sentence", "0 .. 1000", std::to_string(filler_per_sentence));
  if (min_sequence_length < 1) fail("min_sequence_length", ">= 1", std::to_string(min_sequence_length));
  if (max_sequence_length < min_sequence_length || max_sequence_length > 100000)
    fail("max_sequence_length", fmt::format("min_sequence_length ({}) .. 100000", min_sequence_length),
         std::to_string(max_sequence_length));
  if (preferred_values < 1) fail("preferred_values", ">= 1", std::to_string(preferred_values));
  if (candidates < 1 || candidates > 100000) fail("candidates", "1 .. 100000", std::to_string(candidates));
  if (!(noise >= 0.0 && noise <= 1.0)) fail("noise", "a probability in [0, 1]", fmt::format("{}", noise));
  if (!(popularity_skew >= 0.0 && popularity_skew <= 10.0))
    fail("popularity_skew", "0 .. 10", fmt::format("{}", popularity_skew));
  if (!(rating_noise >= 0.0 && rating_noise <= 1.0))
    fail("rating_noise", "a probability in [0, 1]", fmt::format("{}", rating_noise));
  // Bounds that keep every timestamp far from int64 overflow.
  constexpr std::int64_t kCentury = 100LL * 366 * 86400;
  if (start_timestamp < 0 || start_timestamp > 100 * kCentury)
    fail("start_timestamp", "seconds in 0 .. 10^4 years", std::to_string(start_timestamp));
  if (timestamp_span < 0 || timestamp_span > kCentury)
    fail("timestamp_span", "0 .. 100 years of seconds", std::to_string(timestamp_span));
  if (max_gap < 0 || max_gap > 366 * 86400) fail("max_gap", "0 .. one year of seconds", std::to_string(max_gap));
}

// ---------------------------------------------------------------------------------------------
// Generator

SyntheticGenerator::SyntheticGenerator(SyntheticOptions options) : options_(std::move(options)) {
  options_.validate();
  options_.attributes = options_.effective_attributes();
  const auto& names = options_.aspect_names;
  for (const auto& attr : options_.attributes) {
    std::vector<std::size_t> idx;
    for (const auto& a : attr.aspects) idx.push_back(std::size_t(std::find(names.begin(), names.end(), a) - names.begin()));
    attribute_aspects_.push_back(std::move(idx));
  }
  // Every word is unique over the whole vocabulary, so each word identifies its aspect value.
  auto rng = detail::SplitMix64::stream(options_.seed, kVocabularyDomain, 0);
  std::unordered_set<std::string> used;
  auto fresh = [&] {
    for (;;) {
      std::string w = pseudo_word(rng);
      if (used.insert(w).second) return w;
    }
  };
  vocabulary_.resize(names.size());
  value_names_.resize(names.size());
  for (std::size_t a = 0; a < names.size(); ++a) {
    for (std::int64_t v = 0; v < options_.aspect_sizes[a]; ++v) {
      value_names_[a].push_back(capitalised(fresh()));
      std::vector<std::string> words;
      for (std::int64_t w = 0; w < options_.words_per_value; ++w) words.push_back(fresh());
      vocabulary_[a].push_back(std::move(words));
    }
  }
  for (std::int64_t w = 0; w < options_.filler_words; ++w) filler_.push_back(fresh());
}

std::int64_t SyntheticGenerator::popular_item(std::uint64_t bits) const {
  // Inverse CDF of the density x^-s on [1, n+1): item i gets weight ~ (i+1)^-s, in O(1) time
  // and no table, so a million-item catalog needs no popularity array.
  const double n = double(options_.num_items);
  const double u = double(bits >> 11) * (1.0 / 9007199254740992.0);
  const double s = options_.popularity_skew;
  double x;
  if (s == 0.0) {
    x = 1.0 + u * n;
  } else if (std::abs(s - 1.0) < 1e-9) {
    x = std::exp(u * std::log(n + 1.0));
  } else {
    const double a = 1.0 - s;
    x = std::pow(u * (std::pow(n + 1.0, a) - 1.0) + 1.0, 1.0 / a);
  }
  auto i = std::int64_t(x) - 1;
  return std::clamp<std::int64_t>(i, 0, options_.num_items - 1);
}

void SyntheticGenerator::item_aspects(std::int64_t index, std::int32_t* out) const {
  auto rng = detail::SplitMix64::stream(options_.seed, kItemDomain, std::uint64_t(index));
  for (std::size_t a = 0; a < options_.aspect_sizes.size(); ++a)
    out[a] = std::int32_t(detail::uniform_index(rng, std::uint64_t(options_.aspect_sizes[a])));
}

void SyntheticGenerator::item(std::int64_t index, SyntheticItem& out) const {
  if (index < 0 || index >= options_.num_items)
    throw IndexError(fmt::format("SyntheticGenerator::item: index {} out of range [0, {})", index, options_.num_items));
  const std::size_t A = num_aspects();
  // Same stream as item_aspects: the aspects come first, then the text.
  auto rng = detail::SplitMix64::stream(options_.seed, kItemDomain, std::uint64_t(index));
  out.index = index;
  out.id = fmt::format("i{}", index);
  out.aspects.resize(A);
  for (std::size_t a = 0; a < A; ++a)
    out.aspects[a] = std::int32_t(detail::uniform_index(rng, std::uint64_t(options_.aspect_sizes[a])));
  auto word = [&](std::size_t a) -> const std::string& { return pick(vocabulary_[a][std::size_t(out.aspects[a])], rng); };
  out.values.resize(options_.attributes.size());
  std::vector<const std::string*> sentence;
  for (std::size_t t = 0; t < options_.attributes.size(); ++t) {
    const auto& aspects = attribute_aspects_[t];
    std::string& text = out.values[t];
    text.clear();
    switch (options_.attributes[t].style) {
      case AttributeStyle::phrase:
        for (std::size_t k = 0; k < aspects.size(); ++k) {
          if (k) text += ' ';
          text += capitalised(word(aspects[k]));
        }
        break;
      case AttributeStyle::tags:
        for (std::size_t k = 0; k < aspects.size(); ++k) {
          if (k) text += ", ";
          text += word(aspects[k]);
        }
        break;
      case AttributeStyle::path:
        for (std::size_t k = 0; k < aspects.size(); ++k) {
          if (k) text += " > ";
          text += value_names_[aspects[k]][std::size_t(out.aspects[aspects[k]])];
        }
        break;
      case AttributeStyle::sentences:
        for (std::int64_t s = 0; s < options_.sentences; ++s) {
          sentence.clear();
          for (auto a : aspects) sentence.push_back(&word(a));
          for (std::int64_t f = 0; f < options_.filler_per_sentence; ++f) sentence.push_back(&pick(filler_, rng));
          detail::fisher_yates(sentence, rng);
          if (s) text += ' ';
          for (std::size_t k = 0; k < sentence.size(); ++k) {
            if (k) {
              text += ' ';
              text += *sentence[k];
            } else {
              text += capitalised(*sentence[k]);
            }
          }
          text += '.';
        }
        break;
    }
  }
}

void SyntheticGenerator::user(std::int64_t index, SyntheticUser& out, const std::int32_t* item_table) const {
  if (index < 0 || index >= options_.num_users)
    throw IndexError(fmt::format("SyntheticGenerator::user: index {} out of range [0, {})", index, options_.num_users));
  const std::size_t A = num_aspects();
  const auto P = std::size_t(options_.preferred_values);
  auto rng = detail::SplitMix64::stream(options_.seed, kUserDomain, std::uint64_t(index));
  out.index = index;
  out.id = fmt::format("u{}", index);
  out.preferences.assign(A * P, -1);
  // preferred[offset[a] + v]: whether the user prefers value v of aspect a.
  std::vector<std::size_t> offset(A + 1, 0);
  for (std::size_t a = 0; a < A; ++a) offset[a + 1] = offset[a] + std::size_t(options_.aspect_sizes[a]);
  std::vector<char> preferred(offset[A], 0);
  std::vector<std::int32_t> values;
  for (std::size_t a = 0; a < A; ++a) {
    const auto size = std::size_t(options_.aspect_sizes[a]);
    const std::size_t take = std::min(P, size);
    // Partial Fisher-Yates: the first `take` positions become a uniform sample without replacement.
    values.resize(size);
    for (std::size_t v = 0; v < size; ++v) values[v] = std::int32_t(v);
    for (std::size_t k = 0; k < take; ++k) std::swap(values[k], values[k + std::size_t(detail::uniform_index(rng, size - k))]);
    std::sort(values.begin(), values.begin() + std::ptrdiff_t(take));
    for (std::size_t k = 0; k < take; ++k) {
      out.preferences[a * P + k] = values[k];
      preferred[offset[a] + std::size_t(values[k])] = 1;
    }
  }
  std::vector<std::int32_t> aspects(A);
  auto matches = [&](std::int64_t item) {
    const std::int32_t* row = aspects.data();
    if (item_table)
      row = item_table + std::size_t(item) * A;
    else
      item_aspects(item, aspects.data());
    int m = 0;
    for (std::size_t a = 0; a < A; ++a) m += preferred[offset[a] + std::size_t(row[a])];
    return m;
  };
  const auto length = options_.min_sequence_length +
                      std::int64_t(detail::uniform_index(rng, std::uint64_t(options_.max_sequence_length - options_.min_sequence_length + 1)));
  std::int64_t t = options_.start_timestamp +
                   (options_.timestamp_span > 0 ? std::int64_t(detail::uniform_index(rng, std::uint64_t(options_.timestamp_span))) : 0);
  out.events.clear();
  out.events.reserve(std::size_t(length));
  for (std::int64_t step = 0; step < length; ++step) {
    std::int64_t item;
    int best;
    if (detail::uniform_unit(rng) < options_.noise) {
      item = popular_item(rng());
      best = matches(item);
    } else {
      item = popular_item(rng());
      best = matches(item);
      for (std::int64_t c = 1; c < options_.candidates && best < int(A); ++c) {
        auto candidate = popular_item(rng());
        auto m = matches(candidate);
        if (m > best) best = m, item = candidate;
      }
    }
    int rating = 1 + int(std::lround(4.0 * double(best) / double(A)));
    if (detail::uniform_unit(rng) < options_.rating_noise) rating += (rng() & 1) ? 1 : -1;
    rating = std::clamp(rating, 1, 5);
    if (step) t += std::int64_t(detail::uniform_index(rng, std::uint64_t(options_.max_gap) + 1));
    out.events.push_back({ItemIndex(item), t, float(rating)});
  }
}

// ---------------------------------------------------------------------------------------------

std::int32_t SyntheticCatalog::aspect(ItemIndex item, std::size_t a) const {
  const std::size_t A = num_aspects();
  if (a >= A) throw IndexError(fmt::format("SyntheticCatalog::aspect: aspect {} out of range [0, {})", a, A));
  if (item < 0 || std::size_t(item) * A >= item_aspects.size())
    throw IndexError(fmt::format("SyntheticCatalog::aspect: item {} out of range [0, {})", item,
                                 A ? item_aspects.size() / A : 0));
  return item_aspects[std::size_t(item) * A + a];
}

SyntheticCatalog generate_synthetic(const SyntheticOptions& options) {
  SyntheticGenerator gen(options);
  const auto& o = gen.options();
  const std::size_t A = gen.num_aspects();
  SyntheticCatalog out;
  out.options = o;
  out.aspect_names = o.aspect_names;
  out.aspect_sizes = o.aspect_sizes;
  out.vocabulary = gen.vocabulary();
  out.value_names = gen.value_names();
  out.dataset.name = "synthetic";

  std::vector<std::string> attribute_names;
  for (const auto& a : o.attributes) attribute_names.push_back(a.name);
  out.dataset.catalog = Catalog(std::move(attribute_names));
  out.dataset.catalog.reserve(std::size_t(o.num_items));
  out.item_aspects.resize(std::size_t(o.num_items) * A);
  SyntheticItem item;
  for (std::int64_t i = 0; i < o.num_items; ++i) {
    gen.item(i, item);
    std::copy(item.aspects.begin(), item.aspects.end(), out.item_aspects.begin() + std::ptrdiff_t(std::size_t(i) * A));
    out.dataset.catalog.add(std::move(item.id), std::move(item.values));
  }
  out.user_preferences.reserve(std::size_t(o.num_users) * A * std::size_t(o.preferred_values));
  SyntheticUser user;
  for (std::int64_t u = 0; u < o.num_users; ++u) {
    gen.user(u, user, out.item_aspects.data());
    out.user_preferences.insert(out.user_preferences.end(), user.preferences.begin(), user.preferences.end());
    auto index = out.dataset.interactions.user(user.id);
    out.dataset.interactions.set_sequence(index, std::move(user.events));
  }
  return out;
}

}  // namespace lamia
