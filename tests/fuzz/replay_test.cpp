// Replays a fuzz target's seed corpus (tests/fuzz/corpus/<target>/) and kept findings
// (tests/fuzz/regressions/<target>/) in the regular build, without libFuzzer or clang: every file
// must go through LLVMFuzzerTestOneInput, so a reader that crashes, throws std::bad_alloc or
// something that is not a std::exception on a once-found input fails here. Built once per
// target by glia_fuzz_target() in tests/fuzz/CMakeLists.txt, which passes the folders in
// GLIA_FUZZ_SEEDS and GLIA_FUZZ_REGRESSIONS and the target's name in GLIA_FUZZ_TARGET.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::vector<std::filesystem::path> replay_files() {
  std::vector<std::filesystem::path> files;
  for (const char* dir : {GLIA_FUZZ_SEEDS, GLIA_FUZZ_REGRESSIONS}) {
    if (!std::filesystem::is_directory(dir)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

#define GLIA_REPLAY_CAT2(a, b) a##b
#define GLIA_REPLAY_CAT(a, b) GLIA_REPLAY_CAT2(a, b)

TEST(GLIA_REPLAY_CAT(FuzzReplay_, GLIA_FUZZ_TARGET), SeedsAndRegressions) {
  const std::vector<std::filesystem::path> files = replay_files();
  // Every target has seeds; an empty list means the folders moved.
  ASSERT_FALSE(files.empty()) << "no inputs under " << GLIA_FUZZ_SEEDS;
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NO_THROW(
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  }
}

}  // namespace
