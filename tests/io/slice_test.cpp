// Slices as .npz: round trips with and without a mask, slices written by numpy read back, and
// missing keys, wrong dtypes and wrong shapes rejected with the file and the key named.
#include "io/slice.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/npy.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tolerance.h"

namespace glia::io {
namespace {

namespace fs = std::filesystem;
using glia::testing::all_equal;
using glia::testing::throws_naming;
using SliceTest = glia::testing::TempDirTest;

const fs::path kData = GLIA_IO_TEST_DATA;

Slice small_slice(bool with_mask) {
  Slice s;
  s.height = 5;
  s.width = 3;
  for (int i = 0; i < 15; ++i) s.image.push_back(0.5f * static_cast<float>(i) - 3.0f);
  if (with_mask) {
    s.mask.emplace();
    for (int i = 0; i < 15; ++i) s.mask->push_back(static_cast<std::uint8_t>(i % 3 == 1));
  }
  s.label = with_mask ? 1 : 0;
  s.source = with_mask ? "brats" : "kaggle";
  s.patient = with_mask ? "BraTS20_Training_042" : "Y7";
  s.slice = with_mask ? 83 : 0;
  return s;
}

void expect_same(const Slice& got, const Slice& want) {
  EXPECT_EQ(got.height, want.height);
  EXPECT_EQ(got.width, want.width);
  EXPECT_TRUE(all_equal(got.image, want.image));
  ASSERT_EQ(got.mask.has_value(), want.mask.has_value());
  if (want.mask) {
    EXPECT_TRUE(all_equal(*got.mask, *want.mask));
  }
  EXPECT_EQ(got.label, want.label);
  EXPECT_EQ(got.source, want.source);
  EXPECT_EQ(got.patient, want.patient);
  EXPECT_EQ(got.slice, want.slice);
}

TEST_F(SliceTest, RoundTripsWithAndWithoutMask) {
  for (bool with_mask : {true, false}) {
    const Slice s = small_slice(with_mask);
    write_slice(dir_ / "s.npz", s);
    expect_same(read_slice(dir_ / "s.npz"), s);
    // The archive holds exactly the documented keys and dtypes.
    const NpzArchive a = read_npz(dir_ / "s.npz");
    EXPECT_EQ(a.size(), with_mask ? 6u : 5u);
    EXPECT_EQ(a.at("image").descr, "<f4");
    EXPECT_EQ(a.at("image").shape, (std::vector<std::int64_t>{1, 5, 3}));
    EXPECT_EQ(a.at("label").descr, "<i8");
    EXPECT_TRUE(a.at("slice").shape.empty());
    if (with_mask) {
      EXPECT_EQ(a.at("mask").descr, "|u1");
    }
  }
}

TEST_F(SliceTest, ReadsSlicesWrittenByNumpy) {
  Slice want;
  want.height = 4;
  want.width = 5;
  for (int i = 0; i < 20; ++i) want.image.push_back(static_cast<float>(i) * 0.25f - 2.0f);
  want.mask.emplace();
  for (int i = 0; i < 20; ++i) want.mask->push_back(static_cast<std::uint8_t>(i % 2));
  want.label = 1;
  want.source = "brats";
  want.patient = "BraTS20_Training_001";
  want.slice = 77;
  expect_same(read_slice(kData / "slice_compressed.npz"), want);
  expect_same(read_slice(kData / "slice_stored.npz"), want);
  want.mask.reset();
  want.label = 0;
  want.source = "kaggle";
  want.patient = "Y12";
  want.slice = 0;
  expect_same(read_slice(kData / "slice_kaggle.npz"), want);
}

TEST_F(SliceTest, BadArchivesNameTheFileAndTheKey) {
  const Slice s = small_slice(true);
  NpzArchive good;
  good.emplace("image", NpyArray::from_f32(s.image, {1, 5, 3}));
  good.emplace("mask", NpyArray::from_u8(*s.mask, {5, 3}));
  good.emplace("label", NpyArray::scalar_i64(1));
  good.emplace("source", NpyArray::scalar_string("brats"));
  good.emplace("patient", NpyArray::scalar_string("P"));
  good.emplace("slice", NpyArray::scalar_i64(3));
  write_npz(dir_ / "good.npz", good);
  ASSERT_NO_THROW(read_slice(dir_ / "good.npz"));

  const auto check = [&](const std::string& file, const std::string& key, auto change) {
    NpzArchive a = good;
    change(a);
    write_npz(dir_ / file, a);
    EXPECT_TRUE(throws_naming([&] { read_slice(dir_ / file); }, file)) << key;
    EXPECT_TRUE(throws_naming([&] { read_slice(dir_ / file); }, "'" + key + "'")) << file;
  };
  for (const char* key : {"image", "label", "source", "patient", "slice"}) {
    check(std::string("no_") + key + ".npz", key, [&](NpzArchive& a) { a.erase(key); });
  }
  check("image_f8.npz", "image", [](NpzArchive& a) {
    NpyArray& img = a.at("image");
    img.descr = "<f8";
    img.shape = {1, 5, 3};
    img.data.resize(img.data.size() * 2);
  });
  check("image_2d.npz", "image", [](NpzArchive& a) { a.at("image").shape = {5, 3}; });
  check("mask_i1.npz", "mask", [](NpzArchive& a) { a.at("mask").descr = "|i1"; });
  check("mask_shape.npz", "mask", [](NpzArchive& a) { a.at("mask").shape = {3, 5}; });
  check("mask_value.npz", "mask", [](NpzArchive& a) { a.at("mask").data[0] = std::byte{2}; });
  check("label_f4.npz", "label",
        [](NpzArchive& a) { a.at("label") = NpyArray::from_f32(std::vector<float>{1}, {}); });
  check("label_1d.npz", "label", [](NpzArchive& a) { a.at("label").shape = {1}; });
  check("source_int.npz", "source",
        [](NpzArchive& a) { a.at("source") = NpyArray::scalar_i64(0); });
  EXPECT_TRUE(throws_naming([&] { read_slice(dir_ / "missing.npz"); }, "missing.npz"));
}

TEST_F(SliceTest, WriteRejectsInconsistentSlices) {
  Slice s = small_slice(true);
  s.image.pop_back();
  EXPECT_TRUE(
      throws_naming<std::invalid_argument>([&] { write_slice(dir_ / "a.npz", s); }, "a.npz"));
  s = small_slice(true);
  (*s.mask)[0] = 255;
  EXPECT_TRUE(
      throws_naming<std::invalid_argument>([&] { write_slice(dir_ / "b.npz", s); }, "b.npz"));
  EXPECT_TRUE(fs::is_empty(dir_));
}

}  // namespace
}  // namespace glia::io
