// Version and build facts.
#include "registry.hpp"

#include <torch/version.h>

LAMIA_REGISTER_BINDINGS(kOrderCore, core) {
  m.attr("__version__") = "0.1.0";
  m.attr("torch_version") = TORCH_VERSION;
}
