// The dataset manifest: one CSV row per preprocessed slice, written by glia-prep (data/prep/prep.h)
// and read by the datasets and the loader. Header
// `path,split,source,patient,slice,label,has_mask,tumor_pixels,kept_fraction`; fields follow
// RFC 4180 (a field holding a comma, a double quote, CR or LF is quoted, quotes doubled), so
// patient names may hold spaces, commas and quotes. `path` is relative to the manifest's folder,
// with '/' separators. Manifests written before kept_fraction existed (the first 8 columns only)
// still read, with kept_fraction unknown; an unknown kept_fraction is written as an empty field.
// Tested in tests/io/manifest_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace glia::io {

struct ManifestEntry {
  std::string path;     // relative to the manifest's folder
  std::string split;    // "train" | "val" | "test"
  std::string source;   // "brats" | "kaggle"
  std::string patient;  // subject id (BraTS) or image file stem (Kaggle)
  int slice = 0;        // axial index z (BraTS); 0 for Kaggle
  int label = 0;        // 1 = tumour, 0 = no tumour
  bool has_mask = false;
  std::int64_t tumor_pixels = 0;  // mask pixels > 0 at 256x256 (0 without a mask)
  // Share of the original image kept as the scan, in [0, 1]: the head region of an image file,
  // the non-zero pixels of a BraTS slice (data/prep/prep.h). Unknown in older manifests.
  std::optional<double> kept_fraction;
};

// Reads a manifest. Errors (std::runtime_error) name the file, the line and the column: a missing
// or different header, a wrong number of fields, an unterminated quote, a number that does not
// parse, a split or source outside the values above, has_mask other than 0/1, a kept_fraction
// outside [0, 1].
std::vector<ManifestEntry> read_manifest(const std::filesystem::path& csv);

// Writes a manifest atomically (io/atomic_file.h), rows in the given order, LF line ends.
void write_manifest(const std::filesystem::path& csv, const std::vector<ManifestEntry>& entries);

}  // namespace glia::io
