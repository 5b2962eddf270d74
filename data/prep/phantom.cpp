// Geometry of the BraTS-like, Kaggle-like and exported-scan phantoms in memory; see phantom.h. The
// file writing is in phantom_files.cpp.
#include "data/prep/phantom.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <stdexcept>

#include "data/prep/portable_random.h"

namespace glia::data {
namespace {

constexpr double kPi = 3.14159265358979323846;

// A closed surface with angular noise: a point at normalised radius rho and angles (theta, phi)
// is inside when rho < radius(theta, phi). Amplitudes keep the radius within [0.55, 1.45].
struct NoisyRadius {
  double a1, a2, p1, p2, p3;
  int k1, k2, k3;
  explicit NoisyRadius(std::mt19937_64& rng)
      : a1(uniform(rng, 0.08, 0.22)),
        a2(uniform(rng, 0.05, 0.2)),
        p1(uniform(rng, 0, 2 * kPi)),
        p2(uniform(rng, 0, 2 * kPi)),
        p3(uniform(rng, 0, 2 * kPi)),
        k1(2 + static_cast<int>(uniform_below(rng, 3))),
        k2(1 + static_cast<int>(uniform_below(rng, 3))),
        k3(3 + static_cast<int>(uniform_below(rng, 3))) {}
  double operator()(double theta, double phi) const {
    return 1.0 + a1 * std::sin(k1 * theta + p1) * std::sin(k2 * phi + p2) +
           a2 * std::cos(k3 * theta + p3);
  }
};

// Smooth texture in [-1, 1]: a product of two sinusoids plus a third, at random low frequencies.
struct Texture {
  double f[6], p[6];
  explicit Texture(std::mt19937_64& rng) {
    for (int i = 0; i < 6; ++i) {
      f[i] = uniform(rng, 1.5, 4.5);
      p[i] = uniform(rng, 0, 2 * kPi);
    }
  }
  double operator()(double u, double v, double w) const {  // u, v, w in [0, 1]
    double a = std::sin(2 * kPi * f[0] * u + p[0]) * std::sin(2 * kPi * f[1] * v + p[1]);
    double b = std::sin(2 * kPi * (f[2] * u + f[3] * v + f[4] * w) + p[2]);
    return 0.6 * a + 0.4 * b;
  }
};

}  // namespace

PhantomVolume make_brats_phantom(int n, int depth, bool tumor, std::uint64_t seed) {
  if (n < 16 || depth < 4) {
    throw std::invalid_argument("make_brats_phantom: size " + std::to_string(n) + "x" +
                                std::to_string(n) + "x" + std::to_string(depth) +
                                " is below 16x16x4");
  }
  std::mt19937_64 rng(seed);
  PhantomVolume v;
  v.nx = v.ny = n;
  v.nz = depth;
  v.has_tumor = tumor;
  const std::size_t total = static_cast<std::size_t>(n) * n * depth;
  v.flair.assign(total, 0.0f);
  v.seg.assign(total, 0);

  // Head: centre jittered by 2%, semi-axes leave at least 3% margin in plane, and fall short of
  // the first and last slices in z.
  const double cx = (n - 1) / 2.0 + uniform(rng, -0.02, 0.02) * n;
  const double cy = (n - 1) / 2.0 + uniform(rng, -0.02, 0.02) * n;
  const double cz = (depth - 1) / 2.0;
  const double ax = n * uniform(rng, 0.38, 0.44), ay = n * uniform(rng, 0.41, 0.45);
  const double az = std::min(depth / 2.0 * uniform(rng, 0.78, 0.88), cz - 0.01);
  const double brain = uniform(rng, 350, 450), skull = uniform(rng, 800, 1000);
  const double csf = uniform(rng, 40, 80), noise = uniform(rng, 0.03, 0.06);
  const Texture texture(rng);

  // Ventricles: two ellipsoids either side of the midline, a little anterior.
  const double vx = 0.09 * n, vy = -0.05 * n, vrx = 0.05 * n, vry = 0.14 * n, vrz = 0.22 * depth;

  // Tumour: core centre well inside the brain; radii in voxels (z from depth, so thin volumes
  // still hold the core on a few slices).
  double tx = 0, ty = 0, tz = 0, rx = 1, ry = 1, rz = 1, oedema = 0, c_oed = 0, c_enh = 0,
         c_nec = 0;
  std::optional<NoisyRadius> core_shape, oedema_shape;
  if (tumor) {
    tx = cx + ax * uniform(rng, -0.45, 0.45);
    ty = cy + ay * uniform(rng, -0.45, 0.45);
    tz = cz + az * uniform(rng, -0.35, 0.35);
    rx = n * uniform(rng, 0.05, 0.12);
    ry = n * uniform(rng, 0.05, 0.12);
    rz = depth * uniform(rng, 0.08, 0.16) + 0.75;
    oedema = uniform(rng, 1.6, 2.2);
    c_oed = uniform(rng, 1.35, 1.8);
    c_enh = uniform(rng, 1.1, 1.5);
    c_nec = uniform(rng, 0.5, 0.9);
    core_shape.emplace(rng);
    oedema_shape.emplace(rng);
  }

  for (int z = 0; z < depth; ++z) {
    for (int y = 0; y < n; ++y) {
      for (int x = 0; x < n; ++x) {
        const std::size_t i = (static_cast<std::size_t>(z) * n + y) * n + x;
        const double ux = (x - cx) / ax, uy = (y - cy) / ay, uz = (z - cz) / az;
        const double r = std::sqrt(ux * ux + uy * uy + uz * uz);
        if (r >= 1.0) continue;
        double value;
        if (r >= 0.88) {
          value = skull * (1.0 + noise * normal(rng));
        } else if (r >= 0.82) {
          value = csf * (1.0 + 0.2 * normal(rng));
        } else {
          value = brain * (1.0 + 0.1 * texture(double(x) / n, double(y) / n, double(z) / depth) +
                           noise * normal(rng));
          for (double side : {-1.0, 1.0}) {
            double ex = (x - cx - side * vx) / vrx, ey = (y - cy - vy) / vry, ez = (z - cz) / vrz;
            if (ex * ex + ey * ey + ez * ez < 1.0) value = csf * 1.5 * (1.0 + 0.2 * normal(rng));
          }
          if (tumor) {
            const double dx = (x - tx) / rx, dy = (y - ty) / ry, dz = (z - tz) / rz;
            const double rho = std::sqrt(dx * dx + dy * dy + dz * dz);
            const double theta = std::atan2(dy, dx);
            const double phi = rho > 0 ? std::acos(std::clamp(dz / rho, -1.0, 1.0)) : 0.0;
            const double core = (*core_shape)(theta, phi);
            std::uint8_t label = 0;
            if (rho < 0.55 * core) {
              label = 1;
              value = brain * c_nec * (1.0 + noise * normal(rng));
            } else if (rho < core) {
              label = 4;
              value = brain * c_enh * (1.0 + noise * normal(rng));
            } else if (rho < oedema * (*oedema_shape)(theta, phi)) {
              label = 2;
              value = brain * c_oed * (1.0 + noise * normal(rng));
            }
            v.seg[i] = label;
          }
        }
        v.flair[i] = static_cast<float>(std::clamp(std::round(value), 1.0, 1400.0));
      }
    }
  }
  return v;
}

PhantomImage make_kaggle_phantom(int base, bool tumor, std::uint64_t seed) {
  if (base < 16) {
    throw std::invalid_argument("make_kaggle_phantom: base size " + std::to_string(base) +
                                " is below 16");
  }
  std::mt19937_64 rng(seed);
  PhantomImage im;
  im.height = std::max(16, static_cast<int>(std::lround(base * uniform(rng, 0.8, 1.25))));
  im.width = std::max(16, static_cast<int>(std::lround(im.height * uniform(rng, 0.75, 1.35))));
  const int h = im.height, w = im.width;
  im.pixels.assign(static_cast<std::size_t>(h) * w, 0);

  // Photographed scans: a non-black, noisy background, a head that fills less of the frame, a
  // gamma curve and a brain level that vary image to image.
  const double background = uniform(rng, 3, 25), brain = uniform(rng, 80, 150);
  const double skull = uniform(rng, 200, 250), gamma = uniform(rng, 0.7, 1.4);
  const double cx = w / 2.0 + uniform(rng, -0.05, 0.05) * w;
  const double cy = h / 2.0 + uniform(rng, -0.05, 0.05) * h;
  const double ax = w * uniform(rng, 0.3, 0.42), ay = h * uniform(rng, 0.33, 0.44);
  const Texture texture(rng);
  double tx = 0, ty = 0, tr = 1, bright = 1;
  std::optional<NoisyRadius> shape;
  // The tumour draws from its own stream, so a "yes" and a "no" image of one seed differ only
  // inside the tumour.
  std::mt19937_64 trng(seed ^ 0x5BD1E9955BD1E995ull);
  if (tumor) {
    tx = cx + ax * uniform(trng, -0.4, 0.4);
    ty = cy + ay * uniform(trng, -0.4, 0.4);
    tr = std::min(ax, ay) * uniform(trng, 0.15, 0.35);
    bright = uniform(trng, 1.4, 1.9);
    shape.emplace(trng);
  }
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double ux = (x - cx) / ax, uy = (y - cy) / ay;
      const double r = std::sqrt(ux * ux + uy * uy);
      double value = background + 4.0 * normal(rng);
      if (r < 1.0 && r >= 0.9) {
        value = skull + 8.0 * normal(rng);
      } else if (r < 0.9) {
        value = brain * (1.0 + 0.15 * texture(double(x) / w, double(y) / h, 0.5)) + 6 * normal(rng);
        if (tumor) {
          const double dx = (x - tx) / tr, dy = (y - ty) / tr;
          const double rho = std::sqrt(dx * dx + dy * dy);
          if (rho < (*shape)(std::atan2(dy, dx), 1.0)) value = brain * bright + 6 * normal(trng);
        }
      }
      value = 255.0 * std::pow(std::clamp(value, 0.0, 255.0) / 255.0, gamma);
      im.pixels[static_cast<std::size_t>(y) * w + x] =
          static_cast<std::uint8_t>(std::clamp(std::lround(value), 0l, 255l));
    }
  }
  return im;
}

