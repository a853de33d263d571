#include <lamia/pipeline/metrics_table.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <ostream>

namespace lamia {

void print_metrics(std::ostream& out, const nlohmann::json& metrics) {
  if (metrics.is_null() || !metrics.contains("methods")) return;
  const std::vector<std::int64_t> ks = {5, 10, 20};
  out << fmt::format("{} protocol, {} test users, {} items, history excluded: {}; full ranking (exact)\n",
                     metrics.value("protocol", ""), metrics.value("test_users", 0), metrics.value("num_items", 0),
                     metrics.value("exclude_history", true) ? "yes" : "no");
  std::string header = fmt::format("{:<18}", "method");
  for (auto k : ks) header += fmt::format(" {:>7}", fmt::format("R@{}", k));
  for (auto k : ks) header += fmt::format(" {:>7}", fmt::format("N@{}", k));
  header += fmt::format(" {:>9} {:>9}", "beam R@10", "beam=exact");
  out << header << "\n";
  auto value = [](const nlohmann::json& r, const std::string& key) {
    return r.contains(key) ? fmt::format("{:.4f}", r.at(key).get<double>()) : std::string("-");
  };
  for (const auto& [name, m] : metrics.at("methods").items()) {
    std::string row = fmt::format("{:<18}", name);
    const auto& full = m.contains("exact") ? m.at("exact") : nlohmann::json::object();
    for (auto k : ks) row += fmt::format(" {:>7}", value(full, fmt::format("recall@{}", k)));
    for (auto k : ks) row += fmt::format(" {:>7}", value(full, fmt::format("ndcg@{}", k)));
    const auto beam = m.contains("beam") ? value(m.at("beam"), "recall@10") : std::string("-");
    const auto agree = m.contains("beam_exact_agreement") ? fmt::format("{:.3f}", m.at("beam_exact_agreement").get<double>())
                                                          : std::string("-");
    row += fmt::format(" {:>9} {:>9}", beam, agree);
    out << row << "\n";
  }
}

}  // namespace lamia
