// Image decoding/encoding through stb; see image.h.
#include "io/image.h"

#include <stb_image.h>
#include <stb_image_write.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>

#include "io/atomic_file.h"

namespace glia::io {
namespace {

// The offset just past a JPEG's start-of-image marker, 0 when the bytes do not start with one.
// stb_image, like the JPEG standard, takes any run of 0xFF fill bytes before a marker, the first
// one included, so "FF FF D8" starts a JPEG too (a fuzzer's way past a check that wanted FF D8).
std::size_t jpeg_start(std::string_view b) {
  std::size_t i = 0;
  while (i < b.size() && static_cast<unsigned char>(b[i]) == 0xFF) ++i;
  return i >= 1 && i < b.size() && static_cast<unsigned char>(b[i]) == 0xD8 ? i + 1 : 0;
}

bool is_jpeg(std::string_view b) {
  return jpeg_start(b) != 0;
}

// Whether a DHT segment's payload (after its length field) is one or more well-formed Huffman
// tables: a class/id byte, 16 code counts, then as many symbols as the counts add up to, at most
// 256 (one byte each). stb_image 2.27 does not check that total and writes past its 257-entry
// code-length table when it is larger (found by tests/fuzz/image.cpp), so glia checks it first.
bool dht_is_valid(std::string_view p) {
  std::size_t i = 0;
  while (i < p.size()) {
    if (p.size() - i < 17) return false;
    std::size_t symbols = 0;
    for (std::size_t k = 1; k <= 16; ++k) symbols += static_cast<unsigned char>(p[i + k]);
    if (symbols > 256 || p.size() - i - 17 < symbols) return false;
    i += 17 + symbols;
  }
  return true;
}

// The Huffman tables a DHT payload defines, as bits of `dc` and `ac` (table ids 0-3; dht_is_valid
// has checked the layout).
void mark_defined_tables(std::string_view p, unsigned& dc, unsigned& ac) {
  std::size_t i = 0;
  while (i + 17 <= p.size()) {
    const unsigned class_id = static_cast<unsigned char>(p[i]);
    const unsigned table = class_id & 15;
    if (table < 4) ((class_id >> 4) == 0 ? dc : ac) |= 1u << table;
    std::size_t symbols = 0;
    for (std::size_t k = 1; k <= 16; ++k) symbols += static_cast<unsigned char>(p[i + k]);
    i += 17 + symbols;
  }
}

// Whether every Huffman table a scan (SOS payload) decodes with was defined before it. stb_image
// 2.27 does not check this: it allocates its decoder state without clearing it and decodes with
// whatever the heap held, which trips its own assertion (an abort in Debian's build) or decodes
// garbage, depending on earlier allocations (found by tests/fuzz/image.cpp). Baseline scans use
// both tables of each component; progressive ones the DC table in a first DC scan (Ss = 0,
// Ah = 0) and the AC table in any AC scan (Ss > 0).
bool scan_tables_defined(std::string_view p, bool progressive, unsigned dc, unsigned ac) {
  if (p.empty()) return false;
  const std::size_t components = static_cast<unsigned char>(p[0]);
  if (p.size() < 1 + 2 * components + 3) return false;
  const unsigned ss = static_cast<unsigned char>(p[1 + 2 * components]);
  const unsigned ah = static_cast<unsigned char>(p[3 + 2 * components]) >> 4;
  const bool uses_dc = !progressive || (ss == 0 && ah == 0);
  const bool uses_ac = !progressive || ss > 0;
  for (std::size_t k = 0; k < components; ++k) {
    const unsigned tables = static_cast<unsigned char>(p[2 + 2 * k]);
    const unsigned td = tables >> 4, ta = tables & 15;
    if (td > 3 || ta > 3) return false;
    if (uses_dc && (dc & (1u << td)) == 0) return false;
    if (uses_ac && (ac & (1u << ta)) == 0) return false;
  }
  return true;
}

// Walks the JPEG marker segments and the entropy-coded scans and reports whether the end-of-image
// marker is reached inside the data with every Huffman table well formed and defined before a
// scan uses it; a truncated file runs out first.
bool jpeg_is_complete(std::string_view b) {
  const auto at = [&](std::size_t i) { return static_cast<unsigned char>(b[i]); };
  const std::size_t n = b.size();
  std::size_t i = jpeg_start(b);
  unsigned dc_defined = 0, ac_defined = 0;
  bool progressive = false;
  while (i < n) {
    if (at(i) != 0xFF) return false;
    while (i < n && at(i) == 0xFF) ++i;  // fill bytes before a marker
    if (i >= n) return false;
    const unsigned marker = at(i++);
    if (marker == 0xD9) return true;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length field
    if (i + 2 > n) return false;
    const std::size_t len = (std::size_t{at(i)} << 8) | at(i + 1);
    if (len < 2 || i + len > n) return false;
    const std::string_view payload = b.substr(i + 2, len - 2);
    if (marker == 0xC4) {
      if (!dht_is_valid(payload)) return false;
      mark_defined_tables(payload, dc_defined, ac_defined);
    }
    if (marker == 0xC2) progressive = true;
    if (marker == 0xDA && !scan_tables_defined(payload, progressive, dc_defined, ac_defined)) {
      return false;
    }
    i += len;
    if (marker != 0xDA) continue;
    // Scan data: 0xFF00 is a stuffed byte and 0xFFD0..D7 a restart marker; any other 0xFFxx ends
    // the scan.
    while (true) {
      if (i + 1 >= n) return false;
      if (at(i) != 0xFF) {
        ++i;
        continue;
      }
      const unsigned next = at(i + 1);
      if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) {
        i += 2;
      } else if (next == 0xFF) {
        ++i;
      } else {
        break;
      }
    }
  }
  return false;
}

bool is_png(std::string_view b) {
  return b.starts_with("\x89PNG\r\n\x1a\n");
}

// Walks the PNG chunks, checking each CRC, up to a complete IEND chunk. stb_image ignores CRCs
// and stops at the IEND type, so it accepts a file cut inside the last chunk.
bool png_is_complete(std::string_view b) {
  const auto be32 = [&](std::size_t i) {
    return std::uint32_t{static_cast<unsigned char>(b[i])} << 24 |
           std::uint32_t{static_cast<unsigned char>(b[i + 1])} << 16 |
           std::uint32_t{static_cast<unsigned char>(b[i + 2])} << 8 |
           std::uint32_t{static_cast<unsigned char>(b[i + 3])};
  };
  std::size_t i = 8;
  while (i + 12 <= b.size()) {
    const std::size_t len = be32(i);
    if (len > b.size() - i - 12) return false;
    const auto* typed = reinterpret_cast<const Bytef*>(b.data() + i + 4);
    if (crc32(crc32(0L, Z_NULL, 0), typed, static_cast<uInt>(len + 4)) != be32(i + 8 + len)) {
      return false;
    }
    if (b.substr(i + 4, 4) == "IEND") return true;
    i += len + 12;
  }
  return false;
}

void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<std::size_t>(size));
}

