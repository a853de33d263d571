#include <lamia/core/errors.hpp>
#include <lamia/data/catalog.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace lamia {

Catalog::Catalog(std::vector<std::string> attribute_names) : attributes_(std::move(attribute_names)) {
  for (std::size_t i = 0; i < attributes_.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (attributes_[i] == attributes_[j])
        throw ValueError(fmt::format("Catalog: attribute name '{}' appears twice", attributes_[i]));
}

std::size_t Catalog::attribute_index(std::string_view name) const {
  for (std::size_t i = 0; i < attributes_.size(); ++i)
    if (attributes_[i] == name) return i;
  throw IndexError(fmt::format("Catalog: no attribute '{}' (attributes: {})", name, fmt::join(attributes_, ", ")));
}

bool Catalog::has_attribute(std::string_view name) const noexcept {
  for (const auto& a : attributes_)
    if (a == name) return true;
  return false;
}

ItemIndex Catalog::add(std::string id, std::vector<std::string> values) {
  if (id.empty()) throw ValueError("Catalog: item id is empty");
  if (values.size() != attributes_.size())
    throw ValueError(fmt::format("Catalog: item '{}' has {} values, expected {} (one per attribute)", id,
                                 values.size(), attributes_.size()));
  if (ids_.size() >= std::size_t(std::numeric_limits<ItemIndex>::max()))
    throw ValueError("Catalog: too many items");
  auto index = ItemIndex(ids_.size());
  auto [it, inserted] = by_id_.emplace(id, index);
  if (!inserted) throw ValueError(fmt::format("Catalog: duplicate item id '{}'", id));
  ids_.push_back(std::move(id));
  for (auto& v : values) values_.push_back(std::move(v));
  return index;
}

void Catalog::reserve(std::size_t items) {
  ids_.reserve(items);
  values_.reserve(items * attributes_.size());
  by_id_.reserve(items);
}

void Catalog::check_item(ItemIndex item) const {
  if (item < 0 || std::size_t(item) >= ids_.size())
    throw IndexError(fmt::format("Catalog: item index {} out of range [0, {})", item, ids_.size()));
}

const std::string& Catalog::id(ItemIndex item) const {
  check_item(item);
  return ids_[std::size_t(item)];
}

const std::string& Catalog::value(ItemIndex item, std::size_t attribute) const {
  check_item(item);
  if (attribute >= attributes_.size())
    throw IndexError(fmt::format("Catalog: attribute index {} out of range [0, {})", attribute, attributes_.size()));
  return values_[std::size_t(item) * attributes_.size() + attribute];
}

const std::string& Catalog::value(ItemIndex item, std::string_view attribute) const {
  return value(item, attribute_index(attribute));
}

std::vector<std::string> Catalog::values(ItemIndex item) const {
  check_item(item);
  auto begin = values_.begin() + std::ptrdiff_t(std::size_t(item) * attributes_.size());
  return {begin, begin + std::ptrdiff_t(attributes_.size())};
}

void Catalog::set_value(ItemIndex item, std::size_t attribute, std::string v) {
  value(item, attribute);  // bounds checks
  values_[std::size_t(item) * attributes_.size() + attribute] = std::move(v);
}

bool Catalog::has_text(ItemIndex item) const {
  check_item(item);
  for (std::size_t a = 0; a < attributes_.size(); ++a)
    if (!values_[std::size_t(item) * attributes_.size() + a].empty()) return true;
  return false;
}

std::optional<ItemIndex> Catalog::find(std::string_view id) const {
  auto it = by_id_.find(std::string(id));
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

ItemIndex Catalog::index_of(std::string_view id) const {
  auto found = find(id);
  if (!found) throw IndexError(fmt::format("Catalog: unknown item id '{}'", id));
  return *found;
}

Catalog Catalog::select_attributes(const std::vector<std::string>& names) const {
  std::vector<std::size_t> columns;
  for (const auto& n : names) columns.push_back(attribute_index(n));
  Catalog out(names);
  for (std::size_t i = 0; i < ids_.size(); ++i) {
    std::vector<std::string> v;
    for (auto c : columns) v.push_back(values_[i * attributes_.size() + c]);
    out.add(ids_[i], std::move(v));
  }
  return out;
}

Catalog Catalog::select_items(const std::vector<ItemIndex>& items) const {
  Catalog out(attributes_);
  for (auto i : items) out.add(id(i), values(i));
  return out;
}

}  // namespace lamia
