#include <lamia/pipeline/metrics_table.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <ostream>

namespace lamia {

void print_metrics(std::ostream& out, const nlohmann::json& metrics) {
  if (metrics.is_null() || !metrics.contains("methods")) return;
  const std::vector<std::int64_t> ks = {5, 10, 20};
  const auto exact_users = metrics.value("exact_users", metrics.value("test_users", 0));
  out << fmt::format(
      "{} protocol, {} test users, {} items, history excluded: {} ({} test targets repeat a history item: misses "
      "for every method). Generative recommenders: the top-{} list of constrained beam search (beam {}); ID-based "
      "methods: full ranking. {} prod R@10: RecBench's per-level rank product (not an item ranking; for comparison "
      "with papers that used it).\n",
      metrics.value("protocol", ""), metrics.value("test_users", 0), metrics.value("num_items", 0),
      metrics.value("exclude_history", true) ? "yes" : "no", metrics.value("test_targets_in_history", 0),
      metrics.value("top_k", 0), metrics.value("beam_width", 0),
      exact_users > 0 ? fmt::format("exact R@10 / beam=exact: full ranking by exact scoring and the share of users "
                                    "whose beam top-K equals the exact top-K, on the first {} users.",
                                    exact_users)
                      : std::string("Exact scoring is off (evaluate.exact)."));
  std::string header = fmt::format("{:<18}", "method");
  for (auto k : ks) header += fmt::format(" {:>7}", fmt::format("R@{}", k));
  for (auto k : ks) header += fmt::format(" {:>7}", fmt::format("N@{}", k));
  header += fmt::format(" {:>7} {:>12} {:>10} {:>10}", "MRR", "exact R@10", "beam=exact", "prod R@10");
  out << header << "\n";
  auto value = [](const nlohmann::json& r, const std::string& key) {
    return r.contains(key) ? fmt::format("{:.4f}", r.at(key).get<double>()) : std::string("-");
  };
  for (const auto& [name, m] : metrics.at("methods").items()) {
    const bool generative = m.contains("beam");
    const auto& main = generative ? m.at("beam") : (m.contains("exact") ? m.at("exact") : nlohmann::json::object());
    std::string row = fmt::format("{:<18}", name);
    for (auto k : ks) row += fmt::format(" {:>7}", value(main, fmt::format("recall@{}", k)));
    for (auto k : ks) row += fmt::format(" {:>7}", value(main, fmt::format("ndcg@{}", k)));
    row += fmt::format(" {:>7}", value(main, "mrr"));
    const auto exact = generative && m.contains("exact") ? value(m.at("exact"), "recall@10") : std::string("-");
    const auto agree = m.contains("beam_exact_agreement")
                           ? fmt::format("{:.3f}", m.at("beam_exact_agreement").get<double>())
                           : std::string("-");
    const auto prod = m.contains("prod_not_an_item_ranking") ? value(m.at("prod_not_an_item_ranking"), "recall@10")
                                                             : std::string("-");
    row += fmt::format(" {:>12} {:>10} {:>10}", exact, agree, prod);
    out << row << "\n";
  }
}

}  // namespace lamia
