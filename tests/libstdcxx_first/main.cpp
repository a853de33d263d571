#include <cstdio>
#include <filesystem>
#include <string>

int exporter_remove(const char* path);

int main(int argc, char** argv) {
  const std::string dir = std::string(argc > 1 ? argv[1] : ".") + "/tree";
  std::filesystem::create_directories(dir + "/a/b");
  const auto removed = std::filesystem::remove_all(dir);
  std::printf("removed %d entries; the exporter removed %d\n", static_cast<int>(removed), exporter_remove(dir.c_str()));
  return removed == 3 ? 0 : 1;
}
