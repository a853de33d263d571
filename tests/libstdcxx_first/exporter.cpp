#include <filesystem>
// Uses std::filesystem, so that -static-libstdc++ pulls its code in (and, with default visibility, exports it).
int exporter_remove(const char* path) { return static_cast<int>(std::filesystem::remove_all(path)); }
