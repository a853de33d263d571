// The data model (Catalog, Interaction, Interactions, Dataset), the loaders (LoadOptions,
// FieldMapping, LoadReport, load_dataset and one function per format) and statistics.
// Loads release the GIL. Returned Datasets are owned by Python; catalog / interactions
// attributes of a Dataset are views into it (kept alive by it).
#include "json_cast.hpp"
#include "options.hpp"
#include "registry.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/data/catalog.hpp>
#include <lamia/data/interactions.hpp>
#include <lamia/data/loaders.hpp>
#include <lamia/data/statistics.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <cmath>
#include <optional>

namespace py = pybind11;
using namespace lamia;

namespace {

using python::to_python;

ItemIndex checked_item(const Catalog& c, std::int64_t item) {
  if (item < 0 || std::uint64_t(item) >= c.size())
    throw IndexError(fmt::format("Catalog: item index {} out of range [0, {})", item, c.size()));
  return ItemIndex(item);
}

Interaction make_interaction(ItemIndex item, std::optional<std::int64_t> timestamp, std::optional<double> rating) {
  Interaction e;
  e.item = item;
  if (timestamp) e.timestamp = *timestamp;
  if (rating) e.rating = float(*rating);
  return e;
}

// options (copied) with the keyword overrides applied.
LoadOptions resolve(const std::optional<LoadOptions>& options, std::optional<bool> lenient,
                    const std::optional<std::string>& unknown_items) {
  LoadOptions o = options.value_or(LoadOptions{});
  if (lenient) o.lenient = *lenient;
  if (unknown_items) o.unknown_items = parse_unknown_items(*unknown_items);
  return o;
}

const char* kLoadKwargsDoc =
    "options: a LoadOptions (None: defaults). lenient, unknown_items: override the same fields of options.\n"
    "report: a LoadReport to fill with what was skipped, added and read.\n"
    "Raises ValueError (a malformed file; the message starts with 'file:line: field 'x':'), OSError (a\n"
    "missing folder or file). The GIL is released while loading.";

using Loader = Dataset (*)(const std::filesystem::path&, const LoadOptions&, LoadReport*);

void def_loader(py::module_& m, const char* name, Loader loader, const char* what) {
  m.def(
      name,
      [loader](const std::filesystem::path& path, const std::optional<LoadOptions>& options,
               std::optional<bool> lenient, const std::optional<std::string>& unknown_items, LoadReport* report) {
        auto o = resolve(options, lenient, unknown_items);
        LoadReport local;
        LoadReport& r = report ? *report : local;
        r = LoadReport{};
        py::gil_scoped_release release;
        return loader(path, o, &r);
      },
      py::arg("path"), py::arg("options") = py::none(), py::kw_only(), py::arg("lenient") = py::none(),
      py::arg("unknown_items") = py::none(), py::arg("report") = py::none(),
      (std::string(what) + "\n\n" + kLoadKwargsDoc).c_str());
}

}  // namespace

