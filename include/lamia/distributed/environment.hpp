#pragma once
// The process group of a command that torchrun (or a shell loop) started: torchrun's variables
// RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT. The stage commands (`lamia train-palette`,
// `lamia train-rec`, `lamia run`) call join_environment_process_group() and train data-parallel
// when it returns a group (docs/distributed.md, "The stage commands under torchrun").
//
// The function is defined in the distributed component (src/distributed/environment.cpp) where
// LAMIA_WITH_C10D built it, and the pipeline component links that component; elsewhere the pipeline
// component defines it (src/pipeline/stages/distributed_stages.cpp) so that WORLD_SIZE > 1 is an
// error that says so.
#include <lamia/core/errors.hpp>
#include <lamia/nn/gradient_sync.hpp>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace lamia {

/// WORLD_SIZE from the environment: 1 when it is unset or empty; ValueError when it is not a
/// positive integer.
inline std::int64_t environment_world_size() {
  const char* v = std::getenv("WORLD_SIZE");
  if (!v || !*v) return 1;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  if (*end != '\0' || n < 1)
    throw ValueError(std::string("WORLD_SIZE must be a positive integer (torchrun sets it), got '") + v + "'");
  return std::int64_t(n);
}

/// nullptr when environment_world_size() is 1. Otherwise joins the Gloo process group of
/// torchrun's variables (ProcessGroupOptions::from_environment(), with this timeout for every
/// wait), blocking until every rank has joined, and returns it. Where this lamia was built without
/// the distributed component, a world size above 1 is a ValueError naming LAMIA_WITH_C10D.
std::shared_ptr<GradientSync> join_environment_process_group(double timeout_seconds);

}  // namespace lamia
