// Fuzz target: one .npy file held in memory, as io::decode_npy parses every member of an .npz.
// A decoded array is then read through the accessor its dtype allows (as<T>, as_int,
// as_string), since those reinterpret the raw bytes.
// Run by scripts/fuzz; seeds and regressions replayed by replay_test.cpp.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "io/npy.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

template <class T>
void sum_as(const glia::io::NpyArray& a) {
  double total = 0;
  for (const T v : a.as<T>()) total += static_cast<double>(v);
  (void)total;
}

void read_values(const glia::io::NpyArray& a) {
  const std::string_view d = a.descr;
  if (d == "<f4") sum_as<float>(a);
  if (d == "<f8") sum_as<double>(a);
  if (d == "|u1") sum_as<std::uint8_t>(a);
  if (d == "|i1") sum_as<std::int8_t>(a);
  if (d == "<i2") sum_as<std::int16_t>(a);
  if (d == "<i4") sum_as<std::int32_t>(a);
  if (d == "<i8") sum_as<std::int64_t>(a);
  glia::fuzz::accept_or_reject([&] { (void)a.as_int(); });
  glia::fuzz::accept_or_reject([&] { (void)a.as_string(); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  glia::io::NpyArray array;
  if (glia::fuzz::accept_or_reject([&] { array = glia::io::decode_npy(bytes, "input.npy"); })) {
    read_values(array);
  }
  return 0;
}
