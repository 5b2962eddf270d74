// Loader throughput: slices per second through ManifestDataset + transforms + batching, for 0, 1
// and 2 worker threads with the training augmentation (skull mask on Kaggle slices, flips,
// rotations, intensity shift / scale / noise) and for 0 workers without it. The configurations
// run in interleaved rounds in one process (side by side), each round a full epoch, and the best
// round of each is reported with its ratio to the augmented single-thread run.
// By default it writes a set of synthetic 256x256 slices (half BraTS-like with masks, half
// Kaggle-like without) and their manifest under a temporary folder, removed at the end; --data DIR
// reads DIR/manifest.csv instead.
// Usage: glia-bench-loader [--data DIR] [--split S] [--count N] [--batch B] [--rounds R] [--quick]
// The smoke run (--quick) is the ctest cpu:bench.loader_quick.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "bench/args.h"
#include "data/input/dataset.h"
#include "data/input/loader.h"
#include "data/input/sample_rng.h"
#include "data/input/transforms.h"
#include "data/prep/preprocess.h"
#include "io/manifest.h"
#include "io/slice.h"

namespace {

namespace fs = std::filesystem;
using namespace glia::data;
using namespace glia::io;

struct Options {
  fs::path data;
  std::string split = "train";
  std::size_t count = 512;
  std::size_t batch = 16;
  int rounds = 3;
};

// A synthetic slice: a textured disk (the brain) in a darker background, a bright skull ring,
// and for BraTS-like slices a small bright blob marked by the mask.
Slice synthetic_slice(std::size_t i) {
  SampleRng rng(0, 0, i, RngStream::synthetic);
  const int n = kSliceSize;
  Slice s;
  s.height = s.width = n;
  s.image.resize(static_cast<std::size_t>(n) * n);
  const bool brats = i % 2 == 0;
  const double cx = n / 2.0 + rng.uniform(-10, 10), cy = n / 2.0 + rng.uniform(-10, 10);
  const double radius = rng.uniform(80, 100);
  const double tx = cx + rng.uniform(-30, 30), ty = cy + rng.uniform(-30, 30);
  const double tumour = rng.uniform(8, 20);
  const bool has_tumour = i % 4 < 2;
  std::vector<std::uint8_t> mask(s.image.size(), 0);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      const std::size_t p = static_cast<std::size_t>(y) * n + x;
      const double r = std::hypot(x - cx, y - cy);
      float v = -1.0f + 0.1f * static_cast<float>(rng.normal());
      if (r < radius) v = 0.3f + 0.3f * static_cast<float>(rng.normal());
      if (!brats && r > radius + 6 && r < radius + 12) v = 2.5f;
      if (has_tumour && std::hypot(x - tx, y - ty) < tumour) {
        v = 2.0f;
        mask[p] = 1;
      }
      s.image[p] = v;
    }
  s.label = has_tumour ? 1 : 0;
  s.source = brats ? "brats" : "kaggle";
  s.patient = "synthetic" + std::to_string(i / 8);
  s.slice = static_cast<int>(i % 8);
  if (brats) s.mask = std::move(mask);
  return s;
}

// Writes `count` slices and their manifest (all in the train split) under `dir`.
fs::path write_synthetic(const fs::path& dir, std::size_t count) {
  fs::create_directories(dir / "slices");
  std::vector<ManifestEntry> rows;
  for (std::size_t i = 0; i < count; ++i) {
    const Slice s = synthetic_slice(i);
    ManifestEntry e;
    e.path = "slices/" + std::to_string(i) + ".npz";
    e.split = "train";
    e.source = s.source;
    e.patient = s.patient;
    e.slice = s.slice;
    e.label = s.label;
    e.has_mask = s.mask.has_value();
    if (s.mask) e.tumor_pixels = std::count(s.mask->begin(), s.mask->end(), 1);
    write_slice(dir / e.path, s);
    rows.push_back(std::move(e));
  }
  write_manifest(dir / "manifest.csv", rows);
  return dir / "manifest.csv";
}

