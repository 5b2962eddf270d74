// Slices as .npz; see slice.h for the keys.
#include "io/slice.h"

#include <limits>
#include <stdexcept>

#include "io/npy.h"

namespace glia::io {
namespace {

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

class Reader {
 public:
  Reader(const std::filesystem::path& path, NpzArchive archive)
      : name_(path.string()), archive_(std::move(archive)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& why) const {
    throw std::runtime_error("cannot read slice " + name_ + ": key '" + key + "' " + why);
  }
  bool has(const std::string& key) const { return archive_.contains(key); }
  const NpyArray& get(const std::string& key) const {
    const auto it = archive_.find(key);
    if (it == archive_.end()) fail(key, "is missing");
    return it->second;
  }
  const NpyArray& get(const std::string& key, std::string_view descr) const {
    const NpyArray& a = get(key);
    if (a.descr != descr) {
      fail(key, "has dtype '" + a.descr + "', expected '" + std::string(descr) + "'");
    }
    return a;
  }
  std::int64_t integer(const std::string& key) const {
    const NpyArray& a = get(key);
    if (!a.shape.empty() || a.descr.size() < 2 || (a.descr[1] != 'i' && a.descr[1] != 'u')) {
      fail(key, "must be a 0-d integer, got dtype '" + a.descr + "' shape " + shape_text(a.shape));
    }
    const std::int64_t v = a.as_int();
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
      fail(key, "value " + std::to_string(v) + " is out of range");
    }
    return v;
  }
  std::string text(const std::string& key) const {
    const NpyArray& a = get(key);
    if (!a.shape.empty() || !a.descr.starts_with("<U")) {
      fail(key, "must be a 0-d unicode string, got dtype '" + a.descr + "' shape " +
                    shape_text(a.shape));
    }
    return a.as_string();
  }

 private:
  std::string name_;
  NpzArchive archive_;
};

}  // namespace

void write_slice(const std::filesystem::path& path, const Slice& s) {
  const std::string name = path.string();
  if (s.height <= 0 || s.width <= 0) {
    throw std::invalid_argument("cannot write slice " + name + ": size " +
                                std::to_string(s.height) + "x" + std::to_string(s.width));
  }
  const std::size_t n = static_cast<std::size_t>(s.height) * static_cast<std::size_t>(s.width);
  if (s.image.size() != n) {
    throw std::invalid_argument("cannot write slice " + name + ": image has " +
                                std::to_string(s.image.size()) + " values, expected 1x" +
                                std::to_string(s.height) + "x" + std::to_string(s.width));
  }
  NpzArchive arrays;
  arrays.emplace("image", NpyArray::from_f32(s.image, {1, s.height, s.width}));
  if (s.mask) {
    if (s.mask->size() != n) {
      throw std::invalid_argument("cannot write slice " + name + ": mask has " +
                                  std::to_string(s.mask->size()) + " values, expected " +
                                  std::to_string(s.height) + "x" + std::to_string(s.width));
    }
    for (std::uint8_t v : *s.mask) {
      if (v > 1) {
        throw std::invalid_argument("cannot write slice " + name + ": mask value " +
                                    std::to_string(v) + " is not 0/1");
      }
    }
    arrays.emplace("mask", NpyArray::from_u8(*s.mask, {s.height, s.width}));
  }
  arrays.emplace("label", NpyArray::scalar_i64(s.label));
  arrays.emplace("source", NpyArray::scalar_string(s.source));
  arrays.emplace("patient", NpyArray::scalar_string(s.patient));
  arrays.emplace("slice", NpyArray::scalar_i64(s.slice));
  write_npz(path, arrays, /*compressed=*/true);
}

Slice read_slice(const std::filesystem::path& path) {
  const Reader r(path, read_npz(path));
  Slice s;
  const NpyArray& image = r.get("image", "<f4");
  if (image.shape.size() != 3 || image.shape[0] != 1 || image.shape[1] <= 0 ||
      image.shape[2] <= 0 || image.shape[1] > std::numeric_limits<int>::max() ||
      image.shape[2] > std::numeric_limits<int>::max()) {
    r.fail("image", "has shape " + shape_text(image.shape) + ", expected (1, H, W)");
  }
  s.height = static_cast<int>(image.shape[1]);
  s.width = static_cast<int>(image.shape[2]);
  const auto pixels = image.as<float>();
  s.image.assign(pixels.begin(), pixels.end());
  if (r.has("mask")) {
    const NpyArray& mask = r.get("mask", "|u1");
    if (mask.shape != std::vector<std::int64_t>{s.height, s.width}) {
      r.fail("mask", "has shape " + shape_text(mask.shape) + ", expected (" +
                         std::to_string(s.height) + ", " + std::to_string(s.width) + ")");
    }
    const auto values = mask.as<std::uint8_t>();
    for (std::uint8_t v : values) {
      if (v > 1) r.fail("mask", "holds the value " + std::to_string(v) + ", expected 0/1");
    }
    s.mask.emplace(values.begin(), values.end());
  }
  s.label = static_cast<int>(r.integer("label"));
  s.source = r.text("source");
  s.patient = r.text("patient");
  s.slice = static_cast<int>(r.integer("slice"));
  return s;
}

}  // namespace glia::io
