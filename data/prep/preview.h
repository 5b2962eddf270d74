// Contact sheets of prepared slices (`glia-prep --preview N`), so a user sees what preprocessing
// did before training: per (source, split) OUT/preview/<source>_<split>.png with up to N slices
// drawn with std::mt19937_64(seed ^ stable_hash("<source>/<split>")) (data/prep/portable_random.h),
// shown in manifest order, and OUT/preview/<source>_<split>.txt naming each tile's slice and
// original, one line per tile in the same order (tab-separated: tile, slice, original, z).
// glia-prep also puts the images whose kept share is an outlier on
// OUT/preview/<source>_outliers.png.
//
// Sheet: tiles in rows of up to kPreviewColumns, kPreviewTileGap pixels of kPreviewBackground
// around and between tiles. A tile is two kPreviewPanel-square panels kPreviewPairGap apart:
//   left:  the original, grey (an image file's 0..255; a volume slice scaled by its maximum),
//          resized bilinearly to the panel, the kept region outlined in kPreviewKeptColour (the
//          head region of an image file, the non-zero pixels of a BraTS slice);
//   right: the prepared slice, z in [-kPreviewWindow, kPreviewWindow] -> 0..255 (clamped); exact
//          zeros, the background the normalisation left out, are black; the tumour mask outlined
//          in kPreviewMaskColour.
// An outline is the region's inner boundary: region pixels with a 4-neighbour outside it or
// outside the panel, taken after resizing the region nearest-neighbour to the panel.
// Tested in tests/data/prep/preview_test.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/slice.h"

namespace glia::data {

inline constexpr int kPreviewPanel = io::kSliceSize;
inline constexpr int kPreviewPairGap = 2, kPreviewTileGap = 8, kPreviewColumns = 4;
inline constexpr double kPreviewWindow = 3.0;
using Rgb = std::array<std::uint8_t, 3>;
inline constexpr Rgb kPreviewBackground = {40, 40, 40};
inline constexpr Rgb kPreviewKeptColour = {0, 255, 0};
inline constexpr Rgb kPreviewMaskColour = {255, 0, 0};

// Where a prepared slice came from: an image file, or slice z of a FLAIR volume.
struct PreviewOrigin {
  std::filesystem::path file;
  int z = -1;  // -1: an image file
};

// One prepared slice that may go on a sheet.
struct PreviewItem {
  std::string source, split;
  std::string path;  // the .npz, relative to the output folder (as in the manifest)
  PreviewOrigin origin;
};

// Placement of `tiles` (> 0) tiles: rows x cols, the sheet's size, and tile k's top-left corner.
struct SheetGeometry {
  int tiles = 0, rows = 0, cols = 0, height = 0, width = 0;
  int tile_top(int k) const;
  int tile_left(int k) const;
};
SheetGeometry sheet_geometry(int tiles);
inline constexpr int kPreviewTileWidth = 2 * kPreviewPanel + kPreviewPairGap;

// An original as shown: grey 0..255 at its own size, and its kept region (0/1).
struct OriginalView {
  int height = 0, width = 0;
  std::vector<float> grey;
  std::vector<std::uint8_t> region;
};
// An image file: read_gray and head_region (data/prep/preprocess.h). A volume slice: the slice
// scaled by 255 / its maximum (clamped at 0), region = non-zero. Errors name the file.
OriginalView load_original(const PreviewOrigin& origin);

// The inner boundary of a 0/1 mask (see above), 0/1.
std::vector<std::uint8_t> outline(std::span<const std::uint8_t> region, int height, int width);

// One tile, kPreviewPanel x kPreviewTileWidth x 3 (RGB). `prepared` is 1 x 256 x 256; `mask`, when
// given, the slice's 256 x 256 tumour mask.
std::vector<std::uint8_t> render_tile(const OriginalView& original, std::span<const float> prepared,
                                      const std::optional<std::vector<std::uint8_t>>& mask);

// Tiles (each as render_tile returns) laid out by sheet_geometry(tiles.size()).
std::vector<std::uint8_t> render_sheet(const std::vector<std::vector<std::uint8_t>>& tiles);

// One sheet of all `items` (non-empty), in order: out/preview/<stem>.png and its tile list
// <stem>.txt, both atomically; returns the PNG's path.
std::filesystem::path write_sheet(const std::filesystem::path& out, const std::string& stem,
                                  std::span<const PreviewItem> items);

// Removes the sheets and tile lists (*.png, *.txt) an earlier run left in out/preview, so that
// none is stale (an outlier sheet of images since fixed, a split no longer present).
void clear_previews(const std::filesystem::path& out);

// Draws up to n items per (source, split) present in `items` (n <= 0: nothing) and writes the
// sheets and their tile lists atomically under out/preview; returns the PNGs written, ordered by
// source, then train, val, test.
std::vector<std::filesystem::path> write_previews(const std::filesystem::path& out,
                                                  std::span<const PreviewItem> items, int n,
                                                  std::uint64_t seed);

}  // namespace glia::data