struct Config {
  std::string name;
  bool augment;
  int workers;
  double best_s = INFINITY;
  std::size_t slices = 0;
};

double run_epoch(const std::shared_ptr<const Dataset>& data, const Config& c, std::size_t batch,
                 std::uint64_t epoch, std::size_t& slices) {
  AugmentConfig aug;
  aug.skull_sources = {"kaggle"};
  SamplerConfig sc;
  sc.seed = 1;
  LoaderConfig lc;
  lc.batch_size = batch;
  lc.workers = c.workers;
  lc.seed = 2;
  Loader loader(data, Sampler(*data, sc), c.augment ? train_transforms(aug) : val_transforms({}),
                lc);
  const auto start = std::chrono::steady_clock::now();
  loader.start_epoch(epoch);
  slices = 0;
  while (auto b = loader.next()) slices += b->size();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int run(const Options& o) {
  fs::path manifest = o.data / "manifest.csv";
  fs::path temp;
  if (o.data.empty()) {
    temp = fs::temp_directory_path() / ("glia_bench_loader_" + std::to_string(::getpid()));
    fs::remove_all(temp);
    const auto start = std::chrono::steady_clock::now();
    manifest = write_synthetic(temp, o.count);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("wrote %zu synthetic %dx%d slices in %.2f s (%.0f slices/s)\n", o.count, kSliceSize,
                kSliceSize, s, static_cast<double>(o.count) / s);
  }
  try {
    auto data = std::make_shared<ManifestDataset>(manifest, o.split);
    if (data->size() == 0) {
      throw std::runtime_error(manifest.string() + " lists no slices of split " + o.split);
    }
    std::printf("dataset: %zu slices (%s, split %s), batch %zu, %d rounds, %u hardware threads\n",
                data->size(), manifest.string().c_str(), o.split.c_str(), o.batch, o.rounds,
                std::thread::hardware_concurrency());
    std::vector<Config> configs = {{"no augmentation, 0 workers", false, 0},
                                   {"augmentation, 0 workers", true, 0},
                                   {"augmentation, 1 worker", true, 1},
                                   {"augmentation, 2 workers", true, 2}};
    for (int r = 0; r < o.rounds; ++r) {
      for (Config& c : configs) {
        const double s = run_epoch(data, c, o.batch, static_cast<std::uint64_t>(r), c.slices);
        c.best_s = std::min(c.best_s, s);
      }
    }
    const double base = static_cast<double>(configs[1].slices) / configs[1].best_s;
    std::printf("%-28s %12s %12s\n", "configuration", "slices/s", "vs aug/0w");
    for (const Config& c : configs) {
      const double rate = static_cast<double>(c.slices) / c.best_s;
      std::printf("%-28s %12.1f %11.2fx\n", c.name.c_str(), rate, rate / base);
    }
  } catch (...) {
    if (!temp.empty()) fs::remove_all(temp);
    throw;
  }
  if (!temp.empty()) fs::remove_all(temp);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    for (glia::bench::Args args(argc, argv); args.next();) {
      if (args.is("--data")) {
        o.data = args.value();
      } else if (args.is("--split")) {
        o.split = args.value();
      } else if (args.is("--count")) {
        o.count = static_cast<std::size_t>(args.integer(1));
      } else if (args.is("--batch")) {
        o.batch = static_cast<std::size_t>(args.integer(1));
      } else if (args.is("--rounds")) {
        o.rounds = args.integer(1);
      } else if (args.is("--quick")) {
        o.count = 32;
        o.batch = 8;
        o.rounds = 1;
      } else {
        args.unknown(
            "glia-bench-loader [--data DIR] [--split S] [--count N] [--batch B] [--rounds R] "
            "[--quick]");
      }
    }
    if (o.count == 0 || o.batch == 0 || o.rounds <= 0) {
      throw std::invalid_argument("--count, --batch and --rounds must be positive");
    }
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "glia-bench-loader: %s\n", e.what());
    return 1;
  }
}
