// Fuzz target: image files as glia-prep and the predictor read them. The bytes are a JPEG, PNG or
// BMP file (any of stb_image's formats). Images whose header claims more than 1 megapixel are
// skipped: decoding one takes a sanitized stb_image about a second, and the fuzzer, which likes
// their coverage, then spends its time on them (its rate fell from 300 to 30 inputs a second);
// read_gray's own size limits are tested in tests/io/image_test.cpp. io::read_gray decodes the
// rest, and data::prepare_image turns them into a 256x256 slice (head region, optional crop,
// resize, z-score), cropping or not by the parity of the input's size.
// Run by scripts/fuzz; seeds and regressions replayed by replay_test.cpp.
#include <cstddef>
#include <cstdint>

#include <stb_image.h>

#include "data/prep/preprocess.h"
#include "io/image.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::int64_t kFuzzPixels = std::int64_t{1} << 20;
  int width = 0, height = 0, channels = 0;
  if (size <= (1u << 30) &&
      stbi_info_from_memory(data, static_cast<int>(size), &width, &height, &channels) != 0 &&
      std::int64_t{width} * height > kFuzzPixels) {
    return 0;
  }
  const auto path = glia::fuzz::write_input(data, size, "input.img");
  glia::io::GrayImage image;
  if (!glia::fuzz::accept_or_reject([&] { image = glia::io::read_gray(path); })) return 0;
  // A format stb_image's header probe does not size (none known) still stops here.
  if (std::int64_t{image.height} * image.width > kFuzzPixels) return 0;
  glia::data::ImagePrepOptions options;
  options.crop_to_head = size % 2 == 1;
  glia::fuzz::accept_or_reject([&] { (void)glia::data::prepare_image(path, options); });
  return 0;
}