void write_png(const std::filesystem::path& path, std::span<const std::uint8_t> pixels, int height,
               int width, int channels) {
  check_image_size(pixels.size(), height, width, channels, "write " + path.string());
  write_file_atomic(path, encode_png(pixels, height, width, channels));
}

}  // namespace

std::string encode_png(std::span<const std::uint8_t> pixels, int height, int width, int channels) {
  if (channels != 1 && channels != 3) {
    throw std::invalid_argument("encode PNG: " + std::to_string(channels) +
                                " channels; 1 (grey) or 3 (RGB) are written");
  }
  check_image_size(pixels.size(), height, width, channels, "encode PNG");
  std::string bytes;
  if (stbi_write_png_to_func(append_bytes, &bytes, width, height, channels, pixels.data(),
                             width * channels) == 0) {
    throw std::runtime_error("cannot encode a " + std::to_string(height) + "x" +
                             std::to_string(width) + " PNG");
  }
  return bytes;
}

void check_image_dims(int height, int width, const std::string& what) {
  if (height <= 0 || width <= 0) {
    throw std::invalid_argument(what + ": image size " + std::to_string(height) + "x" +
                                std::to_string(width) + " must be positive");
  }
}

void check_image_size(std::size_t got, int height, int width, int channels,
                      const std::string& what) {
  check_image_dims(height, width, what);
  const std::size_t want = static_cast<std::size_t>(height) * static_cast<std::size_t>(width) *
                           static_cast<std::size_t>(channels);
  if (got != want) {
    throw std::invalid_argument(what + ": " + std::to_string(got) + " values given for a " +
                                std::to_string(height) + "x" + std::to_string(width) + "x" +
                                std::to_string(channels) + " image (" + std::to_string(want) +
                                " expected)");
  }
}

