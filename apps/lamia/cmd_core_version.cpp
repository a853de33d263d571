// lamia version: prints the library version.
#include "command.hpp"

#include <lamia/core/version.hpp>

#include <iostream>

// A named namespace per command: the commands are compiled as one unity source.
namespace lamia::cli::version_command {
lamia::cli::Command setup(CLI::App& parent) {
  auto* app = parent.add_subcommand("version", "Print the lamia version");
  return {app, [] { std::cout << "lamia " << lamia::kLamiaVersion << "\n"; }};
}
const lamia::cli::RegisterCommand registered(100, &setup);
}  // namespace lamia::cli::version_command
