#include <lamia/core/atomic_file.hpp>
#include <lamia/core/errors.hpp>
#include <lamia/data/detail/random.hpp>
#include <lamia/data/sequences.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace lamia {

std::vector<std::string> ProcessedSequences::user_ids() const {
  std::vector<std::string> ids;
  ids.reserve(users.size());
  for (const auto& u : users) ids.push_back(u.id);
  return ids;
}

std::size_t ProcessedSequences::num_interactions() const {
  std::size_t n = 0;
  for (const auto& u : users) n += u.items.size();
  return n;
}

namespace {

IndexError item_out_of_range(const Interactions& interactions, UserIndex user, ItemIndex item, std::size_t n,
                             const char* where) {
  return IndexError(fmt::format("{}: user '{}' has an interaction with item index {}, expected an index in [0, {}) "
                                "(the catalog's size)",
                                where, interactions.user_id(user), item, n));
}

}  // namespace

DatasetWithText drop_items_without_text(const Dataset& dataset) {
  const Catalog& catalog = dataset.catalog;
  DatasetWithText out;
  // new_index[i]: the item's index in the output catalog, or -1 when it is dropped.
  std::vector<ItemIndex> new_index(catalog.size(), -1);
  for (std::size_t i = 0; i < catalog.size(); ++i) {
    if (!catalog.has_text(ItemIndex(i))) continue;
    new_index[i] = ItemIndex(out.source_items.size());
    out.source_items.push_back(ItemIndex(i));
  }
  out.items_dropped = catalog.size() - out.source_items.size();
  out.dataset.name = dataset.name;
  out.dataset.catalog = out.items_dropped ? catalog.select_items(out.source_items) : catalog;
  const Interactions& in = dataset.interactions;
  for (std::size_t u = 0; u < in.num_users(); ++u) {
    const auto user = out.dataset.interactions.user(in.user_id(UserIndex(u)));
    std::vector<Interaction> kept;
    for (auto e : in.sequence(UserIndex(u))) {
      if (e.item < 0 || std::size_t(e.item) >= catalog.size())
        throw item_out_of_range(in, UserIndex(u), e.item, catalog.size(), "drop_items_without_text");
      if (new_index[std::size_t(e.item)] < 0) {
        ++out.interactions_dropped;
        continue;
      }
      e.item = new_index[std::size_t(e.item)];
      kept.push_back(e);
    }
    out.dataset.interactions.set_sequence(user, std::move(kept));
  }
  return out;
}

