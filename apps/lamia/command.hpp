#pragma once
// Subcommands of the `lamia` tool register themselves: a setup function adds
// the subcommand and its options to the CLI11 app and returns it with the
// function that runs it. Errors are thrown; main() prints them to stderr and exits 1.
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace lamia::cli {

using Runner = std::function<void()>;

/// What a setup function returns: its subcommand and the function that runs it.
struct Command {
  CLI::App* app;
  Runner run;
};
using Setup = Command (*)(CLI::App& parent);

struct CommandEntry {
  int order;
  Setup setup;
};

std::vector<CommandEntry>& commands();

struct RegisterCommand {
  RegisterCommand(int order, Setup setup) { commands().push_back({order, setup}); }
};

}  // namespace lamia::cli