LAMIA_REGISTER_BINDINGS(kOrderData, data) {
  // ---- the data model ----
  py::class_<Catalog>(m, "Catalog",
                      "The items of a dataset: a stable string id and named text attributes per item.\n"
                      "Items are indexed 0 .. len-1 in insertion order.")
      .def(py::init<std::vector<std::string>>(), py::arg("attribute_names") = std::vector<std::string>{},
           "A catalog whose items carry these attributes (unique names), in this order.")
      .def_property_readonly("attribute_names", &Catalog::attribute_names)
      .def_property_readonly("num_attributes", &Catalog::num_attributes)
      .def("attribute_index", &Catalog::attribute_index, py::arg("name"),
           "Index of an attribute; IndexError naming the known ones.")
      .def("has_attribute", &Catalog::has_attribute, py::arg("name"))
      .def("__len__", &Catalog::size)
      .def("__contains__", [](const Catalog& c, const std::string& id) { return c.find(id).has_value(); },
           py::arg("id"))
      .def("add", &Catalog::add, py::arg("id"), py::arg("values"),
           "Adds an item (values follow attribute_names); returns its index. ValueError on a duplicate or empty id.")
      .def("id", [](const Catalog& c, std::int64_t i) { return c.id(checked_item(c, i)); }, py::arg("item"))
      .def("value",
           [](const Catalog& c, std::int64_t i, const std::string& attribute) {
             return c.value(checked_item(c, i), attribute);
           },
           py::arg("item"), py::arg("attribute"), "One attribute value of an item, by attribute name.")
      .def("value",
           [](const Catalog& c, std::int64_t i, std::size_t attribute) { return c.value(checked_item(c, i), attribute); },
           py::arg("item"), py::arg("attribute"), "One attribute value of an item, by attribute index.")
      .def("values", [](const Catalog& c, std::int64_t i) { return c.values(checked_item(c, i)); }, py::arg("item"),
           "All attribute values of an item, in attribute order.")
      .def("item", 
           [](const Catalog& c, std::int64_t i) {
             auto item = checked_item(c, i);
             py::dict out;
             const auto& names = c.attribute_names();
             for (std::size_t a = 0; a < names.size(); ++a) out[py::str(names[a])] = c.value(item, a);
             return out;
           },
           py::arg("item"), "An item's attributes as a dict {name: value}.")
      .def("set_value",
           [](Catalog& c, std::int64_t i, std::size_t attribute, std::string v) {
             c.set_value(checked_item(c, i), attribute, std::move(v));
           },
           py::arg("item"), py::arg("attribute"), py::arg("value"))
      .def("has_text", [](const Catalog& c, std::int64_t i) { return c.has_text(checked_item(c, i)); }, py::arg("item"),
           "True when at least one attribute of the item is non-empty.")
      .def("find", &Catalog::find, py::arg("id"), "Index of the item with this id, or None.")
      .def("index_of", &Catalog::index_of, py::arg("id"), "Index of the item with this id; IndexError if unknown.")
      .def_property_readonly("ids",
                             [](const Catalog& c) {
                               std::vector<std::string> out;
                               out.reserve(c.size());
                               for (ItemIndex i = 0; i < ItemIndex(c.size()); ++i) out.push_back(c.id(i));
                               return out;
                             },
                             "All item ids, in index order (a copy).")
      .def("select_attributes", &Catalog::select_attributes, py::arg("names"))
      .def("select_items", &Catalog::select_items, py::arg("items"))
      .def("__repr__", [](const Catalog& c) {
        return fmt::format("Catalog({} items, attributes={})", c.size(), py::repr(py::cast(c.attribute_names())).cast<std::string>());
      });

  py::class_<Interaction>(m, "Interaction",
                          "One interaction: an item index, and a Unix time in seconds and a rating when known.")
      .def(py::init(&make_interaction), py::arg("item"), py::arg("timestamp") = py::none(),
           py::arg("rating") = py::none())
      .def_readwrite("item", &Interaction::item)
      .def_property_readonly("timestamp",
                             [](const Interaction& e) {
                               return e.has_timestamp() ? std::optional<std::int64_t>(e.timestamp) : std::nullopt;
                             },
                             "Unix seconds, or None.")
      .def_property_readonly("rating",
                             [](const Interaction& e) {
                               return e.has_rating() ? std::optional<double>(e.rating) : std::nullopt;
                             },
                             "The source's rating, or None.")
      .def("__eq__",
           [](const Interaction& a, const Interaction& b) {
             return a.item == b.item && a.timestamp == b.timestamp &&
                    (a.rating == b.rating || (std::isnan(a.rating) && std::isnan(b.rating)));
           })
      .def("__repr__", [](const Interaction& e) {
        return fmt::format("Interaction(item={}, timestamp={}, rating={})", e.item,
                           e.has_timestamp() ? std::to_string(e.timestamp) : "None",
                           e.has_rating() ? fmt::format("{}", e.rating) : "None");
      });

  py::class_<Interactions>(m, "Interactions", "Per-user ordered item sequences. len() is the total interaction count.")
      .def(py::init<>())
      .def_property_readonly("num_users", &Interactions::num_users)
      .def("__len__", &Interactions::size)
      .def("user", &Interactions::user, py::arg("id"), "Index of the user with this id, created if new.")
      .def("find_user", &Interactions::find_user, py::arg("id"), "Index of the user, or None.")
      .def("user_id", &Interactions::user_id, py::arg("user"))
      .def_property_readonly("user_ids",
                             [](const Interactions& in) {
                               std::vector<std::string> out;
                               for (UserIndex u = 0; u < UserIndex(in.num_users()); ++u) out.push_back(in.user_id(u));
                               return out;
                             },
                             "All user ids, in index order (a copy).")
      .def("append", &Interactions::append, py::arg("user"), py::arg("interaction"))
      .def("sequence", &Interactions::sequence, py::arg("user"), "The user's interactions, in order (a copy).")
      .def("items",
           [](const Interactions& in, UserIndex u) {
             std::vector<ItemIndex> out;
             for (const auto& e : in.sequence(u)) out.push_back(e.item);
             return out;
           },
           py::arg("user"), "The item indices of the user's sequence.")
      .def("set_sequence", &Interactions::set_sequence, py::arg("user"), py::arg("interactions"))
      .def_property_readonly("has_timestamps", &Interactions::has_timestamps)
      .def_property_readonly("has_ratings", &Interactions::has_ratings)
      .def("__repr__", [](const Interactions& in) {
        return fmt::format("Interactions({} users, {} interactions)", in.num_users(), in.size());
      });

  py::class_<Dataset>(m, "Dataset", "A catalog and the interactions over it, as a loader returns them.")
      .def(py::init([](std::string name, std::optional<Catalog> catalog, std::optional<Interactions> interactions) {
             Dataset d;
             d.name = std::move(name);
             if (catalog) d.catalog = std::move(*catalog);
             if (interactions) d.interactions = std::move(*interactions);
             return d;
           }),
           py::arg("name") = "", py::arg("catalog") = py::none(), py::arg("interactions") = py::none())
      .def_readwrite("name", &Dataset::name)
      .def_readwrite("catalog", &Dataset::catalog, "The items (a view into this dataset).")
      .def_readwrite("interactions", &Dataset::interactions, "The sequences (a view into this dataset).")
      .def("__repr__", [](const Dataset& d) {
        return fmt::format("Dataset('{}', {} items, {} users, {} interactions)", d.name, d.catalog.size(),
                           d.interactions.num_users(), d.interactions.size());
      });

  // ---- loaders ----
  python::bind_options<FieldMapping>(m, "FieldMapping",
                                     "Which fields of a generic 'jsonl' / 'csv' dataset hold what. The folder holds\n"
                                     "<interactions_file>.jsonl|.csv|.tsv and optionally <items_file>.jsonl|.csv|.tsv.");
  python::bind_options<LoadOptions>(m, "LoadOptions", "Options shared by all loaders.");

  py::class_<LoadReport>(m, "LoadReport",
                         "What a load skipped (warnings, when lenient), added and read (counts), with the first\n"
                         "messages and their locations. Pass one as report= to a loader to have it filled.")
      .def(py::init<>())
      .def_readonly("warnings", &LoadReport::warnings, "Warning kind -> count (rows skipped as malformed).")
      .def_readonly("counts", &LoadReport::counts, "Counter -> value: rows per file, unknown items added / skipped, ...")
      .def_property_readonly("messages",
                             [](const LoadReport& r) {
                               std::vector<std::string> out;
                               for (const auto& msg : r.messages) out.push_back(msg.str());
                               return out;
                             },
                             "'file:line: field 'x': message' for the first warnings and skips.")
      .def_property_readonly("num_warnings", &LoadReport::num_warnings)
      .def("to_dict", [](const LoadReport& r) { return to_python(r.to_json()); })
      .def("__repr__", [](const LoadReport& r) {
        return fmt::format("LoadReport({} warnings, {} messages)", r.num_warnings(), r.messages.size());
      });

  m.def("dataset_formats", &dataset_formats, "The formats load_dataset accepts.");
  m.def(
      "load_dataset",
      [](const std::string& format, const std::filesystem::path& path, const std::optional<LoadOptions>& options,
         std::optional<bool> lenient, const std::optional<std::string>& unknown_items, LoadReport* report) {
        auto o = resolve(options, lenient, unknown_items);
        LoadReport local;
        LoadReport& r = report ? *report : local;
        py::gil_scoped_release release;
        return load_dataset(format, path, o, r);
      },
      py::arg("format"), py::arg("path"), py::arg("options") = py::none(), py::kw_only(),
      py::arg("lenient") = py::none(), py::arg("unknown_items") = py::none(), py::arg("report") = py::none(),
      (std::string("Loads the dataset in the folder path, stored in format (see dataset_formats()).\n"
                   "'synthetic' takes an optional folder with synthetic.json or a JSON options file.\n\n") +
       kLoadKwargsDoc)
          .c_str());
  def_loader(m, "load_mind", &load_mind, "MIND: news.tsv + behaviors.tsv (attributes title, abstract, category, subcategory).");
  def_loader(m, "load_amazon_lcrec", &load_amazon_lcrec,
             "Amazon in LC-Rec form: <name>.item.json + <name>.inter.json (title, description, brand, categories).");
  def_loader(m, "load_amazon", &load_amazon,
             "Raw Amazon: meta*.json[l][.gz] (strict or Python-literal lines) + a review JSON-lines file.");
  def_loader(m, "load_hm", &load_hm, "H&M: articles.csv + transactions_train.csv.");
  def_loader(m, "load_movielens", &load_movielens,
             "MovieLens: movies.csv + ratings.csv [+ tags.csv], or ml-100k's u.item + u.data.");
  def_loader(m, "load_jsonl", &load_jsonl, "Generic JSON lines with options.mapping.");
  def_loader(m, "load_csv", &load_csv, "Generic CSV / TSV with options.mapping.");
  m.def(
      "load_amazon_files",
      [](const std::filesystem::path& metadata, const std::filesystem::path& reviews,
         const std::optional<LoadOptions>& options, std::optional<bool> lenient,
         const std::optional<std::string>& unknown_items, LoadReport* report) {
        auto o = resolve(options, lenient, unknown_items);
        LoadReport local;
        LoadReport& r = report ? *report : local;
        r = LoadReport{};
        py::gil_scoped_release release;
        return load_amazon_files(metadata, reviews, o, &r);
      },
      py::arg("metadata"), py::arg("reviews"), py::arg("options") = py::none(), py::kw_only(),
      py::arg("lenient") = py::none(), py::arg("unknown_items") = py::none(), py::arg("report") = py::none(),
      (std::string("Raw Amazon with both files named.\n\n") + kLoadKwargsDoc).c_str());

  // ---- statistics ----
  py::class_<DatasetStatistics>(m, "DatasetStatistics",
                                "Table-2 style statistics of a dataset (see compute_statistics); to_dict() has them all.")
      .def_readonly("name", &DatasetStatistics::name)
      .def_readonly("items", &DatasetStatistics::items)
      .def_readonly("items_with_text", &DatasetStatistics::items_with_text)
      .def_readonly("interacted_items", &DatasetStatistics::interacted_items)
      .def_readonly("users", &DatasetStatistics::users)
      .def_readonly("interactions", &DatasetStatistics::interactions)
      .def_readonly("avg_user_length", &DatasetStatistics::avg_user_length)
      .def_readonly("avg_item_appearances", &DatasetStatistics::avg_item_appearances)
      .def_readonly("density", &DatasetStatistics::density)
      .def_readonly("min_user_length", &DatasetStatistics::min_user_length)
      .def_readonly("median_user_length", &DatasetStatistics::median_user_length)
      .def_readonly("max_user_length", &DatasetStatistics::max_user_length)
      .def_readonly("users_with_at_least_5", &DatasetStatistics::users_with_at_least_5)
      .def_readonly("has_timestamps", &DatasetStatistics::has_timestamps)
      .def_readonly("has_ratings", &DatasetStatistics::has_ratings)
      .def_readonly("first_timestamp", &DatasetStatistics::first_timestamp)
      .def_readonly("last_timestamp", &DatasetStatistics::last_timestamp)
      .def_readonly("attributes", &DatasetStatistics::attributes)
      .def_readonly("attribute_non_empty", &DatasetStatistics::attribute_non_empty)
      .def("to_dict", [](const DatasetStatistics& s) { return to_python(s.to_json()); },
           "All statistics as a dict (the JSON that `lamia stats` prints, without the load report).")
      .def("__repr__", [](const DatasetStatistics& s) {
        return fmt::format("DatasetStatistics('{}', items={}, users={}, interactions={})", s.name, s.items, s.users,
                           s.interactions);
      });
  m.def("compute_statistics", &compute_statistics, py::arg("dataset"),
        "Items, users, interactions, avg_user_length (interactions / users), avg_item_appearances\n"
        "(interactions / interacted items) and more, in one pass.");
}
