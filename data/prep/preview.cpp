// Contact sheets of prepared slices; see preview.h for the layout and the drawing rules.
#include "data/prep/preview.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>

#include "data/prep/portable_random.h"
#include "data/prep/preprocess.h"
#include "data/prep/split.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "io/image_ops.h"
#include "io/nifti.h"

namespace glia::data {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kPanelPixels = static_cast<std::size_t>(kPreviewPanel) * kPreviewPanel;

// Writes a panel (grey values 0..255, one per pixel) into an RGB image at (top, left).
void put_panel(std::vector<std::uint8_t>& rgb, int image_width, int top, int left,
               std::span<const std::uint8_t> grey) {
  for (int y = 0; y < kPreviewPanel; ++y) {
    for (int x = 0; x < kPreviewPanel; ++x) {
      const std::uint8_t g = grey[static_cast<std::size_t>(y) * kPreviewPanel + x];
      const std::size_t o =
          3 * (static_cast<std::size_t>(top + y) * static_cast<std::size_t>(image_width) +
               static_cast<std::size_t>(left + x));
      rgb[o] = rgb[o + 1] = rgb[o + 2] = g;
    }
  }
}

// Paints the outline of a panel-sized 0/1 region in `colour` at (top, left).
void put_outline(std::vector<std::uint8_t>& rgb, int image_width, int top, int left,
                 std::span<const std::uint8_t> region, const Rgb& colour) {
  const std::vector<std::uint8_t> edge = outline(region, kPreviewPanel, kPreviewPanel);
  for (int y = 0; y < kPreviewPanel; ++y) {
    for (int x = 0; x < kPreviewPanel; ++x) {
      if (!edge[static_cast<std::size_t>(y) * kPreviewPanel + x]) continue;
      const std::size_t o =
          3 * (static_cast<std::size_t>(top + y) * static_cast<std::size_t>(image_width) +
               static_cast<std::size_t>(left + x));
      std::copy(colour.begin(), colour.end(), rgb.begin() + static_cast<std::ptrdiff_t>(o));
    }
  }
}

std::vector<std::uint8_t> filled(int height, int width, const Rgb& colour) {
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(height) * width * 3);
  for (std::size_t p = 0; p < rgb.size(); p += 3) std::copy(colour.begin(), colour.end(), &rgb[p]);
  return rgb;
}

// Rank of a split for ordering: train, val, test, then others.
int split_rank(const std::string& split) {
  for (int i = 0; i < 3; ++i) {
    if (split == kSplitNames[i]) return i;
  }
  return 3;
}

}  // namespace

int SheetGeometry::tile_top(int k) const {
  return kPreviewTileGap + (k / cols) * (kPreviewPanel + kPreviewTileGap);
}

int SheetGeometry::tile_left(int k) const {
  return kPreviewTileGap + (k % cols) * (kPreviewTileWidth + kPreviewTileGap);
}

SheetGeometry sheet_geometry(int tiles) {
  if (tiles <= 0) {
    throw std::invalid_argument("sheet_geometry: " + std::to_string(tiles) + " tiles");
  }
  SheetGeometry g;
  g.tiles = tiles;
  g.cols = std::min(tiles, kPreviewColumns);
  g.rows = (tiles + g.cols - 1) / g.cols;
  g.height = kPreviewTileGap + g.rows * (kPreviewPanel + kPreviewTileGap);
  g.width = kPreviewTileGap + g.cols * (kPreviewTileWidth + kPreviewTileGap);
  return g;
}

OriginalView load_original(const PreviewOrigin& origin) {
  OriginalView v;
  if (origin.z < 0) {
    io::GrayImage img = io::read_gray(origin.file);
    v.height = img.height;
    v.width = img.width;
    v.region = head_region(img.pixels, img.height, img.width);
    v.grey = std::move(img.pixels);
    return v;
  }
  const io::Volume vol = io::read_nifti(origin.file);
  if (origin.z >= vol.nz) {
    throw std::runtime_error(origin.file.string() + ": slice " + std::to_string(origin.z) +
                             " is outside the volume's " + std::to_string(vol.nz) + " slices");
  }
  v.height = static_cast<int>(vol.ny);
  v.width = static_cast<int>(vol.nx);
  const std::size_t plane = static_cast<std::size_t>(v.height) * static_cast<std::size_t>(v.width);
  const float* px = vol.data.data() + static_cast<std::size_t>(origin.z) * plane;
  const float top = *std::max_element(px, px + plane);
  const float scale = top > 0.0f ? 255.0f / top : 0.0f;
  v.grey.resize(plane);
  v.region.resize(plane);
  for (std::size_t p = 0; p < plane; ++p) {
    v.grey[p] = std::clamp(px[p] * scale, 0.0f, 255.0f);
    v.region[p] = px[p] != 0.0f ? 1 : 0;
  }
  return v;
}

std::vector<std::uint8_t> outline(std::span<const std::uint8_t> region, int height, int width) {
  io::check_image_size(region.size(), height, width, 1, "outline");
  // By hand rather than io::erode, whose border does not erode: a region that fills the whole
  // panel (a frame taken for the head) must still show its edge.
  auto in = [&](int y, int x) {
    return y >= 0 && y < height && x >= 0 && x < width &&
           region[static_cast<std::size_t>(y) * width + x] != 0;
  };
  std::vector<std::uint8_t> edge(region.size(), 0);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      if (in(y, x) && !(in(y - 1, x) && in(y + 1, x) && in(y, x - 1) && in(y, x + 1))) {
        edge[static_cast<std::size_t>(y) * width + x] = 1;
      }
    }
  }
  return edge;
}

