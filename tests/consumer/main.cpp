// Built against the installed library: proves headers, targets and link flags are exported.
#include <lamia/lamia.hpp>

#include <iostream>

int main() {
  lamia::Catalog catalog({"title"});
  catalog.add("a", {"hello"});
  if (catalog.size() != 1 || catalog.value(0, "title") != "hello") return 1;
  std::cout << "consumer ok\n";
  return 0;
}
