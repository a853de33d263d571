// lamia inspect DIR: an item's text and semantic IDs, the items under a code prefix, or a user's
// history and recommendations (lamia/pipeline/inspect.hpp), as text or --json.
#include "command.hpp"

#include <lamia/core/errors.hpp>
#include <lamia/pipeline/inspect.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

// A named namespace per command: the commands are compiled as one unity source.
namespace lamia::cli::inspect_command {

struct InspectArgs {
  std::string dir;
  std::string item;
  std::string prefix;
  std::string user;
  std::string tokenizer;
  std::int64_t top_k = 10;
  std::int64_t limit = 20;
  bool json = false;
};

// "name: value; name: value", cut so that one item stays one line.
std::string one_line(const nlohmann::json& text) {
  std::string out;
  for (const auto& [name, value] : text.items()) {
    if (!out.empty()) out += "; ";
    out += name + ": " + value.get<std::string>();
  }
  constexpr std::size_t kMax = 100;
  if (out.size() > kMax) out = out.substr(0, kMax - 3) + "...";
  return out;
}

std::string id_text(const nlohmann::json& id) { return fmt::format("{}", fmt::join(id.get<std::vector<std::int64_t>>(), "-")); }

std::vector<std::int64_t> parse_prefix(const std::string& text) {
  std::vector<std::int64_t> codes;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto end = text.find_first_of(",-", start);
    const auto part = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size())
      throw lamia::ValueError(fmt::format("inspect: --prefix '{}': '{}' is not a code (expected e.g. 3,17)", text, part));
    codes.push_back(v);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return codes;
}

lamia::cli::Command setup(CLI::App& parent) {
  auto args = std::make_shared<InspectArgs>();
  auto* app = parent.add_subcommand(
      "inspect",
      "Look into a run folder: --item ID (its text and semantic IDs), --prefix 3,17 (the items whose\n"
      "IDs start with these codes), or --user ID (history, held-out item and top-K recommendations).");
  app->add_option("DIR", args->dir, "Run folder")->required();
  auto* item = app->add_option("--item", args->item, "An item id of the catalog");
  auto* prefix = app->add_option("--prefix", args->prefix, "A code prefix, e.g. 3,17 or 3-17");
  auto* user = app->add_option("--user", args->user, "A user id");
  item->excludes(prefix)->excludes(user);
  prefix->excludes(user);
  app->add_option("--tokenizer,-t", args->tokenizer,
                  "Semantic IDs to use (lamia, rq-vae, residual-kmeans, ...); --prefix: default lamia;\n"
                  "--user: default the first trained recommender");
  app->add_option("--top-k,-k", args->top_k, "Recommendations for --user")->capture_default_str()->check(CLI::Range(1, 1000));
  app->add_option("--limit", args->limit, "Items listed for --prefix")->capture_default_str()->check(CLI::Range(1, 1000000));
  app->add_flag("--json", args->json, "Print the JSON object instead of text");
  return {app, [args] {
            nlohmann::json out;
            if (!args->item.empty()) {
              out = lamia::inspect_item(args->dir, args->item);
            } else if (!args->prefix.empty()) {
              out = lamia::inspect_prefix(args->dir, args->tokenizer.empty() ? "lamia" : args->tokenizer,
                                          parse_prefix(args->prefix), args->limit);
            } else if (!args->user.empty()) {
              out = lamia::inspect_user(args->dir, args->user, args->tokenizer, args->top_k);
            } else {
              throw lamia::ValueError("inspect: give one of --item ID, --prefix CODES or --user ID");
            }
            if (args->json) {
              std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
              return;
            }
            if (!args->item.empty()) {
              std::cout << fmt::format("item {} (index {})\n", out["item"].get<std::string>(), out["index"].get<std::int64_t>());
              for (const auto& [name, value] : out["text"].items()) std::cout << "  " << name << ": " << value.get<std::string>() << "\n";
              for (const auto& [name, id] : out["ids"].items()) std::cout << fmt::format("  {:<16} {}\n", name, id_text(id));
            } else if (!args->prefix.empty()) {
              std::cout << fmt::format("{} items with {} prefix {}\n", out["count"].get<std::int64_t>(),
                                       out["tokenizer"].get<std::string>(), id_text(out["prefix"]));
              for (const auto& e : out["items"])
                std::cout << fmt::format("  {:<14} {:<14} {}\n", e["item"].get<std::string>(), id_text(e["id"]), one_line(e["text"]));
            } else {
              std::cout << fmt::format("user {} ({} recommender)\nhistory, oldest first:\n", out["user"].get<std::string>(),
                                       out["tokenizer"].get<std::string>());
              for (const auto& e : out["history"])
                std::cout << fmt::format("  {:<14} {}\n", e["item"].get<std::string>(), one_line(e["text"]));
              if (!out["held_out"].is_null()) {
                const auto& h = out["held_out"];
                const auto rank = h["rank"].get<std::int64_t>();
                std::cout << fmt::format("held-out next item: {} ({})  {}\n", h["item"].get<std::string>(),
                                         rank > 0 ? fmt::format("rank {}", rank) : std::string("not in the top-K"),
                                         one_line(h["text"]));
              }
              std::cout << "top-K (score: summed log-probability of the ID):\n";
              for (const auto& e : out["recommendations"])
                std::cout << fmt::format("  {:>2}. {:<14} {:<14} {:>8.3f}  {}\n", e["rank"].get<std::int64_t>(),
                                         e["item"].get<std::string>(), id_text(e["id"]), e["score"].get<double>(),
                                         one_line(e["text"]));
            }
          }};
}

const lamia::cli::RegisterCommand registered(400, &setup);

}  // namespace lamia::cli::inspect_command
