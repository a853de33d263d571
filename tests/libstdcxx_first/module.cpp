#include <filesystem>
#include <string>

// A stand-in for pylamia._C: a dlopen'ed module that uses std::filesystem.
extern "C" int module_run(const char* dir) {
  std::filesystem::create_directories(std::string(dir) + "/m/n");
  return static_cast<int>(std::filesystem::remove_all(std::string(dir) + "/m"));
}
