#include <lamia/core/allocator.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#if defined(__GLIBC__)
TEST_CASE("keep_freed_memory: a large block comes from the heap and stays there after free", "[allocator]") {
  ::unsetenv("LAMIA_KEEP_FREED_MEMORY");
  const auto setting = lamia::keep_freed_memory();
  REQUIRE(setting.applied);
  const auto before = ::mallinfo2();
  constexpr std::size_t kBytes = std::size_t{96} << 20;  // above glibc's largest mmap threshold (32 MiB)
  auto* block = static_cast<char*>(std::malloc(kBytes));
  REQUIRE(block != nullptr);
  std::memset(block, 1, kBytes);
  const auto held = ::mallinfo2();
  CHECK(held.hblkhd == before.hblkhd);  // no new mmap'd block
  CHECK(held.arena >= before.arena + kBytes);
  std::free(block);
  const auto after = ::mallinfo2();
  CHECK(after.arena == held.arena);  // not trimmed: the next step reuses it
  CHECK(after.fordblks >= kBytes);
}

TEST_CASE("keep_freed_memory: LAMIA_KEEP_FREED_MEMORY=0 leaves the allocator alone", "[allocator]") {
  ::setenv("LAMIA_KEEP_FREED_MEMORY", "0", 1);
  const auto setting = lamia::keep_freed_memory();
  ::unsetenv("LAMIA_KEEP_FREED_MEMORY");
  CHECK_FALSE(setting.applied);
  CHECK(std::string(setting.note).find("LAMIA_KEEP_FREED_MEMORY=0") != std::string::npos);
}
#endif
