#include <lamia/core/errors.hpp>
#include <lamia/palette/palette_file.hpp>
#include "palette_fixture.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>
#include <fcntl.h>     // open, posix_fadvise
#include <sys/mman.h>  // mincore
#include <sys/resource.h>  // setrlimit: the map made to fail in a child process
#include <sys/stat.h>      // mkfifo
#include <sys/wait.h>
#include <unistd.h>  // getpid, fork

using namespace lamia;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

fs::path palette_file_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("lamia_palette_file_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string read_all_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

}  // namespace

TEST_CASE("palettes round-trip with their item ids, streamed in batches", "[palette][file]") {
  auto dir = palette_file_dir("roundtrip");
  torch::manual_seed(0);
  auto palettes = torch::randn({7, 3, 5});
  std::vector<std::string> ids = {"a", "bb", "", "item-4", "é", "x", "last"};
  const std::int64_t batch = GENERATE(1, 3, 100);
  std::vector<std::pair<std::int64_t, std::int64_t>> calls;
  write_palette_file(dir / "p.bin", ids, 3, 5,
                     [&](std::int64_t b, std::int64_t e) {
                       calls.emplace_back(b, e);
                       return palettes.slice(0, b, e).to(torch::kFloat64);
                     },
                     batch);
  CHECK(calls.front().first == 0);
  CHECK(calls.back().second == 7);
  CHECK(static_cast<std::int64_t>(calls.size()) == (7 + batch - 1) / batch);
  auto f = load_palettes(dir / "p.bin");
  CHECK(f.item_ids == ids);
  CHECK(f.palettes.scalar_type() == torch::kFloat32);
  CHECK(f.palettes.equal(palettes));
  save_palettes(dir / "q.bin", {}, torch::zeros({0, 2, 2}));
  auto empty = load_palettes(dir / "q.bin");
  CHECK(empty.palettes.sizes() == torch::IntArrayRef({0, 2, 2}));
  fs::remove_all(dir);
}

TEST_CASE("a failed export leaves the previous file untouched", "[palette][file]") {
  auto dir = palette_file_dir("atomic");
  save_palettes(dir / "p.bin", {"a"}, torch::ones({1, 1, 2}));
  const auto before = testing::slurp(dir / "p.bin");
  CHECK_THROWS_AS(write_palette_file(dir / "p.bin", {"a", "b"}, 1, 2,
                                     [](std::int64_t, std::int64_t) { return torch::ones({1, 1, 3}); }),
                  ValueError);
  CHECK_THROWS_WITH(write_palette_file(dir / "p.bin", {"a"}, 1, 2,
                                       [](std::int64_t, std::int64_t) { return torch::full({1, 1, 2}, NAN); }),
                    Catch::Contains("non-finite"));
  CHECK(testing::slurp(dir / "p.bin") == before);
  CHECK_THROWS_AS(save_palettes(dir / "p.bin", {"a", "b"}, torch::ones({1, 1, 2})), c10::ValueError);
  fs::remove_all(dir);
}

TEST_CASE("corrupted palette files are rejected with the field at fault", "[palette][file]") {
  auto dir = palette_file_dir("corrupt");
  save_palettes(dir / "good.bin", {"a", "b"}, torch::randn({2, 2, 3}));
  const auto good = testing::slurp(dir / "good.bin");
  auto expect = [&](std::string bytes, const std::string& field) {
    spit(dir / "bad.bin", bytes);
    try {
      load_palettes(dir / "bad.bin");
      FAIL("no error for a file corrupted in " << field);
    } catch (const ParseError& e) {
      CHECK(e.where().field == field);
      CHECK(std::string(e.what()).find("bad.bin") != std::string::npos);
    }
  };
  auto bad = good;
  bad[0] = 'X';
  expect(bad, "magic");
  bad = good;
  bad[8] = 9;  // version
  expect(bad, "version");
  bad = good;
  bad[12] = 1;  // dtype
  expect(bad, "dtype");
  bad = good;
  bad[16 + 8] = 0;  // L = 0
  expect(bad, "shape");
  bad = good;
  bad[16] = 100;  // n far beyond the file
  expect(bad, "shape");
  expect(good.substr(0, good.size() - 5), "palettes");
  expect(good + "x", "palettes");
  expect(good.substr(0, 20), "n");
  bad = good;
  bad[good.size() - 10] ^= 0x40;  // a float bit
  expect(bad, "crc32");
  CHECK_THROWS_AS(load_palettes(dir / "missing.bin"), IOError);
  fs::remove_all(dir);
}

