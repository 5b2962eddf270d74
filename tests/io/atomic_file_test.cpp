// Atomic writes: the target appears only complete, a failed write leaves neither a partial target
// nor a temporary file, and an existing target survives an interrupted rewrite.
#include "io/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace glia::io {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("glia_atomic_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  int entries() const {
    return static_cast<int>(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()));
  }
  fs::path dir_;
};

TEST_F(AtomicFileTest, WritesAndReadsBackBinaryContent) {
  std::string bytes("a\0b\nc", 5);
  write_file_atomic(dir_ / "x.bin", bytes);
  EXPECT_EQ(read_file(dir_ / "x.bin"), bytes);
  EXPECT_EQ(entries(), 1);  // no temporary file left behind
}

TEST_F(AtomicFileTest, UncommittedWriteLeavesTheOldTargetAndNoTemporary) {
  write_file_atomic(dir_ / "x.bin", "old");
  {
    AtomicFile file(dir_ / "x.bin");
    std::ofstream(file.temp_path()) << "half-written";
    EXPECT_EQ(file.temp_path().parent_path(), dir_);
    EXPECT_TRUE(file.temp_path().string().ends_with("x.bin"));
  }  // destroyed without commit, as after an exception
  EXPECT_EQ(read_file(dir_ / "x.bin"), "old");
  EXPECT_EQ(entries(), 1);
}

TEST_F(AtomicFileTest, CommitReplacesTheTarget) {
  write_file_atomic(dir_ / "x.bin", "old");
  AtomicFile file(dir_ / "x.bin");
  std::ofstream(file.temp_path()) << "new";
  file.commit();
  EXPECT_EQ(read_file(dir_ / "x.bin"), "new");
  EXPECT_EQ(entries(), 1);
}

TEST_F(AtomicFileTest, CommitWithoutATemporaryFileNamesTheTarget) {
  AtomicFile file(dir_ / "never.bin");
  try {
    file.commit();
    FAIL() << "commit of a file that was never written must throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("never.bin"), std::string::npos) << e.what();
  }
}

TEST_F(AtomicFileTest, ErrorsNameThePath) {
  try {
    write_file_atomic(dir_ / "no_such_dir" / "x.bin", "data");
    FAIL() << "writing into a missing folder must throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_dir"), std::string::npos) << e.what();
  }
  try {
    read_file(dir_ / "missing.bin");
    FAIL() << "reading a missing file must throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.bin"), std::string::npos) << e.what();
  }
}

// A writer killed before commit() leaves its temporary file; the next run removes those of
// processes that no longer exist, and only those (a live writer's file is still being written).
TEST_F(AtomicFileTest, RemovesOnlyTheTemporariesOfDeadWriters) {
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  ASSERT_GT(dead, 0);
  waitpid(dead, nullptr, 0);
  const fs::path stale = dir_ / (".tmp." + std::to_string(dead) + ".0.last.safetensors");
  const fs::path live = dir_ / (".tmp." + std::to_string(::getppid()) + ".0.last.safetensors");
  const fs::path mine = dir_ / (".tmp." + std::to_string(::getpid()) + ".0.best.safetensors");
  const fs::path other = dir_ / "last.safetensors";
  for (const fs::path& p : {stale, live, mine, other}) std::ofstream(p) << "x";
  remove_stale_temporaries(dir_);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(mine));
  EXPECT_TRUE(fs::exists(other));
}

}  // namespace
}  // namespace glia::io
