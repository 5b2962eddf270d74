// safetensors encode/decode and the optimiser-state helpers; see safetensors.h.
#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>
#include <vector>

#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "io/atomic_file.h"

namespace glia::io {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; glia copies it as raw bytes");

using json = nlohmann::json;

constexpr std::uint64_t kMaxHeaderBytes = kMaxSafetensorsHeaderBytes;

const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::f32:
      return "F32";
    case DType::f64:
      return "F64";
    case DType::i32:
      return "I32";
    case DType::u8:
      return "U8";
    case DType::bf16:
      return "BF16";
    case DType::f16:
      return "F16";
  }
  throw std::invalid_argument("safetensors: unsupported dtype");
}

std::uint64_t read_u64_le(const char* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string u64_le(std::uint64_t v) {
  std::string s(sizeof v, '\0');
  std::memcpy(s.data(), &v, sizeof v);
  return s;
}

// The tensor named `name` from its header entry and the data section.
Tensor decode_tensor(const std::string& name, const json& entry, std::string_view data,
                     const std::string& what) {
  auto fail = [&](const std::string& why) {
    return std::runtime_error(what + ": tensor '" + name + "': " + why);
  };
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
      !entry.contains("data_offsets")) {
    throw fail("header entry needs dtype, shape and data_offsets");
  }
  const json& dt = entry["dtype"];
  const json& sh = entry["shape"];
  const json& off = entry["data_offsets"];
  if (!dt.is_string() || !sh.is_array() || !off.is_array() || off.size() != 2 ||
      !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
    throw fail("malformed dtype, shape or data_offsets");
  }
  Shape shape;
  for (const json& d : sh) {
    if (!d.is_number_unsigned()) throw fail("shape entries must be non-negative integers");
    // Sizes past int64 cannot be a tensor's; the element count is bounded by the data below.
    if (d.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max())) {
      throw fail("shape entry " + d.dump() + " exceeds the largest tensor size");
    }
    shape.push_back(d.get<index_t>());
  }
  if (static_cast<int>(shape.size()) > kMaxDims) {
    throw fail("rank " + std::to_string(shape.size()) + " exceeds " + std::to_string(kMaxDims));
  }
  const std::string dtype = dt.get<std::string>();
  std::size_t element = 0;
  if (dtype == "F32" || dtype == "I32") {
    element = 4;
  } else if (dtype == "F64" || dtype == "I64") {
    element = 8;
  } else if (dtype == "U8") {
    element = 1;
  } else if (dtype == "BF16" || dtype == "F16") {
    element = 2;
  } else {
    throw fail("unsupported dtype " + dtype + " (F32, F64, BF16, F16, I32, I64, U8 are read)");
  }
  const auto begin = off[0].get<std::uint64_t>(), end = off[1].get<std::uint64_t>();
  if (end < begin || end > data.size()) {
    throw fail("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
               ") lie outside the data section of " + std::to_string(data.size()) + " bytes");
  }
  // The element count, computed so that it cannot overflow: a shape holding more elements than a
  // tensor can (int64) or than the data section has bytes for is refused before it is multiplied
  // out or allocated. An empty tensor (a 0 in the shape) needs no data, whatever its other dims.
  std::uint64_t numel = 1;  // of the non-zero dims
  bool empty = false;
  for (const index_t d : shape) {
    if (d == 0) {
      empty = true;
      continue;
    }
    if (numel > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max()) /
                    static_cast<std::uint64_t>(d)) {
      throw fail("shape " + shape_to_string(shape) + " holds more elements than a tensor can");
    }
    numel *= static_cast<std::uint64_t>(d);
  }
  if (empty) {
    numel = 0;
  } else if (numel > data.size() / element) {
    throw fail(dtype + " shape " + shape_to_string(shape) + " holds more elements than the " +
               std::to_string(data.size()) + "-byte data section");
  }
  if (end - begin != numel * element) {
    throw fail("data_offsets span " + std::to_string(end - begin) + " bytes but " + dtype +
               " shape " + shape_to_string(shape) + " needs " + std::to_string(numel * element));
  }
  const char* src = data.data() + begin;
  if (dtype == "I64") {
    std::vector<std::int32_t> values(numel);
    for (std::size_t i = 0; i < numel; ++i) {
      std::int64_t v = 0;
      std::memcpy(&v, src + i * 8, 8);
      if (v < std::numeric_limits<std::int32_t>::min() ||
          v > std::numeric_limits<std::int32_t>::max()) {
        throw fail("I64 value " + std::to_string(v) + " does not fit the engine's i32");
      }
      values[i] = static_cast<std::int32_t>(v);
    }
    return from_host(values.data(), values.size(), DType::i32, shape, Device::cpu(), false);
  }
  const DType t = dtype == "F32"    ? DType::f32
                  : dtype == "F64"  ? DType::f64
                  : dtype == "I32"  ? DType::i32
                  : dtype == "BF16" ? DType::bf16
                  : dtype == "F16"  ? DType::f16
                                    : DType::u8;
  Tensor out(shape, t, Device::cpu());
  if (numel > 0) std::memcpy(out.raw_data(), src, numel * element);
  return out;
}

}  // namespace