ProcessedSequences build_sequences(const Dataset& dataset, const SequenceOptions& options) {
  if (options.min_rating && std::isnan(*options.min_rating))
    throw ValueError("build_sequences: min_rating is NaN; expected a number, or no threshold");
  ProcessedSequences out;
  SequenceStats& stats = out.stats;
  stats.users_in = dataset.interactions.num_users();
  stats.interactions_in = dataset.interactions.size();
  stats.items_in = dataset.catalog.size();

  // With drop_items_without_text the rest runs on the filtered dataset, whose users are the input's.
  std::optional<DatasetWithText> with_text;
  if (options.drop_items_without_text) {
    with_text = drop_items_without_text(dataset);
    stats.items_without_text = with_text->items_dropped;
    stats.interactions_without_text = with_text->interactions_dropped;
    out.source_items = with_text->source_items;
  } else {
    out.source_items.resize(dataset.catalog.size());
    std::iota(out.source_items.begin(), out.source_items.end(), ItemIndex(0));
  }
  const Catalog& catalog = with_text ? with_text->dataset.catalog : dataset.catalog;
  const Interactions& interactions = with_text ? with_text->dataset.interactions : dataset.interactions;
  out.catalog = catalog;
  stats.items_out = out.catalog.size();

  std::vector<Interaction> kept;
  std::vector<std::size_t> order;
  for (std::size_t u = 0; u < interactions.num_users(); ++u) {
    const auto& events = interactions.sequence(UserIndex(u));
    kept.clear();
    std::size_t with_time = 0;
    for (const auto& e : events) {
      if (e.item < 0 || std::size_t(e.item) >= catalog.size())
        throw item_out_of_range(interactions, UserIndex(u), e.item, catalog.size(), "build_sequences");
      if (options.min_rating && e.has_rating() && e.rating < *options.min_rating) {
        ++stats.interactions_below_rating;
        continue;
      }
      with_time += e.has_timestamp() ? 1 : 0;
      kept.push_back(e);
    }
    // Untimed interactions keep the loader's order. Beside timed ones they must all come first: then
    // the order is the loader's (MIND: a user's click history, oldest first and without times, then
    // the clicked impressions at their times); an untimed one after a timed one has no place.
    std::size_t untimed_prefix = 0;
    while (untimed_prefix < kept.size() && !kept[untimed_prefix].has_timestamp()) ++untimed_prefix;
    if (with_time != 0 && with_time != kept.size() - untimed_prefix)
      throw ValueError(fmt::format("build_sequences: user '{}' has {} interactions with a timestamp and {} without, "
                                   "and an untimed one comes after a timed one; untimed interactions must all "
                                   "come first (else the order would be ambiguous)",
                                   interactions.user_id(UserIndex(u)), with_time, kept.size() - with_time));
    if (with_time != 0)
      std::stable_sort(kept.begin() + static_cast<std::ptrdiff_t>(untimed_prefix), kept.end(),
                       [](const Interaction& a, const Interaction& b) { return a.timestamp < b.timestamp; });
    std::size_t begin = 0;
    if (options.max_length != 0 && kept.size() > options.max_length) {
      begin = kept.size() - options.max_length;
      stats.interactions_truncated += begin;
    }
    const std::size_t length = kept.size() - begin;
    if (length == 0 || length < options.min_length) {
      ++stats.users_too_short;
      stats.interactions_of_short_users += length;
      continue;
    }
    UserSequence seq;
    seq.user = UserIndex(u);
    seq.id = interactions.user_id(UserIndex(u));
    seq.items.reserve(length);
    seq.timestamps.reserve(length);
    for (std::size_t i = begin; i < kept.size(); ++i) {
      seq.items.push_back(kept[i].item);
      seq.timestamps.push_back(kept[i].timestamp);
    }
    stats.interactions_out += length;
    out.users.push_back(std::move(seq));
  }
  stats.users_out = out.users.size();
  return out;
}

// ---------------------------------------------------------------------------------------------
// User order

namespace {

constexpr const char* kOrderMagic = "lamia-user-order";
constexpr int kOrderVersion = 1;

void check_unique(const std::vector<std::string>& ids, const char* where) {
  std::unordered_set<std::string_view> seen;
  seen.reserve(ids.size());
  for (const auto& id : ids)
    if (!seen.insert(id).second) throw ValueError(fmt::format("{}: user id '{}' appears more than once", where, id));
}

}  // namespace

UserOrder shuffle_users(std::vector<std::string> user_ids, std::uint64_t seed) {
  check_unique(user_ids, "shuffle_users");
  std::mt19937_64 rng(seed);
  detail::fisher_yates(user_ids, rng);
  return {seed, std::move(user_ids)};
}

void save_user_order(const std::filesystem::path& path, const UserOrder& order) {
  for (const auto& id : order.user_ids)
    if (id.empty() || id.find_first_of("\r\n") != std::string::npos)
      throw ValueError(fmt::format("save_user_order: user id '{}' cannot be saved; expected a non-empty id "
                                   "without line breaks",
                                   id));
  check_unique(order.user_ids, "save_user_order");
  write_file_atomically(path, [&](std::ostream& os) {
    os << kOrderMagic << ' ' << kOrderVersion << '\n' << "seed " << order.seed << '\n'
       << "users " << order.user_ids.size() << '\n';
    for (const auto& id : order.user_ids) os << id << '\n';
  });
}

