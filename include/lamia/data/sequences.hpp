#pragma once
// Sequences: from a Dataset to per-user chronological item sequences, and from
// those to train / valid / test examples (DESIGN.md, "Evaluation protocol").
//
//   auto seqs  = lamia::build_sequences(dataset);                     // ratings >= 4, last 20
//   auto order = lamia::load_or_create_user_order("out/users.order", seqs.user_ids(), 2024);
//   auto split = lamia::split_user_holdout(seqs, order, {});         // 90% train, 10% test
//   auto loo   = lamia::split_leave_one_out(seqs);                   // TIGER protocol
#include <lamia/data/catalog.hpp>
#include <lamia/data/interactions.hpp>

#include <lamia/core/options.hpp>

#include <array>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace lamia {

/// How build_sequences turns interactions into sequences.
struct SequenceOptions {
  /// Keep an interaction only when its rating is >= min_rating (DESIGN.md: Amazon CDs keep 4 and 5,
  /// drop 3). Interactions without a rating (NaN, e.g. MIND clicks) are always kept, so sources
  /// without ratings are not filtered. nullopt: keep every rating. Default 4.
  std::optional<float> min_rating = 4.0f;
  /// Keep each user's last max_length interactions (after filtering and ordering); 0 keeps all.
  /// Default 20 (paper: histories of at most 20 items).
  std::size_t max_length = 20;
  /// Drop users with fewer than min_length interactions left (after the last-N cut). Default 2:
  /// one history item and one target. Users left with no interaction are always dropped.
  std::size_t min_length = 2;
  /// Remove items whose attributes are all empty from the catalog, and every interaction with
  /// them (counted in SequenceStats). The remaining items are re-indexed. Default false.
  bool drop_items_without_text = false;
};

template <class V>
void visit_fields(SequenceOptions& o, V&& v) {
  v.field("min_rating", o.min_rating,
          "keep interactions rated >= min_rating (unrated ones are always kept); null keeps every rating");
  v.field("max_length", o.max_length, "keep each user's last max_length interactions; 0 keeps all");
  v.field("min_length", o.min_length, "drop users with fewer interactions left (after the last-N cut)");
  v.field("drop_items_without_text", o.drop_items_without_text,
          "remove items whose attributes are all empty, and their interactions");
}

/// A dataset without its text-less items (every attribute empty) and without the interactions with
/// them, as drop_items_without_text returns it.
struct DatasetWithText {
  /// The kept items in their original order, re-indexed; every user of the input, in order (a user
  /// whose interactions were all with text-less items keeps an empty sequence).
  Dataset dataset;
  /// For each item of dataset.catalog, its index in the input catalog.
  std::vector<ItemIndex> source_items;
  std::size_t items_dropped = 0;
  std::size_t interactions_dropped = 0;
};

/// Removes the items whose attributes are all empty, and every interaction with them. The pipeline
/// applies it to the whole dataset (`dataset.drop_items_without_text`), so that every stage sees the
/// same catalog; build_sequences applies it when SequenceOptions::drop_items_without_text is set.
/// Throws IndexError when an interaction refers to an item outside the catalog.
DatasetWithText drop_items_without_text(const Dataset& dataset);

/// What build_sequences kept and removed; every count is exact.
struct SequenceStats {
  std::size_t users_in = 0;
  std::size_t interactions_in = 0;
  std::size_t items_in = 0;
  /// Items removed because all their attributes are empty, and the interactions with them.
  std::size_t items_without_text = 0;
  std::size_t interactions_without_text = 0;
  /// Interactions with a rating below min_rating.
  std::size_t interactions_below_rating = 0;
  /// Interactions cut because they were older than a user's last max_length.
  std::size_t interactions_truncated = 0;
  /// Users (and their remaining interactions) dropped for being shorter than min_length.
  std::size_t users_too_short = 0;
  std::size_t interactions_of_short_users = 0;
  std::size_t users_out = 0;
  std::size_t interactions_out = 0;
  std::size_t items_out = 0;
};