const char* scan_case_name(ScanCase c) {
  switch (c) {
    case ScanCase::t1:
      return "t1";
    case ScanCase::t2_bright_csf:
      return "t2_bright_csf";
    case ScanCase::flair_bright_lesion:
      return "flair_bright_lesion";
    case ScanCase::dark_lesion:
      return "dark_lesion";
    case ScanCase::bright_skull:
      return "bright_skull";
    case ScanCase::text_and_ruler:
      return "text_and_ruler";
    case ScanCase::frame:
      return "frame";
    case ScanCase::black_padding:
      return "black_padding";
    case ScanCase::off_centre:
      return "off_centre";
    case ScanCase::sagittal:
      return "sagittal";
    case ScanCase::coronal:
      return "coronal";
  }
  return "?";
}

namespace {

// Tissue levels (0..255 before the gamma curve) of one exported scan.
struct ScanContrast {
  double scalp, bone, csf, grey_matter, white_matter, lesion;
};

ScanContrast draw_contrast(ScanCase c, double background, std::mt19937_64& rng) {
  const double bone = background + uniform(rng, 5, 25);
  switch (c) {
    case ScanCase::t2_bright_csf:
      return {uniform(rng, 110, 160), bone,
              uniform(rng, 200, 245), uniform(rng, 105, 125),
              uniform(rng, 75, 95),   uniform(rng, 190, 240)};
    case ScanCase::flair_bright_lesion:
      return {uniform(rng, 80, 130), bone,
              uniform(rng, 25, 45),  uniform(rng, 95, 115),
              uniform(rng, 80, 100), uniform(rng, 205, 250)};
    case ScanCase::bright_skull:
      return {uniform(rng, 220, 255), uniform(rng, 200, 240), uniform(rng, 25, 45),
              uniform(rng, 60, 80),   uniform(rng, 80, 100),  uniform(rng, 110, 140)};
    default:  // T1-like
      return {uniform(rng, 170, 230), bone,
              uniform(rng, 25, 45),   uniform(rng, 85, 105),
              uniform(rng, 115, 145), uniform(rng, 45, 65)};
  }
}

// A 7-segment glyph of height `ch` and stroke `stroke` with its top-left corner at (x0, y0):
// burnt-in text at the scale of real annotations.
void draw_glyph(std::vector<double>& v, int h, int w, int x0, int y0, int ch, int stroke,
                double level, std::mt19937_64& rng) {
  const int cw = std::max(3, ch * 3 / 5), mid = y0 + ch / 2 - stroke / 2;
  auto rect = [&](int xa, int ya, int xb, int yb) {
    for (int y = std::max(0, ya); y < std::min(h, yb); ++y) {
      for (int x = std::max(0, xa); x < std::min(w, xb); ++x) {
        v[static_cast<std::size_t>(y) * w + x] = level;
      }
    }
  };
  const unsigned segments = 1u + static_cast<unsigned>(uniform_below(rng, 127));
  if (segments & 1u) rect(x0, y0, x0 + cw, y0 + stroke);                  // top
  if (segments & 2u) rect(x0, mid, x0 + cw, mid + stroke);                // middle
  if (segments & 4u) rect(x0, y0 + ch - stroke, x0 + cw, y0 + ch);        // bottom
  if (segments & 8u) rect(x0, y0, x0 + stroke, mid + stroke);             // upper left
  if (segments & 16u) rect(x0 + cw - stroke, y0, x0 + cw, mid + stroke);  // upper right
  if (segments & 32u) rect(x0, mid, x0 + stroke, y0 + ch);                // lower left
  if (segments & 64u) rect(x0 + cw - stroke, mid, x0 + cw, y0 + ch);      // lower right
}

}  // namespace