UserOrder load_user_order(const std::filesystem::path& path) {
  const std::string text = read_file(path);
  const std::string file = path.string();
  std::size_t pos = 0, line_no = 0;
  auto next_line = [&](const char* field) -> std::string_view {
    ++line_no;
    if (pos >= text.size())
      throw ParseError({file, line_no, field}, "unexpected end of file (truncated user order?)");
    auto end = text.find('\n', pos);
    if (end == std::string::npos)
      throw ParseError({file, line_no, field}, "line does not end with a newline (truncated user order?)");
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    return line;
  };
  auto parse_number = [&](std::string_view line, std::string_view key, const char* field) -> std::uint64_t {
    std::string prefix = std::string(key) + " ";
    if (line.substr(0, prefix.size()) != prefix)
      throw ParseError({file, line_no, field}, fmt::format("expected '{} <number>', got '{}'", key, line));
    std::string digits(line.substr(prefix.size()));
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
      throw ParseError({file, line_no, field}, fmt::format("expected a non-negative integer, got '{}'", digits));
    try {
      return std::stoull(digits);
    } catch (const std::out_of_range&) {
      throw ParseError({file, line_no, field}, fmt::format("number '{}' does not fit in 64 bits", digits));
    }
  };

  auto header = next_line("magic");
  const std::string expected_header = fmt::format("{} {}", kOrderMagic, kOrderVersion);
  if (header.substr(0, std::string_view(kOrderMagic).size()) != kOrderMagic)
    throw ParseError({file, line_no, "magic"},
                     fmt::format("not a lamia user order: expected '{}', got '{}'", expected_header, header));
  if (header != expected_header)
    throw ParseError({file, line_no, "version"},
                     fmt::format("unsupported version: expected '{}', got '{}'", expected_header, header));
  UserOrder order;
  order.seed = parse_number(next_line("seed"), "seed", "seed");
  const auto count = parse_number(next_line("users"), "users", "users");
  // Each id takes at least two bytes (one character and a newline): reject absurd counts early.
  if (count > text.size())
    throw ParseError({file, line_no, "users"},
                     fmt::format("header announces {} users, but the file has only {} bytes", count, text.size()));
  order.user_ids.reserve(count);
  std::unordered_set<std::string_view> seen;
  seen.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    auto id = next_line("user");
    if (id.empty()) throw ParseError({file, line_no, "user"}, "empty user id");
    if (!id.empty() && id.back() == '\r') throw ParseError({file, line_no, "user"}, "user id ends with '\\r'");
    if (!seen.insert(id).second)
      throw ParseError({file, line_no, "user"}, fmt::format("user id '{}' appears more than once", id));
    order.user_ids.emplace_back(id);
  }
  if (pos != text.size())
    throw ParseError({file, line_no + 1, "users"},
                     fmt::format("header announces {} users, but the file continues after them", count));
  return order;
}

void check_user_order(const UserOrder& order, const std::vector<std::string>& user_ids, const std::string& source) {
  std::unordered_set<std::string_view> expected(user_ids.begin(), user_ids.end());
  std::unordered_set<std::string_view> in_order(order.user_ids.begin(), order.user_ids.end());
  std::vector<std::string_view> missing, extra;
  for (const auto& id : user_ids)
    if (!in_order.count(id)) missing.push_back(id);
  for (const auto& id : order.user_ids)
    if (!expected.count(id)) extra.push_back(id);
  if (in_order.size() != order.user_ids.size())
    throw ValueError(fmt::format("{}: it lists {} ids but only {} distinct users", source, order.user_ids.size(),
                                 in_order.size()));
  if (missing.empty() && extra.empty()) return;
  auto first = [](const std::vector<std::string_view>& v) {
    std::vector<std::string> shown;
    for (std::size_t i = 0; i < v.size() && i < 5; ++i) shown.push_back(fmt::format("'{}'", v[i]));
    return fmt::format("{}{}", fmt::join(shown, ", "), v.size() > 5 ? ", ..." : "");
  };
  std::string message = fmt::format("{} does not match the users: expected the {} users of the sequences, the "
                                    "order has {}",
                                    source, user_ids.size(), order.user_ids.size());
  if (!missing.empty()) message += fmt::format("; {} users are missing from it ({})", missing.size(), first(missing));
  if (!extra.empty()) message += fmt::format("; {} users in it are unknown ({})", extra.size(), first(extra));
  throw ValueError(message + " (delete the order file to create a new one)");
}

UserOrder load_or_create_user_order(const std::filesystem::path& path, const std::vector<std::string>& user_ids,
                                    std::uint64_t seed) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    UserOrder order = load_user_order(path);
    if (order.seed != seed)
      throw ValueError(fmt::format("user order '{}' was created with seed {}, but seed {} was requested "
                                   "(use seed {} or delete the file)",
                                   path.string(), order.seed, seed, order.seed));
    check_user_order(order, user_ids, fmt::format("user order '{}'", path.string()));
    return order;
  }
  UserOrder order = shuffle_users(user_ids, seed);
  save_user_order(path, order);
  return order;
}

// ---------------------------------------------------------------------------------------------
// Splits

