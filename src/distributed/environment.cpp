// join_environment_process_group where the distributed component is built (see
// include/lamia/distributed/environment.hpp for the fallback elsewhere).
#include <lamia/distributed/environment.hpp>
#include <lamia/distributed/process_group.hpp>

namespace lamia {

std::shared_ptr<GradientSync> join_environment_process_group(double timeout_seconds) {
  if (environment_world_size() == 1) return nullptr;
  auto options = ProcessGroupOptions::from_environment();
  options.timeout_seconds(timeout_seconds);
  return std::make_shared<GlooProcessGroup>(options);
}

}  // namespace lamia
