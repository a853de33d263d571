// Sequences and splits: build_sequences, user orders, split_user_holdout, split_leave_one_out.
// Registered after bindings/data.cpp (kOrderData + 1) so Dataset and Catalog exist first.
#include "options.hpp"
#include "registry.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/data/sequences.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <cmath>
#include <limits>

namespace py = pybind11;
using namespace lamia;

namespace {

// Each options struct is bound once (bindings/options.hpp); functions that take options accept
// `options=` (an instance or a dict) and the fields as keywords.
SequenceOptions sequence_options(const py::object& options, const py::kwargs& kwargs, const char* owner) {
  return python::options_from_args<SequenceOptions>(options, kwargs, owner);
}

}  // namespace

LAMIA_REGISTER_BINDINGS(kOrderData + 1, data_sequences) {
  python::bind_options<SequenceOptions>(m, "SequenceOptions", "How build_sequences turns interactions into sequences.");
  python::bind_options<HoldoutOptions>(m, "HoldoutOptions", R"doc(User hold-out split (RecBench). A user count is an
int (a count of users) or a float (a fraction of them: 0.1, 1.0 = all).)doc");
  python::bind_options<LeaveOneOutOptions>(m, "LeaveOneOutOptions", "Leave-one-out split (TIGER).");
  py::class_<SequenceStats>(m, "SequenceStats", "What build_sequences kept and removed (exact counts).")
      .def_readonly("users_in", &SequenceStats::users_in)
      .def_readonly("interactions_in", &SequenceStats::interactions_in)
      .def_readonly("items_in", &SequenceStats::items_in)
      .def_readonly("items_without_text", &SequenceStats::items_without_text,
                    "Items removed because all their attributes are empty.")
      .def_readonly("interactions_without_text", &SequenceStats::interactions_without_text,
                    "Interactions removed with those items.")
      .def_readonly("interactions_below_rating", &SequenceStats::interactions_below_rating)
      .def_readonly("interactions_truncated", &SequenceStats::interactions_truncated,
                    "Interactions older than a user's last max_length.")
      .def_readonly("users_too_short", &SequenceStats::users_too_short)
      .def_readonly("interactions_of_short_users", &SequenceStats::interactions_of_short_users)
      .def_readonly("users_out", &SequenceStats::users_out)
      .def_readonly("interactions_out", &SequenceStats::interactions_out)
      .def_readonly("items_out", &SequenceStats::items_out)
      .def("as_dict", [](const SequenceStats& s) {
        py::dict d;
        d["users_in"] = s.users_in;
        d["interactions_in"] = s.interactions_in;
        d["items_in"] = s.items_in;
        d["items_without_text"] = s.items_without_text;
        d["interactions_without_text"] = s.interactions_without_text;
        d["interactions_below_rating"] = s.interactions_below_rating;
        d["interactions_truncated"] = s.interactions_truncated;
        d["users_too_short"] = s.users_too_short;
        d["interactions_of_short_users"] = s.interactions_of_short_users;
        d["users_out"] = s.users_out;
        d["interactions_out"] = s.interactions_out;
        d["items_out"] = s.items_out;
        return d;
      }, "The counts as a dict.");

  py::class_<UserSequence>(m, "UserSequence", "One user's processed sequence, oldest first.")
      .def_readonly("user", &UserSequence::user, "The user's index in the source interactions.")
      .def_readonly("id", &UserSequence::id)
      .def_readonly("items", &UserSequence::items, "Item indices into ProcessedSequences.catalog.")
      .def_readonly("timestamps", &UserSequence::timestamps,
                    "Seconds since the epoch; the minimum int64 where the source has none.")
      .def("__len__", [](const UserSequence& u) { return u.items.size(); })
      .def("__repr__", [](const UserSequence& u) {
        return fmt::format("UserSequence(id='{}', user={}, items={})", u.id, u.user, u.items.size());
      });

  py::class_<ProcessedSequences>(m, "ProcessedSequences", "The result of build_sequences.")
      .def_readonly("catalog", &ProcessedSequences::catalog,
                    "The items the sequences refer to (without dropped items, re-indexed).")
      .def_readonly("source_items", &ProcessedSequences::source_items,
                    "For each item of catalog, its index in the input catalog.")
      .def_readonly("users", &ProcessedSequences::users, "Users with at least min_length items, in source order.")
      .def_readonly("stats", &ProcessedSequences::stats)
      .def("user_ids", &ProcessedSequences::user_ids, "The user ids, in the order of users.")
      .def("num_interactions", &ProcessedSequences::num_interactions)
      .def("__len__", [](const ProcessedSequences& s) { return s.users.size(); });

  py::class_<DatasetWithText>(m, "DatasetWithText", "A dataset without its text-less items, from drop_items_without_text.")
      .def_readonly("dataset", &DatasetWithText::dataset, "The kept items (re-indexed, in order) and every user.")
      .def_readonly("source_items", &DatasetWithText::source_items,
                    "For each item of dataset.catalog, its index in the input catalog.")
      .def_readonly("items_dropped", &DatasetWithText::items_dropped)
      .def_readonly("interactions_dropped", &DatasetWithText::interactions_dropped);

  m.def(
      "drop_items_without_text",
      [](const Dataset& dataset) {
        py::gil_scoped_release release;
        return drop_items_without_text(dataset);
      },
      py::arg("dataset"),
      "The dataset without the items whose attributes are all empty and without their interactions (users "
      "keep their order, possibly with empty sequences). The pipeline's dataset.drop_items_without_text.");

  m.def(
      "build_sequences",
      [](const Dataset& dataset, const py::object& options, const py::kwargs& kwargs) {
        auto o = sequence_options(options, kwargs, "build_sequences");
        py::gil_scoped_release release;
        return build_sequences(dataset, o);
      },
      py::arg("dataset"), py::arg("options") = py::none(),
      R"doc(Per-user chronological sequences (DESIGN.md, "Evaluation protocol").

Steps: items without text are dropped with their interactions (when asked);
interactions rated below min_rating are removed (unrated ones stay; None keeps all);
each user is stably sorted by timestamp (source order without timestamps);
the last max_length are kept (0: all); users shorter than min_length are dropped.
Raises ValueError when a user mixes timestamped and untimestamped interactions.)doc");

  m.def(
      "build_sequences_from_table",
      [](const std::vector<std::string>& users, const std::vector<std::int64_t>& items, std::int64_t num_items,
         std::optional<std::vector<std::optional<std::int64_t>>> timestamps,
         std::optional<std::vector<std::optional<double>>> ratings, std::optional<std::vector<bool>> items_with_text,
         const py::object& sequence_opts, const py::kwargs& kwargs) {
        const std::size_t n = users.size();
        if (items.size() != n)
          throw ValueError(fmt::format("build_sequences_from_table: items has {} entries, expected {} (one per user entry)",
                                       items.size(), n));
        if (timestamps && timestamps->size() != n)
          throw ValueError(fmt::format("build_sequences_from_table: timestamps has {} entries, expected {}",
                                       timestamps->size(), n));
        if (ratings && ratings->size() != n)
          throw ValueError(fmt::format("build_sequences_from_table: ratings has {} entries, expected {}", ratings->size(), n));
        if (num_items < 0 || num_items > std::numeric_limits<ItemIndex>::max())
          throw ValueError(fmt::format("build_sequences_from_table: num_items: expected 0 .. 2^31-1, got {}", num_items));
        if (items_with_text && items_with_text->size() != std::size_t(num_items))
          throw ValueError(fmt::format("build_sequences_from_table: items_with_text has {} entries, expected num_items = {}",
                                       items_with_text->size(), num_items));
        auto options = sequence_options(sequence_opts, kwargs, "build_sequences_from_table");
        py::gil_scoped_release release;
        // Items get ids "0".."n-1" and one attribute "text", empty where items_with_text says so.
        Dataset d;
        d.catalog = Catalog({"text"});
        d.catalog.reserve(std::size_t(num_items));
        for (std::int64_t i = 0; i < num_items; ++i)
          d.catalog.add(std::to_string(i), {(!items_with_text || (*items_with_text)[std::size_t(i)]) ? "x" : ""});
        for (std::size_t k = 0; k < n; ++k) {
          if (items[k] < 0 || items[k] >= num_items)
            throw IndexError(fmt::format("build_sequences_from_table: items[{}] = {}, expected an index in [0, {})", k,
                                         items[k], num_items));
          Interaction e;
          e.item = ItemIndex(items[k]);
          if (timestamps && (*timestamps)[k]) e.timestamp = *(*timestamps)[k];
          if (ratings && (*ratings)[k]) e.rating = float(*(*ratings)[k]);
          d.interactions.append(d.interactions.user(users[k]), e);
        }
        return build_sequences(d, options);
      },
      py::arg("users"), py::arg("items"), py::kw_only(), py::arg("num_items"), py::arg("timestamps") = py::none(),
      py::arg("ratings") = py::none(), py::arg("items_with_text") = py::none(), py::arg("options") = py::none(),
      R"doc(build_sequences on a table of interactions, one row per entry, in source order.

users: user id per row; items: item index per row (0 <= item < num_items);
timestamps / ratings: per row, None for a missing value (or omit the column);
items_with_text: per item, False for an item without text (default: all have text).
The items of the result's catalog have ids "0".."num_items-1". options and the
SequenceOptions keywords as in build_sequences.)doc");

  py::class_<UserOrder>(m, "UserOrder", "A saved random order of users (seed and ids).")
      .def(py::init([](std::uint64_t seed, std::vector<std::string> user_ids) { return UserOrder{seed, std::move(user_ids)}; }),
           py::arg("seed"), py::arg("user_ids"))
      .def_readonly("seed", &UserOrder::seed)
      .def_readonly("user_ids", &UserOrder::user_ids)
      .def("__len__", [](const UserOrder& o) { return o.user_ids.size(); })
      .def("__repr__", [](const UserOrder& o) { return fmt::format("UserOrder(seed={}, users={})", o.seed, o.user_ids.size()); });

  m.def("shuffle_users", &shuffle_users, py::arg("user_ids"), py::arg("seed"),
        "The ids shuffled by Fisher-Yates on std::mt19937_64(seed): the same on every platform. "
        "Raises ValueError on duplicate ids.");
  m.def("save_user_order", &save_user_order, py::arg("path"), py::arg("order"),
        "Writes the order atomically (text: header, seed, count, one id per line).");
  m.def("load_user_order", &load_user_order, py::arg("path"),
        "Reads a saved order; a malformed file raises ValueError naming the file, line and field.");
  m.def(
      "check_user_order",
      [](const UserOrder& order, const std::vector<std::string>& user_ids) { check_user_order(order, user_ids); },
      py::arg("order"), py::arg("user_ids"),
      "Raises ValueError unless order holds exactly these users (naming the ones missing on either side).");
  m.def("load_or_create_user_order", &load_or_create_user_order, py::arg("path"), py::arg("user_ids"), py::arg("seed"),
        R"doc(Loads path if it exists (checking seed and users, ValueError on a mismatch) and
returns it unchanged; otherwise shuffles user_ids with seed, saves to path and returns it.)doc");

  py::class_<SequenceExample>(m, "SequenceExample", "Predict target from history (oldest first).")
      .def_readonly("user", &SequenceExample::user, "The user's index in the source interactions.")
      .def_readonly("history", &SequenceExample::history)
      .def_readonly("target", &SequenceExample::target)
      .def("__repr__", [](const SequenceExample& e) {
        return fmt::format("SequenceExample(user={}, history={}, target={})", e.user, e.history.size(), e.target);
      });

  py::class_<SplitDataset>(m, "SplitDataset", "Train / valid / test examples; items index the sequences' catalog.")
      .def_readonly("train", &SplitDataset::train)
      .def_readonly("valid", &SplitDataset::valid)
      .def_readonly("test", &SplitDataset::test)
      .def_readonly("train_users", &SplitDataset::train_users)
      .def_readonly("valid_users", &SplitDataset::valid_users)
      .def_readonly("test_users", &SplitDataset::test_users)
      .def_readonly("unused_users", &SplitDataset::unused_users, "Users of the order that no part took.")
      .def_readonly("skipped_examples", &SplitDataset::skipped_examples,
                    "Examples not emitted because their history would have been empty.");

  m.def(
      "split_user_holdout",
      [](const ProcessedSequences& sequences, const UserOrder& order, const py::object& options,
         const py::kwargs& kwargs) {
        auto o = python::options_from_args<HoldoutOptions>(options, kwargs, "split_user_holdout");
        py::gil_scoped_release release;
        return split_user_holdout(sequences, order, o);
      },
      py::arg("sequences"), py::arg("order"), py::arg("options") = py::none(),
      R"doc(User hold-out split (RecBench): in the order's sequence, the first train_users
users train, the next valid_users validate, the next test_users test. Sizes are
an int (count) or a float (fraction of the users); train_users=None takes the
rest. A valid/test user gives one example: target = last item, history = the
items before it. train_examples: 'last_item' (one example per user) or
'all_prefixes' (one per position).)doc");

  m.def(
      "split_leave_one_out",
      [](const ProcessedSequences& sequences, const py::object& options, const py::kwargs& kwargs) {
        auto o = python::options_from_args<LeaveOneOutOptions>(options, kwargs, "split_leave_one_out");
        py::gil_scoped_release release;
        return split_leave_one_out(sequences, o);
      },
      py::arg("sequences"), py::arg("options") = py::none(),
      R"doc(Leave-one-out (TIGER): per user the last item is the test target, the second
to last the valid target, the rest the training sequence. Examples whose
history would be empty are skipped and counted.)doc");
}