std::size_t UserCount::resolve(std::size_t total, const char* name) const {
  if (is_fraction) {
    if (!(value >= 0.0 && value <= 1.0))
      throw ValueError(fmt::format("{}: expected a fraction in [0, 1], got {}", name, value));
    return std::size_t(std::floor(value * double(total) + 1e-9));
  }
  if (!(value >= 0.0 && value <= 9007199254740992.0) || value != std::floor(value))  // 2^53: exact in a double
    throw ValueError(fmt::format("{}: expected a whole number of users in [0, 2^53], got {}", name, value));
  return std::size_t(value);
}

namespace {

// Appends the examples of one training sequence items[0, end).
void add_train_examples(std::vector<SequenceExample>& out, std::size_t& skipped, UserIndex user,
                        const std::vector<ItemIndex>& items, std::size_t end, TrainExamples mode) {
  if (end == 0) return;
  if (mode == TrainExamples::last_item) {
    if (end < 2) {
      ++skipped;
      return;
    }
    out.push_back({user, {items.begin(), items.begin() + std::ptrdiff_t(end - 1)}, items[end - 1]});
    return;
  }
  skipped += 1;  // position 0 has no history
  for (std::size_t i = 1; i < end; ++i)
    out.push_back({user, {items.begin(), items.begin() + std::ptrdiff_t(i)}, items[i]});
}

// The example "predict items[end-1] from items[0, end-1)", or a skip when the history is empty.
bool add_target_example(std::vector<SequenceExample>& out, std::size_t& skipped, UserIndex user,
                        const std::vector<ItemIndex>& items, std::size_t end) {
  if (end < 2) {
    if (end == 1) ++skipped;
    return false;
  }
  out.push_back({user, {items.begin(), items.begin() + std::ptrdiff_t(end - 1)}, items[end - 1]});
  return true;
}

}  // namespace

SplitDataset split_user_holdout(const ProcessedSequences& sequences, const UserOrder& order,
                                const HoldoutOptions& options) {
  const auto ids = sequences.user_ids();
  check_user_order(order, ids, "split_user_holdout: the user order");
  const std::size_t total = ids.size();
  const std::size_t n_valid = options.valid_users.resolve(total, "valid_users");
  const std::size_t n_test = options.test_users.resolve(total, "test_users");
  if (n_valid + n_test > total)
    throw ValueError(fmt::format("split_user_holdout: valid_users + test_users = {} + {}, expected at most the {} "
                                 "users with sequences",
                                 n_valid, n_test, total));
  const std::size_t n_train =
      options.train_users ? options.train_users->resolve(total, "train_users") : total - n_valid - n_test;
  if (n_train + n_valid + n_test > total)
    throw ValueError(fmt::format("split_user_holdout: train_users + valid_users + test_users = {} + {} + {} = {}, "
                                 "expected at most the {} users with sequences",
                                 n_train, n_valid, n_test, n_train + n_valid + n_test, total));

  std::unordered_map<std::string_view, std::size_t> position;
  position.reserve(total);
  for (std::size_t i = 0; i < total; ++i) position.emplace(sequences.users[i].id, i);

  SplitDataset out;
  for (std::size_t k = 0; k < n_train + n_valid + n_test; ++k) {
    const UserSequence& u = sequences.users[position.at(order.user_ids[k])];
    if (k < n_train) {
      out.train_users.push_back(u.user);
      add_train_examples(out.train, out.skipped_examples, u.user, u.items, u.items.size(), options.train_examples);
    } else if (k < n_train + n_valid) {
      out.valid_users.push_back(u.user);
      add_target_example(out.valid, out.skipped_examples, u.user, u.items, u.items.size());
    } else {
      out.test_users.push_back(u.user);
      add_target_example(out.test, out.skipped_examples, u.user, u.items, u.items.size());
    }
  }
  out.unused_users = total - n_train - n_valid - n_test;
  return out;
}

SplitDataset split_leave_one_out(const ProcessedSequences& sequences, const LeaveOneOutOptions& options) {
  SplitDataset out;
  for (const auto& u : sequences.users) {
    const std::size_t n = u.items.size();
    if (add_target_example(out.test, out.skipped_examples, u.user, u.items, n)) out.test_users.push_back(u.user);
    if (n >= 1 && add_target_example(out.valid, out.skipped_examples, u.user, u.items, n - 1))
      out.valid_users.push_back(u.user);
    const std::size_t before = out.train.size();
    if (n >= 2) add_train_examples(out.train, out.skipped_examples, u.user, u.items, n - 2, options.train_examples);
    if (out.train.size() > before) out.train_users.push_back(u.user);
  }
  return out;
}

}  // namespace lamia
