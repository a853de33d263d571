#include <lamia/data/statistics.hpp>

#include <algorithm>

namespace lamia {

DatasetStatistics compute_statistics(const Dataset& dataset) {
  const auto& cat = dataset.catalog;
  const auto& in = dataset.interactions;
  DatasetStatistics s;
  s.name = dataset.name;
  s.items = cat.size();
  s.attributes = cat.attribute_names();
  s.attribute_non_empty.assign(cat.num_attributes(), 0);
  for (ItemIndex i = 0; i < ItemIndex(cat.size()); ++i) {
    bool any = false;
    for (std::size_t a = 0; a < cat.num_attributes(); ++a)
      if (!cat.value(i, a).empty()) {
        ++s.attribute_non_empty[a];
        any = true;
      }
    s.items_with_text += any;
  }
  std::vector<char> seen(cat.size(), 0);
  std::vector<std::size_t> lengths;
  lengths.reserve(in.num_users());
  std::int64_t lo = Interaction::kNoTimestamp, hi = Interaction::kNoTimestamp;
  for (UserIndex u = 0; u < UserIndex(in.num_users()); ++u) {
    const auto& seq = in.sequence(u);
    lengths.push_back(seq.size());
    for (const auto& e : seq) {
      if (e.item >= 0 && std::size_t(e.item) < seen.size() && !seen[std::size_t(e.item)]) {
        seen[std::size_t(e.item)] = 1;
        ++s.interacted_items;
      }
      if (e.has_timestamp()) {
        if (lo == Interaction::kNoTimestamp || e.timestamp < lo) lo = e.timestamp;
        if (hi == Interaction::kNoTimestamp || e.timestamp > hi) hi = e.timestamp;
      }
      s.has_ratings = s.has_ratings || e.has_rating();
    }
  }
  s.users = in.num_users();
  s.interactions = in.size();
  s.has_timestamps = lo != Interaction::kNoTimestamp;
  if (s.has_timestamps) {
    s.first_timestamp = lo;
    s.last_timestamp = hi;
  }
  if (s.users > 0) {
    s.avg_user_length = double(s.interactions) / double(s.users);
    std::sort(lengths.begin(), lengths.end());
    s.min_user_length = lengths.front();
    s.max_user_length = lengths.back();
    s.median_user_length = lengths[lengths.size() / 2];
    s.users_with_at_least_5 = std::size_t(lengths.end() - std::lower_bound(lengths.begin(), lengths.end(), 5));
  }
  if (s.interacted_items > 0) {
    s.avg_item_appearances = double(s.interactions) / double(s.interacted_items);
    s.density = double(s.interactions) / (double(s.users) * double(s.interacted_items));
  }
  return s;
}

nlohmann::json DatasetStatistics::to_json() const {
  nlohmann::json j;
  j["name"] = name;
  j["items"] = items;
  j["users"] = users;
  j["interactions"] = interactions;
  j["avg_user_length"] = avg_user_length;
  j["avg_item_appearances"] = avg_item_appearances;
  j["items_with_text"] = items_with_text;
  j["interacted_items"] = interacted_items;
  j["density"] = density;
  j["min_user_length"] = min_user_length;
  j["median_user_length"] = median_user_length;
  j["max_user_length"] = max_user_length;
  j["users_with_at_least_5"] = users_with_at_least_5;
  j["has_timestamps"] = has_timestamps;
  j["has_ratings"] = has_ratings;
  j["first_timestamp"] = first_timestamp ? nlohmann::json(*first_timestamp) : nlohmann::json(nullptr);
  j["last_timestamp"] = last_timestamp ? nlohmann::json(*last_timestamp) : nlohmann::json(nullptr);
  auto attrs = nlohmann::json::object();
  for (std::size_t a = 0; a < attributes.size(); ++a) attrs[attributes[a]] = attribute_non_empty[a];
  j["attributes"] = attrs;
  return j;
}

}  // namespace lamia
