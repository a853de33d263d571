#pragma once
// The synthetic multi-aspect catalog: items drawn from independent latent aspects (topic, region,
// tone, format by default), text attributes that each mix several aspects, and users whose
// sequences follow their preferred aspect values with noise. The ground truth is kept, so a
// semantic tokenizer can be scored on how well its codes recover the aspects.
//
//   auto synth = lamia::generate_synthetic();            // the default dataset (2,000 items)
//   const lamia::Dataset& data = synth.dataset;
//   int topic_of_item_7 = synth.aspect(7, 0);
//
// Every item and every user is computed from its own random stream (seed, index), so a catalog
// can also be streamed item by item (SyntheticGenerator) without holding it in memory, and a
// prefix of a bigger catalog is identical to the smaller catalog with the same seed.
#include <lamia/data/interactions.hpp>

#include <lamia/core/options.hpp>

#include <array>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lamia {

/// How an attribute is rendered from the words of its aspects.
enum class AttributeStyle {
  /// One word per listed aspect, in the listed order, capitalised: "Brisk Talomen Sevrik".
  phrase,
  /// Sentences, each with one word per listed aspect and filler words, shuffled: prose.
  sentences,
  /// One word per listed aspect, joined by ", ".
  tags,
  /// The value names of the listed aspects joined by " > ": "Vorel > Kanumi".
  path,
};

constexpr auto enum_names(AttributeStyle) {
  return std::array{std::pair{AttributeStyle::phrase, "phrase"}, std::pair{AttributeStyle::sentences, "sentences"},
                    std::pair{AttributeStyle::tags, "tags"}, std::pair{AttributeStyle::path, "path"}};
}

/// One text attribute of the synthetic items.
struct SyntheticAttribute {
  std::string name;
  AttributeStyle style = AttributeStyle::phrase;
  /// Names of the aspects the attribute mixes (from SyntheticOptions::aspect_names).
  std::vector<std::string> aspects;
};

template <class V>
void visit_fields(SyntheticAttribute& o, V&& v) {
  v.field("name", o.name, "attribute name (a catalog attribute)");
  v.field("style", o.style, "how the attribute is rendered from the words of its aspects");
  v.field("aspects", o.aspects, "names of the aspects the attribute mixes (from aspect_names)");
}

/// title (tone + topic + format), description (topic, region, tone in prose with filler),
/// tags (topic, region, format), category (format > topic).
std::vector<SyntheticAttribute> default_synthetic_attributes();

/// Where the attributes of the synthetic items come from.
enum class SyntheticAttributeLayout {
  /// SyntheticOptions::attributes as listed (default: default_synthetic_attributes()).
  listed,
  /// aspect_per_attribute_synthetic_attributes(aspect_names); `attributes` is not read.
  aspect_per_attribute,
};

constexpr auto enum_names(SyntheticAttributeLayout) {
  return std::array{std::pair{SyntheticAttributeLayout::listed, "listed"},
                    std::pair{SyntheticAttributeLayout::aspect_per_attribute, "aspect_per_attribute"}};
}

/// One attribute per aspect, for experiments where each aspect has its own attribute to predict
/// (issue 11, E2): first `description` (prose, sentences over all aspects: the content block with
/// r = 1), then `<aspect>_text` per aspect in aspect_names order, the aspect's value name (style
/// path with one aspect: one exact word per value, no synonym noise).
std::vector<SyntheticAttribute> aspect_per_attribute_synthetic_attributes(const std::vector<std::string>& aspect_names);

/// Everything that defines a synthetic catalog. The defaults are the built-in dataset that
/// `lamia run` uses without a config: small enough for the whole pipeline to run in minutes on
/// two cores. The fields and their documentation are listed once, in visit_fields below; JSON
/// (`lamia run --config`) and Python read and write them from there. Item i's interactions:
/// ratings are 1 + round(4 * matched aspects / aspects), then clamped to [1, 5]; about a third
/// of the interactions are rated below 4 by default.
struct SyntheticOptions {
  std::uint64_t seed = 2024;
  std::int64_t num_items = 2000;
  std::int64_t num_users = 3000;
  std::vector<std::string> aspect_names = {"topic", "region", "tone", "format"};
  std::vector<std::int64_t> aspect_sizes = {12, 8, 6, 5};
  std::int64_t words_per_value = 8;
  std::int64_t filler_words = 300;
  std::vector<SyntheticAttribute> attributes = default_synthetic_attributes();
  SyntheticAttributeLayout attribute_layout = SyntheticAttributeLayout::listed;
  std::int64_t sentences = 2;
  std::int64_t filler_per_sentence = 4;
  std::int64_t min_sequence_length = 10;
  std::int64_t max_sequence_length = 40;
  std::int64_t preferred_values = 2;
  std::int64_t candidates = 24;
  double noise = 0.15;
  double popularity_skew = 0.6;
  double rating_noise = 0.1;
  std::int64_t start_timestamp = 1600000000;
  std::int64_t timestamp_span = 365 * 86400;
  std::int64_t max_gap = 3 * 86400;

  /// Throws ValueError naming the first field that is out of range.
  void validate() const;
  /// The attributes the items get: `attributes`, or the layout's.
  std::vector<SyntheticAttribute> effective_attributes() const;
};

