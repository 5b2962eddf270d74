// The fuzz configuration only: stb_image's implementation compiled from the same Debian header
// the product uses, with libFuzzer's and the sanitizers' instrumentation, into fuzz_image. The
// system libstb is not instrumented, so without this copy the fuzzer would see none of the
// decoder's branches and ASan none of its memory accesses. The executable's definitions take
// precedence over the shared library's, so io::read_gray runs this copy.
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
