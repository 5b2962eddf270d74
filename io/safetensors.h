// safetensors files: the checkpoint format (model weights, optimiser state, golden test data).
// The optimiser-state files beside checkpoints are nets/model/checkpoint.h's.
// Layout: an 8-byte little-endian header length N, N bytes of JSON header, then the raw
// little-endian tensor data. The header maps each tensor name to
// {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} (offsets into the data section)
// and may hold "__metadata__", a string -> string map (architecture parameters, stage, epoch,
// metrics). Writing pads the header with spaces to a multiple of 8 bytes and lays tensors out in
// name order, as the Python safetensors package does, so it reads these files. Reading accepts
// F32, F64, BF16, F16 (kept as bf16/f16 bits), I32, U8 and I64 (converted to i32, which must hold
// every value: PyTorch stores integer buffers as I64) and checks that every tensor lies within the
// file without overlaps. Every write is atomic (io/atomic_file.h). Tested in
// tests/io/safetensors_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "engine/tensor.h"

namespace glia::io {

// A header length field above this is refused as corrupt before anything is allocated: real
// headers (hundreds of tensors) take tens of kilobytes. Tensor sizes need no limit of their own:
// every tensor must lie inside the file, so memory is bounded by the file's size.
inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100u << 20;

using TensorMap = std::map<std::string, Tensor>;
using Metadata = std::map<std::string, std::string>;

struct SafetensorsContent {
  TensorMap tensors;  // on the cpu, in their stored dtype (I64 as i32)
  Metadata metadata;
};

// The bytes of a safetensors file holding `tensors` (moved to the host as needed) and `metadata`.
// Names must be non-empty and must not be "__metadata__".
std::string encode_safetensors(const TensorMap& tensors, const Metadata& metadata = {});
// Parses the bytes of a safetensors file; `what` names the source in errors.
SafetensorsContent decode_safetensors(std::string_view bytes, const std::string& what);

void save_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const Metadata& metadata = {});
SafetensorsContent load_safetensors(const std::filesystem::path& path);
// Only the header's metadata (reads the header, not the tensor data).
Metadata read_safetensors_metadata(const std::filesystem::path& path);

}  // namespace glia::io
