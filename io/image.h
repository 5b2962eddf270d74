// Image files: decoding JPEG/PNG/BMP to one luminance channel (stb_image) and encoding PNG/JPEG
// (stb_image_write, written atomically). The 2-D processing of decoded images (resize,
// morphology, components, colour maps) is io/image_ops.h.
// Layout: every buffer is row-major, height x width (x 3 for interleaved RGB).
// Tested in tests/io/image_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace glia::io {

struct GrayImage {
  int height = 0;
  int width = 0;
  std::vector<float> pixels;  // row-major, 0..255
};

// The largest image read_gray decodes: its header's width and height are checked against these
// before any pixel is allocated, so a few bytes claiming 65535 x 65535 pixels cannot ask for
// gigabytes. Scans and their exports are far smaller (BraTS 240 x 240, Kaggle exports < 2000).
inline constexpr int kMaxImageSide = 16384;
inline constexpr std::int64_t kMaxImagePixels = std::int64_t{1} << 26;  // 8192 x 8192

// JPEG/PNG/BMP with any channel count -> one luminance channel as float 0..255 (other formats
// stb_image knows are refused). Colour images use
// ITU-R BT.601 luma, Y = 0.299 R + 0.587 G + 0.114 B (OpenCV's RGB2GRAY, PIL's "L"), kept in float
// so no rounding happens; grey+alpha keeps the grey and alpha is ignored. Throws
// std::runtime_error naming the path for a missing, unreadable, truncated or corrupt file, or one
// whose size exceeds kMaxImageSide or kMaxImagePixels
// (a JPEG must reach its end-of-image marker and a PNG its IEND chunk with every chunk CRC
// right: stb_image alone decodes truncated JPEGs and ignores PNG CRCs).
GrayImage read_gray(const std::filesystem::path& path);

// 8-bit PNG (grey or HxWx3 interleaved RGB) and baseline JPEG (grey, quality 1..100), each written
// atomically. A pixel count other than height*width (*3) is std::invalid_argument.
void write_png_gray(const std::filesystem::path& path, std::span<const std::uint8_t> pixels,
                    int height, int width);
void write_png_rgb(const std::filesystem::path& path, std::span<const std::uint8_t> pixels,
                   int height, int width);
// The bytes of such a PNG (channels 1: grey, 3: interleaved RGB), for sending rather than
// writing (glia-serve's base64 images).
std::string encode_png(std::span<const std::uint8_t> pixels, int height, int width, int channels);
void write_jpeg_gray(const std::filesystem::path& path, std::span<const std::uint8_t> pixels,
                     int height, int width, int quality = 90);

// The buffer checks every image function applies (also io/image_ops.h): positive dimensions,
// and height * width * channels values; std::invalid_argument naming `what` otherwise.
void check_image_dims(int height, int width, const std::string& what);
void check_image_size(std::size_t got, int height, int width, int channels,
                      const std::string& what);

}  // namespace glia::io