TEST_CASE("PaletteFileReader reads ranges and checks the checksum by streaming", "[palette][file]") {
  auto dir = palette_file_dir("reader");
  auto x = torch::randn({37, 3, 5});
  std::vector<std::string> ids;
  for (int i = 0; i < 37; ++i) ids.push_back("item" + std::to_string(i));
  save_palettes(dir / "p.bin", ids, x);
  PaletteFileReader r(dir / "p.bin");
  CHECK(r.num_items() == 37);
  CHECK(r.palette_size() == 3);
  CHECK(r.dim() == 5);
  CHECK(r.item_ids() == ids);
  CHECK(torch::equal(r.read(0, 37), x));
  CHECK(torch::equal(r.read(10, 17), x.narrow(0, 10, 7)));
  CHECK(r.read(5, 5).size(0) == 0);
  CHECK_THROWS_AS(r.read(30, 38), IndexError);
  CHECK_THROWS_AS(r.read(-1, 3), IndexError);
  // A flipped bit in the palettes: found on open, or by verify_checksum() when open skips it.
  auto bytes = testing::slurp(dir / "p.bin");
  bytes[bytes.size() - 10] ^= 0x40;
  spit(dir / "bad.bin", bytes);
  try {
    PaletteFileReader bad(dir / "bad.bin");
    FAIL("no error for a corrupted palette");
  } catch (const ParseError& e) {
    CHECK(e.where().field == "crc32");
  }
  PaletteFileReader unchecked(dir / "bad.bin", /*verify_checksum=*/false);
  CHECK_THROWS_AS(unchecked.verify_checksum(), ParseError);
  CHECK_THROWS_AS(PaletteFileReader(dir / "missing.bin"), IOError);
  fs::remove_all(dir);
}

namespace {
// How many of the pages of bytes [first, last) of path are in the page cache (mincore of a map).
std::int64_t cached_pages(const fs::path& path, std::uint64_t first, std::uint64_t last) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  const auto size = static_cast<std::uint64_t>(fs::file_size(path));
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  REQUIRE(map != MAP_FAILED);
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in((size + page - 1) / page);
  REQUIRE(::mincore(map, size, in.data()) == 0);
  ::munmap(map, size);
  ::close(fd);
  std::int64_t n = 0;
  for (auto p = first / page; p < (last + page - 1) / page; ++p) n += in[p] & 1;
  return n;
}

// Drops path's pages from the page cache (written back first); false where they stay (tmpfs).
bool evict(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  return cached_pages(path, 0, fs::file_size(path)) == 0;
}
}  // namespace

