// NumPy .npy and .npz files, byte-compatible with numpy 1.24.
// .npy layout (format version 1.0, the one numpy writes whenever the header fits 65535 bytes):
//   "\x93NUMPY" 0x01 0x00, uint16 little-endian header length, then the header: the Python dict
//   literal "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" followed by spaces for
//   in-place growth (21 minus the digits of shape[0], none for 0-d), then space padding and a final
//   '\n' so the data starts at a multiple of 64 bytes (numpy pads 1..64 bytes, never 0), then the
//   raw data in C order. Versions 2.0 (uint32 length) and 3.0 (UTF-8 header) are read too.
// .npz: a zip archive with one "<key>.npy" member per array; np.savez stores, np.savez_compressed
// deflates. Written and read through libzip; members carry a fixed 1980-01-01 time stamp so equal
// arrays give equal files.
// Tested in tests/io/npy_test.cpp against files written by tests/io/data/make_npy_golden.py.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace glia::io {

struct NpyArray {
  std::string descr;  // numpy dtype: "<f4" "<f8" "|u1" "|i1" "<i2" "<i4" "<i8" "|b1" "<U<n>"
                      // (also read: "<u2" "<u4" "<u8")
  std::vector<std::int64_t> shape;  // empty = 0-d
  bool fortran_order = false;       // reading a Fortran-order array is an error naming the file
  std::vector<std::byte> data;      // raw little-endian, C order

  std::int64_t numel() const;  // product of shape; 1 for 0-d
  // The data as T (float, double, uint8_t, int8_t, int16_t, int32_t, int64_t); throws
  // std::invalid_argument naming both dtypes when descr is not T's.
  template <class T>
  std::span<const T> as() const;
  std::int64_t as_int() const;    // a 0-d (or 1-element) integer or bool array of any width
  std::string as_string() const;  // a 0-d "<U<n>" array (UTF-32 in the file) -> UTF-8

  static NpyArray from_f32(std::span<const float> v, std::vector<std::int64_t> shape);
  static NpyArray from_u8(std::span<const std::uint8_t> v, std::vector<std::int64_t> shape);
  static NpyArray scalar_i64(std::int64_t v);            // 0-d "<i8", as np.savez stores an int
  static NpyArray scalar_string(std::string_view utf8);  // 0-d "<U<n>", as np.savez stores a str

 private:
  void check_descr(std::string_view want) const;
};

// The numpy dtype string of each type as() accepts.
template <class T>
constexpr std::string_view npy_descr();
template <>
constexpr std::string_view npy_descr<float>() {
  return "<f4";
}
template <>
constexpr std::string_view npy_descr<double>() {
  return "<f8";
}
template <>
constexpr std::string_view npy_descr<std::uint8_t>() {
  return "|u1";
}
template <>
constexpr std::string_view npy_descr<std::int8_t>() {
  return "|i1";
}
template <>
constexpr std::string_view npy_descr<std::int16_t>() {
  return "<i2";
}
template <>
constexpr std::string_view npy_descr<std::int32_t>() {
  return "<i4";
}
template <>
constexpr std::string_view npy_descr<std::int64_t>() {
  return "<i8";
}

template <class T>
std::span<const T> NpyArray::as() const {
  check_descr(npy_descr<T>());
  // std::vector's storage comes from operator new, aligned for every fundamental type.
  return {reinterpret_cast<const T*>(data.data()), data.size() / sizeof(T)};
}

// The complete .npy file (header + data) numpy 1.24 writes for this array. Throws
// std::invalid_argument for an unknown descr, a negative dimension or data of the wrong size.
std::string encode_npy(const NpyArray& a);
// Parses a .npy file held in memory; `what` names it in errors (a path, or "x.npz:key").
NpyArray decode_npy(std::string_view bytes, const std::string& what);
NpyArray read_npy(const std::filesystem::path& path);
void write_npy(const std::filesystem::path& path, const NpyArray& a);  // atomic

// The largest .npz member read_npz reads (uncompressed): the size a member's zip record states
// is checked before reading, and the data must match it. A prepared slice's image is 256 KiB.
inline constexpr std::uint64_t kMaxNpzMemberBytes = std::uint64_t{1} << 30;

using NpzArchive = std::map<std::string, NpyArray>;  // keys without the ".npy" suffix
// Stored and deflated members; a member not named "*.npy" or over kMaxNpzMemberBytes, a CRC
// mismatch, a truncated or non-zip file throws std::runtime_error naming the file (and the member).
NpzArchive read_npz(const std::filesystem::path& path);
// compressed = np.savez_compressed (deflate), else np.savez (stored). Atomic.
void write_npz(const std::filesystem::path& path, const NpzArchive& arrays, bool compressed = true);

}  // namespace glia::io
