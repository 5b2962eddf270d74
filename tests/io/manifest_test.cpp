// The manifest CSV: round trip of awkward names (spaces, commas, quotes, newlines) through RFC 4180
// quoting and of kept fractions (exact, or unknown), the exact header, reading files written by
// hand (CRLF, no final newline) and by older versions (no kept_fraction column), and errors that
// name the file, line and column.
#include "io/manifest.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "io/atomic_file.h"

namespace glia::io {
namespace {

namespace fs = std::filesystem;

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("glia_manifest_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // The message of the error read_manifest throws for `text`.
  std::string error_for(const std::string& text) {
    write_file_atomic(dir_ / "m.csv", text);
    try {
      read_manifest(dir_ / "m.csv");
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error for: " << text;
    return {};
  }
  fs::path dir_;
};

// The header before kept_fraction existed, and the current one.
constexpr const char* kHeader = "path,split,source,patient,slice,label,has_mask,tumor_pixels\n";
constexpr const char* kHeaderNow =
    "path,split,source,patient,slice,label,has_mask,tumor_pixels,kept_fraction\n";

TEST_F(ManifestTest, RoundTripsAwkwardNames) {
  // 0.1 + 0.2 is not a short decimal and must still read back exactly; nullopt is unknown.
  std::vector<ManifestEntry> in = {
      {"train/brats/BraTS20_Training_001_40.npz", "train", "brats", "BraTS20_Training_001", 40, 1,
       true, 1234, 0.1 + 0.2},
      {"val/kaggle/Y 12_0.npz", "val", "kaggle", "Y 12", 0, 1, false, 0, 1.0},
      {"test/kaggle/a_b_0.npz", "test", "kaggle", "a,b \"quoted\"", 0, 0, false, 0, 0.0},
      {"test/kaggle/x_0.npz", "test", "kaggle", "two\nlines", 7, 0, true, 9000000000LL, 0.5},
      {"train/kaggle/e_0.npz", "train", "kaggle", "", 0, 0, false, 0, std::nullopt},
  };
  write_manifest(dir_ / "m.csv", in);
  std::string text = read_file(dir_ / "m.csv");
  EXPECT_TRUE(text.starts_with(kHeaderNow));
  EXPECT_NE(text.find(",\"a,b \"\"quoted\"\"\","), std::string::npos) << text;
  auto out = read_manifest(dir_ / "m.csv");
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].path, in[i].path);
    EXPECT_EQ(out[i].split, in[i].split);
    EXPECT_EQ(out[i].source, in[i].source);
    EXPECT_EQ(out[i].patient, in[i].patient);
    EXPECT_EQ(out[i].slice, in[i].slice);
    EXPECT_EQ(out[i].label, in[i].label);
    EXPECT_EQ(out[i].has_mask, in[i].has_mask);
    EXPECT_EQ(out[i].tumor_pixels, in[i].tumor_pixels);
    EXPECT_EQ(out[i].kept_fraction, in[i].kept_fraction) << i;
  }
}

TEST_F(ManifestTest, ManifestsWithoutKeptFractionStillRead) {
  write_file_atomic(dir_ / "m.csv", std::string(kHeader) +
                                        "a.npz,train,brats,P1,3,1,1,12\n"
                                        "b.npz,val,kaggle,P2,0,0,0,0\n");
  auto out = read_manifest(dir_ / "m.csv");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].tumor_pixels, 12);
  EXPECT_FALSE(out[0].kept_fraction.has_value());
  EXPECT_FALSE(out[1].kept_fraction.has_value());
  // Rewritten, an unknown fraction stays unknown (an empty field).
  write_manifest(dir_ / "n.csv", out);
  EXPECT_EQ(read_file(dir_ / "n.csv"), std::string(kHeaderNow) +
                                           "a.npz,train,brats,P1,3,1,1,12,\n"
                                           "b.npz,val,kaggle,P2,0,0,0,0,\n");
  EXPECT_FALSE(read_manifest(dir_ / "n.csv")[1].kept_fraction.has_value());
}

