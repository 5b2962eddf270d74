// Fuzz target: image files as glia-prep and the predictor read them. The bytes are a JPEG, PNG or
// BMP file (any of stb_image's formats): io::read_gray decodes them, and when the image is small
// enough to keep the run fast, data::prepare_image turns it into a 256x256 slice (head region,
// optional crop, resize, z-score), cropping or not by the parity of the input's size.
// Run by scripts/fuzz; seeds and regressions replayed by replay_test.cpp.
#include <cstddef>
#include <cstdint>

#include "data/prep/preprocess.h"
#include "io/image.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = glia::fuzz::write_input(data, size, "input.img");
  glia::io::GrayImage image;
  if (!glia::fuzz::accept_or_reject([&] { image = glia::io::read_gray(path); })) return 0;
  // The decoder's limit is io::kMaxImagePixels; preprocessing is exercised on images up to
  // 1 megapixel, beyond which it only costs time.
  if (static_cast<std::int64_t>(image.height) * image.width > (1 << 20)) return 0;
  glia::data::ImagePrepOptions options;
  options.crop_to_head = size % 2 == 1;
  glia::fuzz::accept_or_reject([&] { (void)glia::data::prepare_image(path, options); });
  return 0;
}