/// The fields of SyntheticOptions (ranges are checked by validate(), called by the generator).
template <class V>
void visit_fields(SyntheticOptions& o, V&& v) {
  v.field("seed", o.seed, "seed of every item's and user's random stream");
  v.field("num_items", o.num_items, "number of items (>= 1)");
  v.field("num_users", o.num_users, "number of users (>= 0)");
  v.field("aspect_names", o.aspect_names, "the latent aspects; values are drawn uniformly and independently per item");
  v.field("aspect_sizes", o.aspect_sizes, "number of values of each aspect (each >= 1)");
  v.field("words_per_value", o.words_per_value, "vocabulary words per aspect value (>= 1)");
  v.field("filler_words", o.filler_words, "words shared by all items, used as filler in sentences (>= 1)");
  v.field("attributes", o.attributes, "the text attributes: name, style and the aspects each mixes");
  v.field("attribute_layout", o.attribute_layout,
          "listed: the attributes above; aspect_per_attribute: description (prose of all aspects) + <aspect>_text each");
  v.field("sentences", o.sentences, "sentences per 'sentences' attribute (>= 1)");
  v.field("filler_per_sentence", o.filler_per_sentence, "filler words in each sentence (>= 0)");
  v.field("min_sequence_length", o.min_sequence_length, "fewest interactions of a user (>= 1)");
  v.field("max_sequence_length", o.max_sequence_length, "most interactions of a user (>= min_sequence_length)");
  v.field("preferred_values", o.preferred_values, "preferred values per aspect per user (>= 1)");
  v.field("candidates", o.candidates,
          "items (drawn by popularity) a user looks at per step, taking the best match (>= 1; 1: no preference)");
  v.field("noise", o.noise, "probability that a step ignores the preferences (one item drawn by popularity)");
  v.field("popularity_skew", o.popularity_skew, "Zipf exponent of item popularity, (i+1)^-skew; 0 is uniform");
  v.field("rating_noise", o.rating_noise, "probability that a rating moves one star up or down");
  v.field("start_timestamp", o.start_timestamp, "seconds since the epoch of the earliest first interaction");
  v.field("timestamp_span", o.timestamp_span, "users start uniformly within this many seconds");
  v.field("max_gap", o.max_gap, "successive interactions are uniform in [0, max_gap] seconds apart (0: ties)");
}

/// One generated item.
struct SyntheticItem {
  std::int64_t index = 0;
  std::string id;
  /// One value per aspect.
  std::vector<std::int32_t> aspects;
  /// One value per attribute, in SyntheticOptions::attributes order.
  std::vector<std::string> values;
};

/// One generated user.
struct SyntheticUser {
  std::int64_t index = 0;
  std::string id;
  /// num_aspects × options.preferred_values, row-major, sorted within each aspect; padded with
  /// -1 where an aspect has fewer values than preferred_values.
  std::vector<std::int32_t> preferences;
  std::vector<Interaction> events;
};

/// The generator behind generate_synthetic, for streaming: item(i) and user(u) are pure
/// functions of the options and the index, computed in O(attributes) and
/// O(sequence length × candidates × aspects) without any table of items.
class SyntheticGenerator {
 public:
  /// Validates the options and builds the vocabularies (seeded pseudo-words).
  explicit SyntheticGenerator(SyntheticOptions options);

  const SyntheticOptions& options() const noexcept { return options_; }
  std::size_t num_aspects() const noexcept { return options_.aspect_sizes.size(); }
  /// vocabulary()[a][v]: the words of value v of aspect a; value_names()[a][v]: its name.
  const std::vector<std::vector<std::vector<std::string>>>& vocabulary() const noexcept { return vocabulary_; }
  const std::vector<std::vector<std::string>>& value_names() const noexcept { return value_names_; }
  const std::vector<std::string>& filler() const noexcept { return filler_; }

  /// The aspect values of item index (written to out[0 .. num_aspects)).
  void item_aspects(std::int64_t index, std::int32_t* out) const;
  /// Item index with its text. Throws IndexError outside [0, num_items).
  void item(std::int64_t index, SyntheticItem& out) const;
  /// User index with preferences and interactions. Throws IndexError outside [0, num_users).
  /// item_aspects, when given, is the num_items × num_aspects table of item_aspects() for all
  /// items (a cache: the result is the same, about 3× faster).
  void user(std::int64_t index, SyntheticUser& out, const std::int32_t* item_aspects = nullptr) const;

 private:
  std::int64_t popular_item(std::uint64_t random_bits) const;

  SyntheticOptions options_;
  std::vector<std::vector<std::size_t>> attribute_aspects_;
  std::vector<std::vector<std::vector<std::string>>> vocabulary_;
  std::vector<std::vector<std::string>> value_names_;
  std::vector<std::string> filler_;
};

/// A generated dataset with its ground truth.
struct SyntheticCatalog {
  /// name "synthetic"; items "i<index>", users "u<index>"; attributes as in the options.
  Dataset dataset;
  std::vector<std::string> aspect_names;
  std::vector<std::int64_t> aspect_sizes;
  /// num_items × num_aspects, row-major.
  std::vector<std::int32_t> item_aspects;
  /// num_users × num_aspects × preferred values, row-major (see SyntheticUser::preferences).
  std::vector<std::int32_t> user_preferences;
  /// vocabulary[a][v]: words of value v of aspect a; value_names[a][v]: its name.
  std::vector<std::vector<std::vector<std::string>>> vocabulary;
  std::vector<std::vector<std::string>> value_names;
  SyntheticOptions options;

  std::size_t num_aspects() const noexcept { return aspect_sizes.size(); }
  /// Value of aspect a for item i (bounds-checked, IndexError).
  std::int32_t aspect(ItemIndex item, std::size_t a) const;
};

/// Generates the whole catalog, interactions and ground truth. Deterministic for options.seed.
SyntheticCatalog generate_synthetic(const SyntheticOptions& options = {});

}  // namespace lamia