TEST_CASE("PaletteFileReader::prefetch brings the items' pages into the page cache, clipped, without errors",
          "[palette][file][read_ahead]") {
  auto dir = palette_file_dir("prefetch");
  // 512 items of 4 x 256 floats (4 KiB each): ids of 8 bytes, so that the floats start at 40 + 512 * 12.
  auto x = torch::randn({512, 4, 256});
  std::vector<std::string> ids;
  for (int i = 0; i < 512; ++i) ids.push_back(fmt::format("item{:04d}", i));
  const auto path = dir / "p.bin";
  save_palettes(path, ids, x);
  const std::uint64_t data = 40 + 512 * 12, row = 4 * 256 * 4;
  const auto access = GENERATE(PaletteFileAccess::kPread, PaletteFileAccess::kMapped);
  PaletteFileReader r(path, /*verify_checksum=*/false, access);
  // Bad ranges are clipped or ignored: advisory, never an error.
  r.prefetch(-5, -1);
  r.prefetch(300, 200);
  r.prefetch(600, 700);
  if (!evict(path)) {
    WARN("the page cache keeps this file (tmpfs?): residency not checked");
  } else {
    // Items 400 to 511 (the end is clipped): every page of them arrives; none before item 300.
    r.prefetch(400, 100000);
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    const auto pages = static_cast<std::int64_t>((data + 512 * row + page - 1) / page - (data + 400 * row) / page);
    std::int64_t got = 0;
    for (int i = 0; i < 200 && (got = cached_pages(path, data + 400 * row, data + 512 * row)) < pages; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(got == pages);
    CHECK(cached_pages(path, data, data + 300 * row) == 0);
  }
  CHECK(torch::equal(r.read(0, 512), x));
  fs::remove_all(dir);
}

// Palette files with a metadata text (version 2: the records of `lamia export-palettes --shard`), and
// files without one staying version 1, byte for byte.
TEST_CASE("palette file metadata: version 2 carries the text, version 1 is unchanged without it", "[palette][file]") {
  const auto dir = palette_file_dir("metadata");
  torch::manual_seed(0);
  const auto palettes = torch::randn({5, 2, 3});
  const std::vector<std::string> ids = {"a", "b", "c", "d", "e"};
  auto produce = [&](std::int64_t b, std::int64_t e) { return palettes.slice(0, b, e); };
  const std::string meta = R"({"shard": 1, "shards": 3})";
  write_palette_file(dir / "v2.bin", ids, 2, 3, produce, 2, meta);
  write_palette_file(dir / "v1.bin", ids, 2, 3, produce, 2);
  save_palettes(dir / "saved.bin", ids, palettes);

  const auto v1 = read_all_bytes(dir / "v1.bin"), v2 = read_all_bytes(dir / "v2.bin");
  CHECK(v1 == read_all_bytes(dir / "saved.bin"));
  std::uint32_t version = 0;
  std::memcpy(&version, v1.data() + 8, 4);
  CHECK(version == 1);
  std::memcpy(&version, v2.data() + 8, 4);
  CHECK(version == 2);
  CHECK(v2.size() == v1.size() + 8 + meta.size());  // u64 length + the text

  PaletteFileReader reader(dir / "v2.bin");
  CHECK(reader.metadata() == meta);
  CHECK(reader.item_ids() == ids);
  CHECK(torch::equal(reader.read(0, 5), palettes));
  CHECK(PaletteFileReader(dir / "v1.bin").metadata().empty());
  const auto loaded = load_palettes(dir / "v2.bin");
  CHECK(torch::equal(loaded.palettes, palettes));
  CHECK(loaded.item_ids == ids);

  // A length past the end of the file, and a flipped byte of the text (the crc covers it).
  auto bad = v2;
  const std::uint64_t huge = 1u << 30;
  std::memcpy(bad.data() + 8 + 4 + 4 + 24, &huge, 8);
  std::ofstream(dir / "bad.bin", std::ios::binary) << bad;
  CHECK_THROWS_WITH(PaletteFileReader(dir / "bad.bin"), Contains("metadata"));
  bad = v2;
  bad[8 + 4 + 4 + 24 + 8 + 2] ^= 0x20;
  std::ofstream(dir / "bad2.bin", std::ios::binary) << bad;
  CHECK_THROWS_WITH(PaletteFileReader(dir / "bad2.bin"), Contains("checksum mismatch"));
  fs::remove_all(dir);
}

// The palettes are read through a read-only map of the file when asked (kMapped), and with pread
// by default or when mmap fails: both give the same bytes, and the checks on open are the same.
TEST_CASE("PaletteFileReader reads the same palettes mapped and with pread", "[palette][file]") {
  const auto dir = palette_file_dir("mapped");
  torch::manual_seed(3);
  const auto x = torch::randn({37, 3, 5});
  // Ids of 4 bytes: the floats start at 40 + 37 * 8 bytes, a multiple of 4 (a view is possible);
  // ids of 1 byte: at 40 + 37 * 5 = 225 bytes, misaligned (no view, reads copy).
  std::vector<std::string> aligned_ids, odd_ids;
  for (int i = 0; i < 37; ++i) {
    aligned_ids.push_back(fmt::format("i{:03d}", i));
    odd_ids.push_back(std::string(1, static_cast<char>('A' + i % 26)));
  }
  save_palettes(dir / "aligned.bin", aligned_ids, x);
  save_palettes(dir / "odd.bin", odd_ids, x);
  for (const auto* name : {"aligned.bin", "odd.bin"}) {
    INFO(name);
    PaletteFileReader mapped(dir / name, true, PaletteFileAccess::kMapped);
    PaletteFileReader pread(dir / name, true, PaletteFileAccess::kPread);
    CHECK(mapped.mapped());
    CHECK_FALSE(pread.mapped());
    CHECK(pread.view(0, 37) == nullptr);
    for (auto [b, e] : {std::pair<std::int64_t, std::int64_t>{0, 37}, {10, 17}, {36, 37}, {5, 5}}) {
      CHECK(torch::equal(mapped.read(b, e), x.narrow(0, b, e - b)));
      CHECK(torch::equal(pread.read(b, e), x.narrow(0, b, e - b)));
    }
    CHECK_THROWS_AS(mapped.read(30, 38), IndexError);
    CHECK_THROWS_AS(mapped.view(-1, 3), IndexError);
    CHECK(mapped.item_ids() == pread.item_ids());
    mapped.verify_checksum();
    pread.verify_checksum();
    CHECK(torch::equal(load_palettes(dir / name).palettes, x));
  }
  PaletteFileReader aligned(dir / "aligned.bin", true, PaletteFileAccess::kMapped);
  const float* v = aligned.view(10, 17);
  REQUIRE(v != nullptr);
  const auto expected = x.narrow(0, 10, 7).contiguous();
  CHECK(std::memcmp(v, expected.data_ptr<float>(), 7 * 15 * sizeof(float)) == 0);
  aligned.release(0, 37);  // the pages leave the resident set; the view reads them back
  CHECK(std::memcmp(v, expected.data_ptr<float>(), 7 * 15 * sizeof(float)) == 0);
  CHECK(PaletteFileReader(dir / "odd.bin", true, PaletteFileAccess::kMapped).view(10, 17) == nullptr);
  CHECK_FALSE(PaletteFileReader(dir / "aligned.bin").mapped());  // pread unless asked (faster on this VM)
  // The same corruptions are found on both paths.
  auto bytes = testing::slurp(dir / "aligned.bin");
  bytes[bytes.size() - 10] ^= 0x40;
  spit(dir / "bad.bin", bytes);
  for (auto access : {PaletteFileAccess::kMapped, PaletteFileAccess::kPread}) {
    CHECK_THROWS_WITH(PaletteFileReader(dir / "bad.bin", true, access), Contains("checksum mismatch"));
    PaletteFileReader unchecked(dir / "bad.bin", false, access);
    CHECK(unchecked.mapped() == (access == PaletteFileAccess::kMapped));
    CHECK_THROWS_AS(unchecked.verify_checksum(), ParseError);
    spit(dir / "short.bin", bytes.substr(0, bytes.size() - 5));
    try {
      PaletteFileReader r(dir / "short.bin", false, access);
      FAIL("no error for a truncated file");
    } catch (const ParseError& e) {
      CHECK(e.where().field == "palettes");
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("a palette file truncated after it was mapped is an IOError, not SIGBUS", "[palette][file]") {
  const auto dir = palette_file_dir("shrunk");
  torch::manual_seed(4);
  const auto x = torch::randn({2000, 2, 512});  // 8 MB: pages well past the new end
  std::vector<std::string> ids;
  for (int i = 0; i < 2000; ++i) ids.push_back(fmt::format("{:04d}", i));
  save_palettes(dir / "p.bin", ids, x);
  const auto size = fs::file_size(dir / "p.bin");
  for (auto access : {PaletteFileAccess::kMapped, PaletteFileAccess::kPread}) {
    save_palettes(dir / "p.bin", ids, x);
    PaletteFileReader r(dir / "p.bin", true, access);
    CHECK(torch::equal(r.read(1990, 2000), x.narrow(0, 1990, 10)));
    fs::resize_file(dir / "p.bin", size / 2);  // in place, under the open reader
    std::vector<float> out(10 * 2 * 512);
    CHECK_THROWS_AS(r.read_into(1990, 2000, out.data()), IOError);
    CHECK_THROWS_AS(r.verify_checksum(), IOError);
    CHECK_THROWS_AS(r.read(1990, 2000), IOError);
    if (access == PaletteFileAccess::kMapped) {
      CHECK_THROWS_WITH(r.view(1990, 2000), Contains("has shrunk to"));
      CHECK_THROWS_WITH(r.view(0, 1), Contains("has shrunk to"));
    }
  }
  // A file replaced by rename (how lamia writes) leaves an open reader on the old file intact.
  save_palettes(dir / "p.bin", ids, x);
  PaletteFileReader r(dir / "p.bin", true, PaletteFileAccess::kMapped);
  save_palettes(dir / "p.bin", {"a"}, torch::ones({1, 2, 512}));
  CHECK(torch::equal(r.read(1990, 2000), x.narrow(0, 1990, 10)));
  r.verify_checksum();
  fs::remove_all(dir);
}

TEST_CASE("a palette path that is a directory or a FIFO is refused on open, without blocking", "[palette][file]") {
  const auto dir = palette_file_dir("not_regular");
  fs::create_directories(dir / "folder.bin");
  for (auto access : {PaletteFileAccess::kMapped, PaletteFileAccess::kPread}) {
    CHECK_THROWS_WITH(PaletteFileReader(dir / "folder.bin", true, access), Contains("is a directory"));
  }
  CHECK_THROWS_AS(load_palettes(dir / "folder.bin"), IOError);
  REQUIRE(::mkfifo((dir / "fifo.bin").c_str(), 0600) == 0);
  for (auto access : {PaletteFileAccess::kMapped, PaletteFileAccess::kPread}) {
    CHECK_THROWS_WITH(PaletteFileReader(dir / "fifo.bin", true, access), Contains("is a FIFO"));
  }
  CHECK_THROWS_AS(load_palettes(dir / "fifo.bin"), IOError);
  fs::remove_all(dir);
}

// mmap fails when the address space is full: in a child process limited to its current address
// space plus 4 MB, a 16 MB file cannot be mapped and the reader falls back to pread.
TEST_CASE("PaletteFileReader falls back to pread when mmap fails", "[palette][file]") {
  const auto dir = palette_file_dir("fallback");
  torch::manual_seed(5);
  const auto x = torch::randn({512, 2, 4096});  // 16 MB
  std::vector<std::string> ids;
  for (int i = 0; i < 512; ++i) ids.push_back(fmt::format("{:04d}", i));
  save_palettes(dir / "p.bin", ids, x);
  std::vector<float> out(x.numel());  // allocated before the limit
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // the child: no Catch2, no torch; the exit code says what happened
    int code = 0;
    try {
      long pages = 0;
      if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
        std::fclose(f);
      }
      if (pages <= 0) ::_exit(4);
      const rlim_t limit = static_cast<rlim_t>(pages) * ::sysconf(_SC_PAGESIZE) + (4u << 20);
      struct rlimit rl {limit, limit};
      if (::setrlimit(RLIMIT_AS, &rl) != 0) ::_exit(5);
      PaletteFileReader r(dir / "p.bin", /*verify_checksum=*/false, PaletteFileAccess::kMapped);  // (a 64 MB buffer would not fit)
      if (r.mapped()) ::_exit(3);
      r.read_into(0, 512, out.data());
      code = std::memcmp(out.data(), x.data_ptr<float>(), out.size() * sizeof(float)) == 0 ? 0 : 1;
    } catch (...) {
      code = 2;
    }
    ::_exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // 3: still mapped, 2: an exception, 1: other bytes
  // Without the limit the same file is mapped.
  CHECK(PaletteFileReader(dir / "p.bin", true, PaletteFileAccess::kMapped).mapped());
  fs::remove_all(dir);
}
