#include <lamia/core/errors.hpp>
#include <lamia/data/interactions.hpp>

#include <fmt/format.h>

namespace lamia {

UserIndex Interactions::user(std::string_view id) {
  if (id.empty()) throw ValueError("Interactions: user id is empty");
  auto key = std::string(id);
  auto it = by_id_.find(key);
  if (it != by_id_.end()) return it->second;
  auto index = UserIndex(user_ids_.size());
  by_id_.emplace(key, index);
  user_ids_.push_back(std::move(key));
  sequences_.emplace_back();
  return index;
}

std::optional<UserIndex> Interactions::find_user(std::string_view id) const {
  auto it = by_id_.find(std::string(id));
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

void Interactions::check_user(UserIndex user) const {
  if (user < 0 || std::size_t(user) >= user_ids_.size())
    throw IndexError(fmt::format("Interactions: user index {} out of range [0, {})", user, user_ids_.size()));
}

const std::string& Interactions::user_id(UserIndex user) const {
  check_user(user);
  return user_ids_[std::size_t(user)];
}

void Interactions::append(UserIndex user, Interaction event) {
  check_user(user);
  if (event.item < 0) throw IndexError(fmt::format("Interactions: negative item index {}", event.item));
  sequences_[std::size_t(user)].push_back(event);
  ++total_;
}

const std::vector<Interaction>& Interactions::sequence(UserIndex user) const {
  check_user(user);
  return sequences_[std::size_t(user)];
}

void Interactions::set_sequence(UserIndex user, std::vector<Interaction> events) {
  check_user(user);
  for (const auto& e : events)
    if (e.item < 0) throw IndexError(fmt::format("Interactions: negative item index {}", e.item));
  total_ -= sequences_[std::size_t(user)].size();
  total_ += events.size();
  sequences_[std::size_t(user)] = std::move(events);
}

bool Interactions::has_timestamps() const noexcept {
  for (const auto& s : sequences_)
    for (const auto& e : s)
      if (e.has_timestamp()) return true;
  return false;
}

bool Interactions::has_ratings() const noexcept {
  for (const auto& s : sequences_)
    for (const auto& e : s)
      if (e.has_rating()) return true;
  return false;
}

}  // namespace lamia