ScanPhantom make_scan_phantom(ScanCase c, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  ScanPhantom im;
  // 150..700 pixels, small sizes more often (as in the Kaggle set, and quicker to test).
  const double u = uniform01(rng);
  const int side = 150 + static_cast<int>(std::lround(550 * u * u));
  const int pad = c == ScanCase::black_padding
                      ? std::max(4, static_cast<int>(side * uniform(rng, 0.05, 0.12)))
                      : 0;
  // The scan itself (h x w) and, around it, exact-black padding on the left and right.
  const int h = side;
  const int w = std::clamp(static_cast<int>(side * uniform(rng, 0.8, 1.25)), 150, 700);
  const int W = w + 2 * pad;
  im.height = h;
  im.width = W;

  const double background = uniform(rng, 0, 25), noise = uniform(rng, 0.5, 5);
  const double slope = uniform(rng, -8, 8), gamma = uniform(rng, 0.8, 1.25);
  const ScanContrast k = draw_contrast(c, background, rng);
  const bool lesion = c == ScanCase::flair_bright_lesion || c == ScanCase::dark_lesion ||
                      c == ScanCase::t2_bright_csf || uniform01(rng) < 0.3;

  double cx = w / 2.0 + uniform(rng, -0.04, 0.04) * w;
  double cy = h / 2.0 + uniform(rng, -0.04, 0.04) * h;
  double ax = w * uniform(rng, 0.28, 0.40), ay = h * uniform(rng, 0.30, 0.42);
  if (c == ScanCase::off_centre) {
    cx += (uniform01(rng) < 0.5 ? -1 : 1) * uniform(rng, 0.12, 0.22) * w;
    cy += (uniform01(rng) < 0.5 ? -1 : 1) * uniform(rng, 0.04, 0.15) * h;
  }
  if (c == ScanCase::sagittal || c == ScanCase::coronal) {
    ay = h * uniform(rng, 0.28, 0.34);  // room below for the neck
    cy = h * uniform(rng, 0.36, 0.42);
  }
  const double wobble = uniform(rng, 0, 0.04), phase = uniform(rng, 0, 2 * kPi);
  const int lobes = 2 + static_cast<int>(uniform_below(rng, 3));
  const double facing = uniform01(rng) < 0.5 ? -1.0 : 1.0;  // sagittal: nose to the left/right
  const double neck_half =
      ax * (c == ScanCase::coronal ? uniform(rng, 0.45, 0.6) : uniform(rng, 0.35, 0.45));
  const double neck_x = cx - (c == ScanCase::sagittal ? facing * 0.2 * ax : 0.0);
  const double neck_level = 0.5 * (k.grey_matter + k.white_matter);
  // Ventricles either side of the midline; sulci as thin CSF clefts through the cortex.
  const double vx = 0.18 * ax, vrx = 0.12 * ax, vry = uniform(rng, 0.22, 0.32) * ay;
  const double sulci = uniform(rng, 14, 24), sulci_phase = uniform(rng, 0, 2 * kPi);
  // Broken skull ring: one to three sectors where the bright ring is only as bright as brain.
  double gaps[3];
  const int gap_count =
      c == ScanCase::bright_skull ? 1 + static_cast<int>(uniform_below(rng, 3)) : 0;
  const double gap_width = uniform(rng, 0.04, 0.12);
  for (double& g : gaps) g = uniform(rng, -kPi, kPi);
  const Texture texture(rng);
  std::mt19937_64 lrng(seed ^ 0x2545F4914F6CDD1Dull);
  const double lx = cx + ax * uniform(lrng, -0.35, 0.35), ly = cy + ay * uniform(lrng, -0.35, 0.35);
  const double lr = std::min(ax, ay) * (c == ScanCase::dark_lesion ? uniform(lrng, 0.25, 0.4)
                                                                   : uniform(lrng, 0.15, 0.35));
  const NoisyRadius lesion_shape(lrng);

  std::vector<double> v(static_cast<std::size_t>(h) * w);
  std::vector<std::uint8_t> head(v.size(), 0);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const std::size_t p = static_cast<std::size_t>(y) * w + x;
      double value = background + slope * (x - w / 2.0) / w + noise * normal(rng);
      const double ux = (x - cx) / ax, uy = (y - cy) / ay;
      // Beyond 1 + wobble no head pixel can lie; skip the angle there (it is most pixels).
      const bool near = ux * ux + uy * uy < (1.0 + wobble) * (1.0 + wobble);
      const double theta = near ? std::atan2(uy, ux) : 0.0;
      const double rho =
          near ? std::hypot(ux, uy) / (1.0 + wobble * std::sin(lobes * theta + phase)) : 2.0;
      bool inside = rho < 1.0;
      if (c == ScanCase::sagittal) {
        const double nx = (x - (cx + facing * 0.97 * ax)) / (0.13 * ax);
        const double ny = (y - (cy + 0.2 * ay)) / (0.2 * ay);
        if (nx * nx + ny * ny < 1.0) inside = true;
      }
      const bool neck = (c == ScanCase::sagittal || c == ScanCase::coronal) && y > cy + 0.5 * ay &&
                        std::abs(x - neck_x) < neck_half;
      const double tex = inside || neck ? texture(double(x) / w, double(y) / h, 0.5) : 0.0;
      if (inside || neck) {
        head[p] = 1;
        value = neck_level * (1.0 + 0.1 * tex);
      }
      if (rho < 1.0) {
        bool gap = false;
        for (int g = 0; g < gap_count; ++g) {
          gap = gap || std::abs(std::remainder(theta - gaps[g], 2 * kPi)) < gap_width;
        }
        if (rho >= 0.88) {
          value = gap ? k.grey_matter : rho >= 0.93 ? k.scalp : k.bone;
        } else if (rho >= 0.84) {
          value = k.csf;
        } else {
          value = rho > 0.7 || tex > 0.35 ? k.grey_matter : k.white_matter;
          if (rho > 0.72 && std::abs(std::sin(sulci * theta + sulci_phase + 3 * rho)) < 0.1) {
            value = k.csf;
          }
          for (double s : {-1.0, 1.0}) {
            const double ex = (x - cx - s * vx) / vrx, ey = (y - cy + 0.05 * ay) / vry;
            if (ex * ex + ey * ey < 1.0) value = k.csf;
          }
          if (lesion) {
            const double dx = (x - lx) / lr, dy = (y - ly) / lr;
            if (std::hypot(dx, dy) < lesion_shape(std::atan2(dy, dx), 1.0) && rho < 0.8) {
              value = k.lesion;
            }
          }
        }
        value *= 1.0 + 0.04 * normal(rng);
      }
      v[p] = value;
    }
  }

  const double text_level = uniform(rng, 180, 255);
  if (c == ScanCase::text_and_ruler || uniform01(rng) < 0.2) {
    const int ch = std::max(7, static_cast<int>(side * uniform(rng, 0.025, 0.045)));
    const int stroke = std::max(1, ch / 7);
    for (int line = 0; line < 3; ++line) {
      const bool right = uniform01(rng) < 0.5, bottom = uniform01(rng) < 0.5;
      const int glyphs = 3 + static_cast<int>(uniform_below(rng, 6));
      const int step = ch * 4 / 5;
      int x0 = right ? w - 3 - glyphs * step : 3,
          y0 = bottom ? h - 3 - ch - line * (ch + 3) : 3 + line * (ch + 3);
      for (int g = 0; g < glyphs; ++g, x0 += step) {
        draw_glyph(v, h, w, x0, y0, ch, stroke, text_level, rng);
      }
    }
    // A ruler: a line along one side with a tick every few pixels.
    const int thick = std::max(1, static_cast<int>(std::lround(side * uniform(rng, 0.001, 0.004))));
    const int inset = static_cast<int>(side * uniform(rng, 0.02, 0.05));
    const int length = static_cast<int>(h * uniform(rng, 0.3, 0.7));
    const int y_start = static_cast<int>(uniform(rng, 0.05, 0.25) * h);
    const int tick_every = 6 + static_cast<int>(uniform_below(rng, 12));
    const bool left = uniform01(rng) < 0.5;
    for (int y = y_start; y < std::min(h, y_start + length); ++y) {
      const int len = (y - y_start) % tick_every < stroke ? std::max(3, ch / 2) : thick;
      for (int d = 0; d < len; ++d) {
        const int x = left ? inset + d : w - 1 - inset - d;
        if (x >= 0 && x < w) v[static_cast<std::size_t>(y) * w + x] = text_level;
      }
    }
  }
  if (c == ScanCase::frame || uniform01(rng) < 0.1) {
    const int thick = std::max(1, static_cast<int>(std::lround(side * uniform(rng, 0.001, 0.005))));
    const int inset = static_cast<int>(side * uniform(rng, 0, 0.03));
    for (int y = inset; y < h - inset; ++y) {
      for (int x = inset; x < w - inset; ++x) {
        const bool edge = y < inset + thick || y >= h - inset - thick || x < inset + thick ||
                          x >= w - inset - thick;
        if (edge) v[static_cast<std::size_t>(y) * w + x] = text_level;
      }
    }
  }

  im.grey.assign(static_cast<std::size_t>(h) * W, 0);
  im.head.assign(im.grey.size(), 0);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const std::size_t from = static_cast<std::size_t>(y) * w + x;
      const std::size_t to = static_cast<std::size_t>(y) * W + x + pad;
      const double g = 255.0 * std::pow(std::clamp(v[from], 0.0, 255.0) / 255.0, gamma);
      im.grey[to] = static_cast<std::uint8_t>(std::lround(g));
      im.head[to] = head[from];
    }
  }
  im.jpeg_quality = uniform01(rng) < 2.0 / 3.0 ? 30 + static_cast<int>(uniform_below(rng, 66)) : 0;
  if (im.jpeg_quality == 0 && uniform01(rng) < 0.25) {
    // A colour export: each channel scaled a little differently (a warm or cold film tint).
    const double tint[3] = {uniform(rng, 0.8, 1.0), uniform(rng, 0.8, 1.0), uniform(rng, 0.7, 1.0)};
    im.rgb.resize(im.grey.size() * 3);
    for (std::size_t p = 0; p < im.grey.size(); ++p) {
      for (int ch = 0; ch < 3; ++ch) {
        im.rgb[3 * p + ch] = static_cast<std::uint8_t>(std::lround(im.grey[p] * tint[ch]));
      }
    }
  }
  return im;
}

bool phantom_subject_has_tumor(int index) {
  return index % 4 != 1;
}

std::string phantom_subject_id(int index) {
  char id[64];
  std::snprintf(id, sizeof id, "BraTS20_Training_%03d", index + 1);
  return id;
}

}  // namespace glia::data