std::vector<std::uint8_t> render_tile(const OriginalView& original, std::span<const float> prepared,
                                      const std::optional<std::vector<std::uint8_t>>& mask) {
  io::check_image_size(prepared.size(), kPreviewPanel, kPreviewPanel, 1, "render_tile prepared");
  if (mask) io::check_image_size(mask->size(), kPreviewPanel, kPreviewPanel, 1, "render_tile mask");
  std::vector<std::uint8_t> rgb = filled(kPreviewPanel, kPreviewTileWidth, kPreviewBackground);

  const std::vector<float> grey = io::resize_bilinear(original.grey, original.height,
                                                      original.width, kPreviewPanel, kPreviewPanel);
  std::vector<std::uint8_t> left(kPanelPixels);
  for (std::size_t p = 0; p < kPanelPixels; ++p) {
    left[p] = static_cast<std::uint8_t>(std::lround(std::clamp(grey[p], 0.0f, 255.0f)));
  }
  put_panel(rgb, kPreviewTileWidth, 0, 0, left);
  const std::vector<std::uint8_t> region = io::resize_nearest(
      original.region, original.height, original.width, kPreviewPanel, kPreviewPanel);
  put_outline(rgb, kPreviewTileWidth, 0, 0, region, kPreviewKeptColour);

  std::vector<std::uint8_t> right(kPanelPixels);
  for (std::size_t p = 0; p < kPanelPixels; ++p) {
    const double z = prepared[p];
    const double t = std::clamp((z + kPreviewWindow) / (2.0 * kPreviewWindow), 0.0, 1.0);
    right[p] = z == 0.0 ? 0 : static_cast<std::uint8_t>(std::lround(255.0 * t));
  }
  const int right_left = kPreviewPanel + kPreviewPairGap;
  put_panel(rgb, kPreviewTileWidth, 0, right_left, right);
  if (mask) put_outline(rgb, kPreviewTileWidth, 0, right_left, *mask, kPreviewMaskColour);
  return rgb;
}

std::vector<std::uint8_t> render_sheet(const std::vector<std::vector<std::uint8_t>>& tiles) {
  const SheetGeometry g = sheet_geometry(static_cast<int>(tiles.size()));
  std::vector<std::uint8_t> rgb = filled(g.height, g.width, kPreviewBackground);
  const std::size_t row_bytes = 3 * static_cast<std::size_t>(kPreviewTileWidth);
  for (int k = 0; k < g.tiles; ++k) {
    const auto& tile = tiles[static_cast<std::size_t>(k)];
    io::check_image_size(tile.size(), kPreviewPanel, kPreviewTileWidth, 3, "render_sheet tile");
    for (int y = 0; y < kPreviewPanel; ++y) {
      const std::size_t o = 3 * (static_cast<std::size_t>(g.tile_top(k) + y) * g.width +
                                 static_cast<std::size_t>(g.tile_left(k)));
      std::copy_n(tile.begin() + static_cast<std::ptrdiff_t>(y * row_bytes), row_bytes,
                  rgb.begin() + static_cast<std::ptrdiff_t>(o));
    }
  }
  return rgb;
}

void clear_previews(const fs::path& out) {
  const fs::path dir = out / "preview";
  if (!fs::is_directory(dir)) return;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".png" || ext == ".txt")) fs::remove(e.path());
  }
}

fs::path write_sheet(const fs::path& out, const std::string& stem,
                     std::span<const PreviewItem> items) {
  std::vector<std::vector<std::uint8_t>> tiles;
  std::ostringstream list;
  list << "tile\tslice\toriginal\tz\n";
  for (const PreviewItem& item : items) {
    const io::Slice slice = io::read_slice(out / item.path);
    tiles.push_back(render_tile(load_original(item.origin), slice.image, slice.mask));
    list << tiles.size() - 1 << '\t' << item.path << '\t' << item.origin.file.string() << '\t'
         << item.origin.z << '\n';
  }
  const SheetGeometry g = sheet_geometry(static_cast<int>(tiles.size()));
  fs::create_directories(out / "preview");
  const fs::path png = out / "preview" / (stem + ".png");
  io::write_png_rgb(png, render_sheet(tiles), g.height, g.width);
  io::write_file_atomic(out / "preview" / (stem + ".txt"), list.str());
  return png;
}

std::vector<fs::path> write_previews(const fs::path& out, std::span<const PreviewItem> items, int n,
                                     std::uint64_t seed) {
  std::vector<fs::path> written;
  if (n <= 0 || items.empty()) return written;
  std::map<std::pair<std::string, std::string>, std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < items.size(); ++i) {
    groups[{items[i].source, items[i].split}].push_back(i);
  }
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& [key, _] : groups) keys.push_back(key);
  std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    return split_rank(a.second) < split_rank(b.second);
  });
  for (const auto& key : keys) {
    std::vector<std::size_t> pick = groups.at(key);
    std::mt19937_64 rng(seed ^ stable_hash(key.first + "/" + key.second));
    shuffle_in_place(pick, rng);
    pick.resize(std::min(pick.size(), static_cast<std::size_t>(n)));
    std::sort(pick.begin(), pick.end());
    std::vector<PreviewItem> chosen;
    for (std::size_t i : pick) chosen.push_back(items[i]);
    written.push_back(write_sheet(out, key.first + "_" + key.second, chosen));
  }
  return written;
}

}  // namespace glia::data
