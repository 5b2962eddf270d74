// Fuzz target: manifest.csv as the datasets read it (io::read_manifest: RFC 4180 fields, the
// header, numbers, enumerations and ranges checked per row).
// Run by scripts/fuzz; seeds and regressions replayed by replay_test.cpp.
#include <cstddef>
#include <cstdint>

#include "io/manifest.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = glia::fuzz::write_input(data, size, "manifest.csv");
  glia::fuzz::accept_or_reject([&] { (void)glia::io::read_manifest(path); });
  return 0;
}
