// Geometry of the BraTS-like and Kaggle-like phantoms in memory; see phantom.h. The file writing
// is in phantom_dataset.cpp.
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

bool phantom_subject_has_tumor(int index) {
  return index % 4 != 1;
}

std::string phantom_subject_id(int index) {
  char id[64];
  std::snprintf(id, sizeof id, "BraTS20_Training_%03d", index + 1);
  return id;
}

}  // namespace glia::data