/// One user's processed sequence, oldest first.
struct UserSequence {
  /// The user's index in the source Interactions.
  UserIndex user = -1;
  std::string id;
  /// Indices into ProcessedSequences::catalog.
  std::vector<ItemIndex> items;
  /// Same length as items; Interaction::kNoTimestamp where the source has none.
  std::vector<std::int64_t> timestamps;
};

/// The result of build_sequences.
struct ProcessedSequences {
  /// The items that sequences refer to: the input catalog, without the items that had no text
  /// when drop_items_without_text is set (in their original order).
  Catalog catalog;
  /// For each item of catalog, its index in the input catalog.
  std::vector<ItemIndex> source_items;
  /// Users that kept at least min_length interactions, in source user order.
  std::vector<UserSequence> users;
  SequenceStats stats;

  /// The user ids, in the order of users.
  std::vector<std::string> user_ids() const;
  /// Total number of items over all sequences.
  std::size_t num_interactions() const;
};

/// Filters, orders, truncates and cleans the interactions of a dataset:
/// 1. items without text are removed with their interactions (when asked);
/// 2. interactions rated below min_rating are removed (unrated ones stay);
/// 3. each user's sequence is stably sorted by timestamp when all of its interactions have one,
///    kept in source order when none has (ties keep source order); untimed interactions that all
///    come before the timed ones keep their source order in front of them (MIND's click history);
/// 4. the last max_length interactions are kept; users shorter than min_length are dropped.
/// Throws ValueError when a user has an untimed interaction after a timed one (the order would
/// be ambiguous), IndexError when an interaction refers to an item outside the catalog.
ProcessedSequences build_sequences(const Dataset& dataset, const SequenceOptions& options = {});

/// A random order of users, created once from a seed and saved, so that later runs split the
/// users exactly the same way.
struct UserOrder {
  std::uint64_t seed = 0;
  std::vector<std::string> user_ids;
};

/// The user ids shuffled by Fisher-Yates driven by std::mt19937_64(seed): the same on every
/// platform for a seed. Throws ValueError on duplicate ids.
UserOrder shuffle_users(std::vector<std::string> user_ids, std::uint64_t seed);

/// Writes the order atomically as text: a header line "lamia-user-order 1", "seed <n>",
/// "users <n>", then one id per line. Throws ValueError for ids that are empty or contain a
/// line break, IOError when the file cannot be written.
void save_user_order(const std::filesystem::path& path, const UserOrder& order);

/// Reads a file written by save_user_order; every line is checked (ParseError names the line).
UserOrder load_user_order(const std::filesystem::path& path);

/// Throws ValueError unless order holds exactly the given users (each once, any order); the
/// message names up to 5 users missing on either side. source names the order in the message.
void check_user_order(const UserOrder& order, const std::vector<std::string>& user_ids,
                      const std::string& source = "user order");

/// When path exists: loads it, checks that it was made with seed and holds exactly user_ids,
/// and returns it unchanged. Otherwise shuffles user_ids with seed, saves the order to path and
/// returns it. Throws ValueError on a seed or user mismatch (delete the file to start over).
UserOrder load_or_create_user_order(const std::filesystem::path& path, const std::vector<std::string>& user_ids,
                                    std::uint64_t seed);

/// A number of users, either absolute or a fraction of the users available.
struct UserCount {
  double value = 0.0;
  bool is_fraction = false;

  static UserCount count(std::size_t n) { return {double(n), false}; }
  static UserCount fraction(double f) { return {f, true}; }
  /// floor(value * total) for fractions, value for counts. Throws ValueError for negative
  /// counts and fractions outside [0, 1]; name is the argument named in the message.
  std::size_t resolve(std::size_t total, const char* name) const;
};

}  // namespace lamia

/// JSON of a UserCount: 5000 (a count) or 0.1 (a fraction).
template <>
struct lamia::options::Codec<lamia::UserCount> {
  static json write(const UserCount& c) {
    if (c.is_fraction) return c.value;
    return static_cast<std::uint64_t>(c.value);
  }
  static void read(const json& j, UserCount& out, const Where& w) {
    // A count is held as a double: beyond 2^53 it would be rounded (and beyond 2^64 not convertible back).
    if (j.is_number_unsigned() || (j.is_number_integer() && j.get<std::int64_t>() >= 0)) {
      if (j.get<std::uint64_t>() > (std::uint64_t(1) << 53)) w.fail(expected(), j);
      out = UserCount::count(j.get<std::size_t>());
    } else if (j.is_number_float() && j.get<double>() >= 0.0 && j.get<double>() <= 1.0) {
      out = UserCount::fraction(j.get<double>());
    } else {
      w.fail(expected(), j);
    }
  }
  static std::string expected() { return "an integer count in [0, 2^53] or a fraction in [0, 1]"; }
};