TEST_F(ManifestTest, ReadsCrlfQuotedNumbersAndNoFinalNewline) {
  write_file_atomic(dir_ / "m.csv",
                    "path,split,source,patient,slice,label,has_mask,tumor_pixels\r\n"
                    "a.npz,train,brats,P1,\"3\",1,1,12\r\n"
                    "\r\n"
                    "b.npz,test,kaggle,\"P, 2\",0,0,0,0");
  auto out = read_manifest(dir_ / "m.csv");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].slice, 3);
  EXPECT_EQ(out[0].tumor_pixels, 12);
  EXPECT_EQ(out[1].patient, "P, 2");
  EXPECT_EQ(out[1].split, "test");
}

TEST_F(ManifestTest, EmptyListWritesOnlyTheHeader) {
  write_manifest(dir_ / "m.csv", {});
  EXPECT_EQ(read_file(dir_ / "m.csv"), kHeaderNow);
  EXPECT_TRUE(read_manifest(dir_ / "m.csv").empty());
}

TEST_F(ManifestTest, ErrorsNameFileLineAndColumn) {
  std::string file = (dir_ / "m.csv").string();
  // slice is the 5th field; "a.npz,train,brats,P," is 20 characters, so it starts at column 21.
  std::string e = error_for(std::string(kHeader) + "a.npz,train,brats,P,x3,1,1,0\n");
  EXPECT_NE(e.find(file + ":2:21"), std::string::npos) << e;
  EXPECT_NE(e.find("slice"), std::string::npos) << e;

  e = error_for(std::string(kHeader) + "a.npz,train,brats,P,3,1,1,0\nb.npz,dev,brats,P,3,1,1,0\n");
  EXPECT_NE(e.find(file + ":3:7"), std::string::npos) << e;
  EXPECT_NE(e.find("split"), std::string::npos) << e;

  e = error_for(std::string(kHeader) + "a.npz,train,mri,P,3,1,1,0\n");
  EXPECT_NE(e.find(file + ":2:13"), std::string::npos) << e;

  e = error_for(std::string(kHeader) + "a.npz,train,brats,P,3,1,yes,0\n");
  EXPECT_NE(e.find("has_mask"), std::string::npos) << e;

  e = error_for(std::string(kHeader) + "a.npz,train,brats,P,3,1\n");
  EXPECT_NE(e.find(file + ":2:"), std::string::npos) << e;
  EXPECT_NE(e.find("expected 8 fields, got 6"), std::string::npos) << e;

  e = error_for(std::string(kHeader) + "a.npz,train,brats,\"P,3,1,1,0\n");
  EXPECT_NE(e.find(file + ":2:19"), std::string::npos) << e;
  EXPECT_NE(e.find("unterminated"), std::string::npos) << e;

  e = error_for("path,split,source,patient,slice,label,mask,tumor_pixels\n");
  EXPECT_NE(e.find(file + ":1:39"), std::string::npos) << e;
  EXPECT_NE(e.find("has_mask"), std::string::npos) << e;

  // kept_fraction is the 9th field; "a.npz,train,brats,P,3,1,1,0," is 28 characters.
  for (const char* bad : {"1.5", "-0.1", "nan", "half"}) {
    e = error_for(std::string(kHeaderNow) + "a.npz,train,brats,P,3,1,1,0," + bad + "\n");
    EXPECT_NE(e.find(file + ":2:29"), std::string::npos) << e;
    EXPECT_NE(e.find("kept_fraction"), std::string::npos) << e;
  }
  e = error_for(std::string(kHeaderNow) + "a.npz,train,brats,P,3,1,1,0\n");
  EXPECT_NE(e.find("expected 9 fields, got 8"), std::string::npos) << e;
  e = error_for("path,split,source,patient,slice,label,has_mask,tumor_pixels,kept\n");
  EXPECT_NE(e.find(file + ":1:61"), std::string::npos) << e;
  EXPECT_NE(e.find("kept_fraction"), std::string::npos) << e;

  e = error_for("");
  EXPECT_NE(e.find(file), std::string::npos) << e;
}

TEST_F(ManifestTest, MissingFileNamesIt) {
  try {
    read_manifest(dir_ / "absent.csv");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.csv"), std::string::npos);
  }
}

}  // namespace
}  // namespace glia::io