std::string encode_safetensors(const TensorMap& tensors, const Metadata& metadata) {
  NoGradGuard no_grad;
  json header = json::object();
  std::vector<Tensor> host;
  host.reserve(tensors.size());
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name == "__metadata__") {
      throw std::invalid_argument("safetensors: invalid tensor name '" + name + "'");
    }
    if (!t.defined())
      throw std::invalid_argument("safetensors: tensor '" + name + "' is undefined");
    host.push_back(t.detach().to(Device::cpu()));
    const std::uint64_t bytes = static_cast<std::uint64_t>(t.numel()) * dtype_size(t.dtype());
    header[name] = {{"dtype", safetensors_dtype(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  // The data section starts 8-byte aligned, as the format recommends; spaces are valid JSON.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string out = u64_le(text.size());
  out.reserve(8 + text.size() + offset);
  out += text;
  for (const Tensor& t : host) {
    const std::size_t bytes = static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype());
    if (bytes > 0) out.append(static_cast<const char*>(t.raw_data()), bytes);
  }
  return out;
}

SafetensorsContent decode_safetensors(std::string_view bytes, const std::string& what) {
  if (bytes.size() < 8) {
    throw std::runtime_error(what + ": not a safetensors file (shorter than its 8-byte header)");
  }
  const std::uint64_t n = read_u64_le(bytes.data());
  if (n > kMaxHeaderBytes || n > bytes.size() - 8) {
    throw std::runtime_error(what + ": not a safetensors file (header length " + std::to_string(n) +
                             " exceeds the file)");
  }
  json header;
  try {
    header = json::parse(bytes.substr(8, n));
  } catch (const json::exception& e) {
    throw std::runtime_error(what + ": safetensors header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) throw std::runtime_error(what + ": safetensors header is not an object");
  const std::string_view data = bytes.substr(8 + n);

  SafetensorsContent content;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw std::runtime_error(what + ": __metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          throw std::runtime_error(what + ": metadata '" + key + "' is not a string");
        }
        content.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    content.tensors[name] = decode_tensor(name, entry, data, what);
    const auto& off = entry["data_offsets"];
    spans.emplace_back(off[0].get<std::uint64_t>(), off[1].get<std::uint64_t>());
  }
  std::sort(spans.begin(), spans.end());
  for (std::size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].first < spans[i - 1].second) {
      throw std::runtime_error(what + ": tensors overlap in the data section");
    }
  }
  return content;
}

void save_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const Metadata& metadata) {
  write_file_atomic(path, encode_safetensors(tensors, metadata));
}

SafetensorsContent load_safetensors(const std::filesystem::path& path) {
  return decode_safetensors(read_file(path), path.string());
}

Metadata read_safetensors_metadata(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot be opened");
  char len[8];
  if (!in.read(len, 8)) {
    throw std::runtime_error(path.string() + ": not a safetensors file (shorter than 8 bytes)");
  }
  const std::uint64_t n = read_u64_le(len);
  if (n > kMaxHeaderBytes) {
    throw std::runtime_error(path.string() + ": not a safetensors file (header length " +
                             std::to_string(n) + ")");
  }
  std::string bytes(8 + n, '\0');
  std::memcpy(bytes.data(), len, 8);
  if (!in.read(bytes.data() + 8, static_cast<std::streamsize>(n))) {
    throw std::runtime_error(path.string() + ": truncated safetensors header");
  }
  // Parse the header alone: every tensor then looks out of range, so read only the metadata.
  json header;
  try {
    header = json::parse(std::string_view(bytes).substr(8));
  } catch (const json::exception& e) {
    throw std::runtime_error(path.string() + ": safetensors header is not valid JSON: " + e.what());
  }
  Metadata metadata;
  if (header.is_object() && header.contains("__metadata__")) {
    for (const auto& [key, value] : header["__metadata__"].items()) {
      if (!value.is_string()) {
        throw std::runtime_error(path.string() + ": metadata '" + key + "' is not a string");
      }
      metadata[key] = value.get<std::string>();
    }
  }
  return metadata;
}

}  // namespace glia::io