namespace lamia {

/// Which examples a training user yields.
enum class TrainExamples {
  /// One example per user: target = the last item, history = the items before it. A causal
  /// recommender trains on every position of that one sequence anyway. (default)
  last_item,
  /// One example per position i >= 1: target = item i, history = items 0..i-1.
  all_prefixes,
};
constexpr auto enum_names(TrainExamples) {
  return std::array{std::pair{TrainExamples::last_item, "last_item"},
                    std::pair{TrainExamples::all_prefixes, "all_prefixes"}};
}

/// One next-item prediction: given history (oldest first), predict target.
struct SequenceExample {
  /// The user's index in the source Interactions (UserSequence::user).
  UserIndex user = -1;
  std::vector<ItemIndex> history;
  ItemIndex target = -1;
};

/// Train / valid / test examples. Item indices refer to ProcessedSequences::catalog.
struct SplitDataset {
  std::vector<SequenceExample> train, valid, test;
  /// User hold-out: the users of each part, in the order of the saved user order. Leave-one-out:
  /// the users with at least one example in that part, in sequence order.
  std::vector<UserIndex> train_users, valid_users, test_users;
  /// Users of the order that no part took (user hold-out with counts below the total).
  std::size_t unused_users = 0;
  /// Examples not emitted because their history would have been empty.
  std::size_t skipped_examples = 0;
};

/// User hold-out split (RecBench): users are taken in the saved order, the first train_users to
/// train, the next valid_users to valid, the next test_users to test. A valid or test user yields
/// one example: target = the user's last item, history = the items before it.
struct HoldoutOptions {
  /// nullopt: every user not in valid or test. Default nullopt.
  std::optional<UserCount> train_users;
  /// Default 0 users (the paper has no validation users).
  UserCount valid_users = UserCount::count(0);
  /// Default 10% (the paper: 40,000 train and 5,000 test users, i.e. 1/9).
  UserCount test_users = UserCount::fraction(0.1);
  TrainExamples train_examples = TrainExamples::last_item;
};

template <class V>
void visit_fields(HoldoutOptions& o, V&& v) {
  v.field("train_users", o.train_users, "training users; null: every user not in valid or test");
  v.field("valid_users", o.valid_users, "validation users (the paper has none)");
  v.field("test_users", o.test_users, "test users (the paper: 5,000 of 45,000, about 1/9)");
  v.field("train_examples", o.train_examples, "which examples a training user yields");
}

/// Splits users by order (see HoldoutOptions). Throws ValueError when order does not hold exactly
/// the users of sequences, or when the parts ask for more users than there are.
SplitDataset split_user_holdout(const ProcessedSequences& sequences, const UserOrder& order,
                                const HoldoutOptions& options = {});

/// Leave-one-out (TIGER): per user, the last item is the test target, the second to last the
/// valid target (history: the items before each), and the items before those are the training
/// sequence (its examples follow train_examples). Examples whose history would be empty are
/// skipped and counted. Users appear in the order of sequences.users.
struct LeaveOneOutOptions {
  TrainExamples train_examples = TrainExamples::last_item;
};

template <class V>
void visit_fields(LeaveOneOutOptions& o, V&& v) {
  v.field("train_examples", o.train_examples, "which examples a training user yields");
}

SplitDataset split_leave_one_out(const ProcessedSequences& sequences, const LeaveOneOutOptions& options = {});

// JSON (`lamia run --config`) and Python read and write the options through their field lists
// (lamia/core/options.hpp): keys are the field names, missing keys keep their defaults, unknown
// keys and wrong types throw ValueError naming the key. A UserCount is an integer (a count of
// users) or a number with a fraction part or a decimal point (a fraction: 0.1 of them, 1.0 = all).

}  // namespace lamia
