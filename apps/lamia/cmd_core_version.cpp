// lamia version: prints the library version.
#include "command.hpp"

#include <lamia/core/version.hpp>

#include <iostream>

namespace {
lamia::cli::Command setup(CLI::App& parent) {
  auto* app = parent.add_subcommand("version", "Print the lamia version");
  return {app, [] { std::cout << "lamia " << lamia::kLamiaVersion << "\n"; }};
}
const lamia::cli::RegisterCommand registered(100, &setup);
}  // namespace
