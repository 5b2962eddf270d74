// Image files: PNG round trip exact, JPEG close, luminance of colour files, and every bad file
// named.
#include "io/image.h"

#include <gtest/gtest.h>
#include <stb_image_write.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "tests/common/random_bytes.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tolerance.h"

namespace glia::io {
namespace {

using glia::testing::all_close;
using glia::testing::all_equal;
using glia::testing::random_bytes;
using glia::testing::TempDirTest;
using glia::testing::throws_naming;
using ImageTest = TempDirTest;

std::vector<float> to_float(const std::vector<std::uint8_t>& v) {
  return std::vector<float>(v.begin(), v.end());
}

TEST_F(ImageTest, GrayPngRoundTripIsExact) {
  const int h = 13, w = 29;  // odd sizes: rows are not padded in the file
  const auto pixels = random_bytes(h * w, 1);
  write_png_gray(dir_ / "g.png", pixels, h, w);
  const GrayImage img = read_gray(dir_ / "g.png");
  EXPECT_EQ(img.height, h);
  EXPECT_EQ(img.width, w);
  EXPECT_TRUE(all_equal(img.pixels, to_float(pixels)));
}

TEST_F(ImageTest, EncodedPngDecodesToItsPixels) {
  const int h = 7, w = 11;
  const auto pixels = random_bytes(h * w, 2);
  io::write_file_atomic(dir_ / "e.png", encode_png(pixels, h, w, 1));
  EXPECT_TRUE(all_equal(read_gray(dir_ / "e.png").pixels, to_float(pixels)));
  EXPECT_THROW(encode_png(pixels, h, w, 2), std::invalid_argument);
  EXPECT_THROW(encode_png(pixels, h, w + 1, 1), std::invalid_argument);
}

TEST_F(ImageTest, RgbPngReadsAsBt601Luminance) {
  const int h = 7, w = 11;
  const auto rgb = random_bytes(h * w * 3, 2);
  write_png_rgb(dir_ / "c.png", rgb, h, w);
  const GrayImage img = read_gray(dir_ / "c.png");
  std::vector<double> ref(h * w);
  for (int i = 0; i < h * w; ++i) {
    ref[i] = 0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2];
  }
  ASSERT_EQ(img.height, h);
  ASSERT_EQ(img.width, w);
  EXPECT_TRUE(all_close(img.pixels, ref));
}

void append(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
}

TEST_F(ImageTest, AnyChannelCountReadsAsLuminance) {
  // BMP (3 channels), grey+alpha PNG and RGBA PNG written with stb_image_write directly.
  const int h = 5, w = 6;
  const auto px = random_bytes(h * w * 4, 9);
  std::string bmp, ga, rgba;
  ASSERT_NE(stbi_write_bmp_to_func(append, &bmp, w, h, 3, px.data()), 0);
  ASSERT_NE(stbi_write_png_to_func(append, &ga, w, h, 2, px.data(), w * 2), 0);
  ASSERT_NE(stbi_write_png_to_func(append, &rgba, w, h, 4, px.data(), w * 4), 0);
  write_file_atomic(dir_ / "c.bmp", bmp);
  write_file_atomic(dir_ / "ga.png", ga);
  write_file_atomic(dir_ / "rgba.png", rgba);
  std::vector<double> ref_bmp(h * w), ref_ga(h * w), ref_rgba(h * w);
  for (int i = 0; i < h * w; ++i) {
    ref_bmp[i] = 0.299 * px[3 * i] + 0.587 * px[3 * i + 1] + 0.114 * px[3 * i + 2];
    ref_ga[i] = px[2 * i];  // alpha ignored
    ref_rgba[i] = 0.299 * px[4 * i] + 0.587 * px[4 * i + 1] + 0.114 * px[4 * i + 2];
  }
  EXPECT_TRUE(all_close(read_gray(dir_ / "c.bmp").pixels, ref_bmp));
  EXPECT_TRUE(all_close(read_gray(dir_ / "ga.png").pixels, ref_ga));
  EXPECT_TRUE(all_close(read_gray(dir_ / "rgba.png").pixels, ref_rgba));
}

TEST_F(ImageTest, JpegRoundTripIsClose) {
  const int h = 32, w = 40;
  std::vector<std::uint8_t> pixels(h * w);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) pixels[y * w + x] = static_cast<std::uint8_t>(40 + 3 * x + 2 * y);
  }
  write_jpeg_gray(dir_ / "g.jpg", pixels, h, w, 95);
  const GrayImage img = read_gray(dir_ / "g.jpg");
  ASSERT_EQ(img.height, h);
  ASSERT_EQ(img.width, w);
  // A smooth ramp at quality 95 loses at most a few grey levels to quantisation.
  EXPECT_TRUE(all_close(img.pixels, to_float(pixels), {4.0, 0.0}));
}

TEST_F(ImageTest, BadFilesThrowNamingThePath) {
  const auto pixels = random_bytes(24 * 24, 4);
  write_png_gray(dir_ / "ok.png", pixels, 24, 24);
  write_jpeg_gray(dir_ / "ok.jpg", pixels, 24, 24);
  const std::string png = read_file(dir_ / "ok.png");
  const std::string jpg = read_file(dir_ / "ok.jpg");
  ASSERT_NO_THROW(read_gray(dir_ / "ok.jpg"));
  write_file_atomic(dir_ / "empty.png", "");
  write_file_atomic(dir_ / "cut.png", png.substr(0, png.size() / 2));
  write_file_atomic(dir_ / "cut.jpg", jpg.substr(0, jpg.size() / 2));
  write_file_atomic(dir_ / "cut_end.jpg", jpg.substr(0, jpg.size() - 2));
  write_file_atomic(dir_ / "garbage.jpg", std::string(300, 'x'));
  std::string flipped = png;
  flipped[png.size() / 2] ^= 0x10;  // inside the image data: the chunk CRC no longer matches
  write_file_atomic(dir_ / "flipped.png", flipped);
  for (const char* name : {"missing.png", "empty.png", "cut.png", "flipped.png", "cut.jpg",
                           "cut_end.jpg", "garbage.jpg"}) {
    EXPECT_TRUE(throws_naming([&] { read_gray(dir_ / name); }, name));
  }
  // Every proper prefix of either file is rejected.
  for (const auto& [name, bytes] : {std::pair{"prefix.png", png}, std::pair{"prefix.jpg", jpg}}) {
    for (std::size_t n = 1; n < bytes.size(); n += 3) {
      glia::testing::write_bytes(dir_ / name, bytes.substr(0, n));
      EXPECT_TRUE(throws_naming([&] { read_gray(dir_ / name); }, name)) << n;
    }
  }
  EXPECT_THROW(write_png_gray(dir_ / "x.png", pixels, 24, 25), std::invalid_argument);
  EXPECT_THROW(write_jpeg_gray(dir_ / "x.jpg", pixels, 24, 24, 0), std::invalid_argument);
}

}  // namespace
}  // namespace glia::io