GrayImage read_gray(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  const std::string name = path.string();
  if (bytes.empty())
    throw std::runtime_error("cannot decode image " + name + ": the file is empty");
  // stb_image also decodes GIF, TGA, PSD, PIC, PNM and HDR, none of which glia reads: refusing
  // them keeps their parsers away from outside bytes (the fuzzer found a signed overflow in the
  // PNM header's number parser).
  if (!is_jpeg(bytes) && !is_png(bytes) && !bytes.starts_with("BM")) {
    throw std::runtime_error("cannot decode image " + name + ": not a JPEG, PNG or BMP file");
  }
  if (is_jpeg(bytes) && !jpeg_is_complete(bytes)) {
    throw std::runtime_error(
        "cannot decode image " + name +
        ": truncated or corrupt JPEG (no end-of-image marker, or a Huffman table malformed or "
        "used before it is defined)");
  }
  if (is_png(bytes) && !png_is_complete(bytes)) {
    throw std::runtime_error("cannot decode image " + name +
                             ": truncated or corrupt PNG (bad chunk CRC or no IEND chunk)");
  }
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw std::runtime_error("cannot decode image " + name + ": file too large");
  }
  int width = 0, height = 0, channels = 0;
  const auto* encoded = reinterpret_cast<const stbi_uc*>(bytes.data());
  // The header alone first: the size is checked before stb_image allocates the pixels. A file
  // stb_image cannot even parse the header of fails in the decode below with its reason.
  // A top-down BMP's height comes back negated (stb_image 2.27's probe does not take the
  // magnitude its decoder allocates for), so the limits apply to the magnitudes.
  const bool probed =
      stbi_info_from_memory(encoded, static_cast<int>(bytes.size()), &width, &height, &channels);
  const std::int64_t probed_width = std::abs(std::int64_t{width});
  const std::int64_t probed_height = std::abs(std::int64_t{height});
  if (probed && (probed_width > kMaxImageSide || probed_height > kMaxImageSide ||
                 probed_width * probed_height > kMaxImagePixels)) {
    throw std::runtime_error("cannot decode image " + name + ": " + std::to_string(probed_width) +
                             "x" + std::to_string(probed_height) + " pixels exceed the limit of " +
                             std::to_string(kMaxImageSide) + " per side and " +
                             std::to_string(kMaxImagePixels) + " in all");
  }
  stbi_uc* data =
      stbi_load_from_memory(encoded, static_cast<int>(bytes.size()), &width, &height, &channels, 0);
  if (data == nullptr) {
    const char* reason = stbi_failure_reason();
    throw std::runtime_error("cannot decode image " + name + ": " +
                             (reason != nullptr ? reason : "unknown error"));
  }
  GrayImage img;
  img.height = height;
  img.width = width;
  const std::size_t n = static_cast<std::size_t>(height) * static_cast<std::size_t>(width);
  img.pixels.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const stbi_uc* p = data + i * static_cast<std::size_t>(channels);
    img.pixels[i] =
        channels >= 3 ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : static_cast<float>(p[0]);
  }
  stbi_image_free(data);
  return img;
}

void write_png_gray(const std::filesystem::path& path, std::span<const std::uint8_t> pixels,
                    int height, int width) {
  write_png(path, pixels, height, width, 1);
}

void write_png_rgb(const std::filesystem::path& path, std::span<const std::uint8_t> pixels,
                   int height, int width) {
  write_png(path, pixels, height, width, 3);
}

void write_jpeg_gray(const std::filesystem::path& path, std::span<const std::uint8_t> pixels,
                     int height, int width, int quality) {
  check_image_size(pixels.size(), height, width, 1, "write " + path.string());
  if (quality < 1 || quality > 100) {
    throw std::invalid_argument("write " + path.string() + ": JPEG quality " +
                                std::to_string(quality) + " outside 1..100");
  }
  std::string bytes;
  if (stbi_write_jpg_to_func(append_bytes, &bytes, width, height, 1, pixels.data(), quality) == 0) {
    throw std::runtime_error("cannot encode JPEG " + path.string());
  }
  write_file_atomic(path, bytes);
}

}  // namespace glia::io
