// The fuzz configuration only: stb_image's implementation compiled from the same Debian header
// the product uses, with libFuzzer's and the sanitizers' instrumentation, into fuzz_image. The
// system libstb is not instrumented, so without this copy the fuzzer would see none of the
// decoder's branches and ASan none of its memory accesses. The executable's definitions take
// precedence over the shared library's, so io::read_gray runs this copy. It refuses images over
// 1024 pixels a side: a sanitized stb_image takes about a second to decode a larger one, and the
// fuzzer, which likes their coverage, drifted to them (its rate fell from 300 to 30 inputs a
// second); read_gray's own size limits are tested in tests/io/image_test.cpp.
#define STBI_MAX_DIMENSIONS 1024
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
