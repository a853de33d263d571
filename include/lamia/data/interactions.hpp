#pragma once
// Interactions: per-user ordered item sequences, with optional timestamps and
// ratings. Items are referenced by their index in a Catalog.
#include <lamia/data/catalog.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lamia {

using UserIndex = std::int32_t;

struct Interaction {
  static constexpr std::int64_t kNoTimestamp = std::numeric_limits<std::int64_t>::min();

  ItemIndex item = -1;
  /// Seconds since the Unix epoch, or kNoTimestamp.
  std::int64_t timestamp = kNoTimestamp;
  /// Rating as given by the source, or NaN when the source has none.
  float rating = std::numeric_limits<float>::quiet_NaN();

  bool has_timestamp() const noexcept { return timestamp != kNoTimestamp; }
  bool has_rating() const noexcept { return !std::isnan(rating); }
};

class Interactions {
 public:
  std::size_t num_users() const noexcept { return user_ids_.size(); }
  /// Total number of interactions over all users.
  std::size_t size() const noexcept { return total_; }

  /// Index of the user with this id, creating the user (with an empty sequence) if new.
  UserIndex user(std::string_view id);
  std::optional<UserIndex> find_user(std::string_view id) const;
  const std::string& user_id(UserIndex user) const;

  /// Appends one interaction to the end of the user's sequence (source order is kept).
  void append(UserIndex user, Interaction event);
  const std::vector<Interaction>& sequence(UserIndex user) const;
  /// Replaces a user's whole sequence.
  void set_sequence(UserIndex user, std::vector<Interaction> events);

  /// True when any interaction has a timestamp / a rating.
  bool has_timestamps() const noexcept;
  bool has_ratings() const noexcept;

 private:
  void check_user(UserIndex user) const;

  std::vector<std::string> user_ids_;
  std::vector<std::vector<Interaction>> sequences_;
  std::unordered_map<std::string, UserIndex> by_id_;
  std::size_t total_ = 0;
};

/// A catalog and the interactions over it, as a loader returns them.
struct Dataset {
  std::string name;  ///< e.g. "amazon-office", "synthetic"
  Catalog catalog;
  Interactions interactions;
};

}  // namespace lamia
