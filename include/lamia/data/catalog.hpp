#pragma once
// Catalog: the items of a dataset, each with a stable external id and an
// ordered set of named text attributes (any number, any names, empty allowed).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lamia {

/// Dense index of an item in its Catalog: 0 .. size()-1, in insertion order.
using ItemIndex = std::int32_t;

class Catalog {
 public:
  Catalog() = default;
  /// A catalog whose items carry these attributes, in this order. Names must be unique.
  explicit Catalog(std::vector<std::string> attribute_names);

  const std::vector<std::string>& attribute_names() const noexcept { return attributes_; }
  std::size_t num_attributes() const noexcept { return attributes_.size(); }
  /// Index of the attribute called name; throws IndexError naming the known ones.
  std::size_t attribute_index(std::string_view name) const;
  bool has_attribute(std::string_view name) const noexcept;

  std::size_t size() const noexcept { return ids_.size(); }
  bool empty() const noexcept { return ids_.empty(); }

  /// Adds an item; values follow attribute_names(). Throws ValueError on a
  /// duplicate or empty id, or when values.size() != num_attributes().
  ItemIndex add(std::string id, std::vector<std::string> values);
  /// Reserves room for this many items (a speed-up for large catalogs; no effect on contents).
  void reserve(std::size_t items);

  const std::string& id(ItemIndex item) const;
  /// Value of one attribute of an item (may be empty).
  const std::string& value(ItemIndex item, std::size_t attribute) const;
  const std::string& value(ItemIndex item, std::string_view attribute) const;
  /// All attribute values of an item, in attribute order.
  std::vector<std::string> values(ItemIndex item) const;
  /// Replaces one value (used by loaders that aggregate, e.g. MovieLens tags).
  void set_value(ItemIndex item, std::size_t attribute, std::string value);

  /// True when at least one attribute of the item is non-empty.
  bool has_text(ItemIndex item) const;

  std::optional<ItemIndex> find(std::string_view id) const;
  /// Index of the item with this id; throws IndexError naming the id.
  ItemIndex index_of(std::string_view id) const;

  /// A catalog with only the given attributes (in the given order), same items.
  Catalog select_attributes(const std::vector<std::string>& names) const;
  /// A catalog with only the given items (in the given order).
  Catalog select_items(const std::vector<ItemIndex>& items) const;

 private:
  void check_item(ItemIndex item) const;

  std::vector<std::string> attributes_;
  std::vector<std::string> ids_;
  std::vector<std::string> values_;  // row-major: item * num_attributes + attribute
  std::unordered_map<std::string, ItemIndex> by_id_;
};

}  // namespace lamia
