// lamia: the command-line tool. `lamia --help` lists the subcommands.
#include "command.hpp"

#include <lamia/core/errors.hpp>

#include <algorithm>
#include <exception>
#include <iostream>
#include <map>

namespace lamia::cli {
std::vector<CommandEntry>& commands() {
  static std::vector<CommandEntry> all;
  return all;
}
}  // namespace lamia::cli

int main(int argc, char** argv) {
  CLI::App app{"lamia: semantic IDs from item palettes, and generative recommendation with them"};
  app.require_subcommand(1);
  auto& all = lamia::cli::commands();
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
  std::vector<lamia::cli::Command> runners;
  for (const auto& c : all) runners.push_back(c.setup(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& c : runners)
      if (c.app->parsed()) c.run();
  } catch (const std::exception& e) {
    std::cerr << "lamia: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
