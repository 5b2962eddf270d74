// The 2-D image processing the application needs, through OpenCV's core and imgproc modules so
// results match what cv2 gives the Python reference: resizing, binary morphology (erosion,
// dilation, opening, closing), connected components, hole filling, Otsu's threshold and the JET
// colour map.
// Layout: every buffer is row-major, height x width (x 3 for interleaved RGB).
// Tested in tests/io/image_ops_test.cpp.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace glia::io {

// cv::resize with cv::INTER_LINEAR (half-pixel centres, edge pixels replicated) and
// cv::INTER_NEAREST (source index floor(dst * src / dst_size)); the latter keeps label values.
std::vector<float> resize_bilinear(std::span<const float> src, int height, int width,
                                   int out_height, int out_width);
std::vector<std::uint8_t> resize_nearest(std::span<const std::uint8_t> src, int height, int width,
                                         int out_height, int out_width);

// Binary (0/1, any non-zero counts as 1) morphology with an elliptical (2r+1)x(2r+1) structuring
// element (cv::MORPH_ELLIPSE). Outside the image does not count: erosion does not eat in from
// the border and dilation adds nothing from it. radius 0 returns the mask as 0/1.
std::vector<std::uint8_t> erode(std::span<const std::uint8_t> mask, int height, int width,
                                int radius);
std::vector<std::uint8_t> dilate(std::span<const std::uint8_t> mask, int height, int width,
                                 int radius);
// Opening (erode, then dilate) removes parts thinner than the element (text strokes, lines);
// closing (dilate, then erode) bridges gaps narrower than it. Same element; closing works in the
// plane outside the image taken as 0, so it never joins a structure to the image border (a film
// frame near the edge stays thin enough to open away).
std::vector<std::uint8_t> open_mask(std::span<const std::uint8_t> mask, int height, int width,
                                    int radius);
std::vector<std::uint8_t> close_mask(std::span<const std::uint8_t> mask, int height, int width,
                                     int radius);

// The largest 8-connected component of a 0/1 mask (0/1 out; all zero in -> all zero out). Of two
// components of equal size the one met first in row-major order wins.
std::vector<std::uint8_t> largest_component(std::span<const std::uint8_t> mask, int height,
                                            int width);

// The mask with its holes filled: every 0 pixel that cannot reach the border through
// 4-connected 0 pixels becomes 1 (the complement of an 8-connected region is 4-connected).
std::vector<std::uint8_t> fill_holes(std::span<const std::uint8_t> mask, int height, int width);

// The 8-connected components of a 0/1 mask that hold at least one non-zero pixel of `marker`
// (same size), whole (0/1 out): morphological reconstruction by dilation.
std::vector<std::uint8_t> components_touching(std::span<const std::uint8_t> mask,
                                              std::span<const std::uint8_t> marker, int height,
                                              int width);

// Otsu's threshold of grey values in [0, 255] (one bin per integer level, floor(v); values outside
// are clamped): the bin t that maximises the between-class variance of the pixels in bins <= t
// and those in bins > t (0 when every pixel is in one bin).
float otsu_threshold(std::span<const float> grey);

// Values in [0,1] (clamped; NaN counts as 0) -> HxWx3 RGB with OpenCV's COLORMAP_JET, the value
// quantised to floor(255 v) first exactly as cv2.applyColorMap(np.uint8(255 * v)) does.
std::vector<std::uint8_t> colormap_jet(std::span<const float> values, int height, int width);

}  // namespace glia::io
