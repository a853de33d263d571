#include <dlfcn.h>

#include <cstdio>
#include <string>

// A stand-in for Python importing torch and then pylamia: loads the exporting library into the
// global scope (as the crash on the GPU machine suggests torch's libraries are), then the module
// given on the command line with RTLD_LOCAL, and calls it.
int main(int argc, char** argv) {
  if (argc < 4) return 2;
  if (!dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL)) return std::puts(dlerror()), 2;
  void* module = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
  if (!module) return std::puts(dlerror()), 2;
  auto run = reinterpret_cast<int (*)(const char*)>(dlsym(module, "module_run"));
  const int removed = run(argv[3]);
  std::printf("the module removed %d entries\n", removed);
  return removed == 2 ? 0 : 1;
}
