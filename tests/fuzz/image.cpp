// Fuzz target: image files as glia-prep and the predictor read them. The bytes are a JPEG, PNG or
// BMP file (any of stb_image's formats): io::read_gray decodes them (with stb_image_impl.cpp's
// copy of stb_image, which refuses sides over 1024 pixels to keep the run fast), and
// data::prepare_image turns the image into a 256x256 slice (head region, optional crop, resize,
// z-score), cropping or not by the parity of the input's size. Only io::read_gray may hand the
// bytes to stb_image: it checks a JPEG's Huffman tables first, and stbi_info alone already
// overflows on a bad one (tests/fuzz/regressions/image/jpeg-dht-counts-past-segment.jpg).
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
  glia::data::ImagePrepOptions options;
  options.crop_to_head = size % 2 == 1;
  glia::fuzz::accept_or_reject([&] { (void)glia::data::prepare_image(path, options); });
  return 0;
}
