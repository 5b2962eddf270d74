// glia-model and glia-infer end to end: a generated checkpoint and generated image files in,
// the JSON reports, masks and raw logits out, checked against the model's own forward on the
// same preprocessed inputs; bad checkpoints, and bad inputs with --fail-fast, fail with a message
// naming them and write no reports; one bad file among good ones gets an error report, exit
// status 2 and a summary, the others their outputs. A phantom FLAIR volume with an oblique affine
// and anisotropic voxels gets a mask in its own geometry, checked against the predictor on
// glia-prep's slices, and a tumour volume from its voxel size. The full version: a folder input
// with --gradcam and --mc-dropout against grad_cam and overlay_cam on the same inputs,
// conditional masks on both sides of --cls-threshold, and an empty folder reported by name.
// --precision bf16 gives the logits of the model's forward under that precision.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "data/prep/phantom.h"
#include "data/prep/preprocess.h"
#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "io/image_ops.h"
#include "io/nifti.h"
#include "io/slice.h"
#include "nets/explain/gradcam.h"
#include "nets/infer/inference.h"
#include "nets/model/checkpoint.h"
#include "tests/common/tolerance.h"

namespace glia::nets {
namespace {

namespace fs = std::filesystem;
using glia::testing::all_close;

class InferAppTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("glia_infer_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs a command line; returns its exit status, with stderr kept in dir_/stderr.txt.
  int run(const std::string& command) const {
    const int status = std::system((command + " 2> " + (dir_ / "stderr.txt").string()).c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string stderr_text() const { return io::read_file(dir_ / "stderr.txt"); }

  fs::path write_image(const std::string& name, int height, int width, unsigned seed) const {
    std::mt19937 rng(seed);
    std::vector<std::uint8_t> pixels(static_cast<std::size_t>(height) * width);
    // A bright disc on a noisy background, like a scan with a lesion.
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        const double r = std::hypot(y - height / 2.0, x - width / 3.0);
        pixels[static_cast<std::size_t>(y) * width + x] =
            static_cast<std::uint8_t>(r < height / 5.0 ? 200 + rng() % 50 : 20 + rng() % 60);
      }
    }
    const fs::path path = dir_ / name;
    io::write_png_gray(path, pixels, height, width);
    return path;
  }

  // A preprocessed slice: a z-scored disc, as the data preparation writes them.
  fs::path write_npz(const std::string& name, int height, int width, unsigned seed) const {
    std::mt19937 rng(seed);
    std::normal_distribution<float> noise(0.0f, 0.3f);
    io::Slice s;
    s.height = height;
    s.width = width;
    s.image.resize(static_cast<std::size_t>(height) * width);
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        const double r = std::hypot(y - height / 2.0, x - width / 2.0);
        s.image[static_cast<std::size_t>(y) * width + x] =
            (r < height / 4.0 ? 1.5f : -0.5f) + noise(rng);
      }
    }
    s.label = 1;
    s.source = "brats";
    s.patient = "p1";
    s.slice = 3;
    const fs::path path = dir_ / name;
    io::write_slice(path, s);
    return path;
  }

  fs::path dir_;
};

const std::string kInfer = GLIA_INFER_BIN;

double sigmoid(float logit) {
  return 1.0 / (1.0 + std::exp(-double{logit}));
}
const std::string kModel = GLIA_MODEL_BIN;

TEST_F(InferAppTest, WritesReportsMasksAndRawLogitsOfTheModelsForward) {
  const fs::path ckpt = dir_ / "m.safetensors";
  ASSERT_EQ(run(kModel + " --init --seed 5 --base-filters 4 --depth 2 --out " + ckpt.string() +
                " > /dev/null"),
            0)
      << stderr_text();
  const fs::path a = write_image("scan_a.png", 96, 120, 1);
  const fs::path b = write_image("scan_b.png", 256, 256, 2);
  const fs::path c = write_image("scan_c.png", 64, 64, 3);
  const fs::path d = write_npz("slice_d.npz", 256, 256, 4);
  // The reference: the checkpoint's model in eval mode on the same preprocessing.
  LoadedModel loaded = load_checkpoint(ckpt);
  loaded.model->eval();
  std::vector<float> pixels;
  for (const fs::path& p : {a, b, c}) {
    const std::vector<float> v = data::prepare_image_file(p);
    pixels.insert(pixels.end(), v.begin(), v.end());
  }
  // A slice is used as stored.
  const std::vector<float> stored = io::read_slice(d).image;
  pixels.insert(pixels.end(), stored.begin(), stored.end());
  NoGradGuard no_grad;
  const MultiTaskOutput ref =
      loaded.model->forward(from_vector(pixels, {4, 1, 256, 256}), true, true);
  // The threshold at the median probability, so the masks are neither empty nor full.
  std::vector<float> sorted = ref.seg_logits.to_vector<float>();
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
  const double threshold = sigmoid(sorted[sorted.size() / 2]);
  char threshold_text[32];
  std::snprintf(threshold_text, sizeof threshold_text, "%.17g", threshold);

  const fs::path out = dir_ / "out";
  const fs::path raw = dir_ / "raw.safetensors";
  ASSERT_EQ(
      run(kInfer + " --checkpoint " + ckpt.string() + " --input " + a.string() + " " + b.string() +
          " " + c.string() + " " + d.string() + " --out " + out.string() + " --save-raw " +
          raw.string() + " --batch 2 --threshold " + threshold_text + " --device cpu > /dev/null"),
      0)
      << stderr_text();

  const io::SafetensorsContent logits = io::load_safetensors(raw);
  ASSERT_EQ(logits.tensors.at("seg_logits").shape(), (Shape{4, 1, 256, 256}));
  ASSERT_EQ(logits.tensors.at("cls_logits").shape(), (Shape{4, 2}));
  const std::vector<float> seg = logits.tensors.at("seg_logits").to_vector<float>();
  const std::vector<float> cls = logits.tensors.at("cls_logits").to_vector<float>();
  EXPECT_TRUE(all_close(seg, ref.seg_logits.to_vector<float>()));
  EXPECT_TRUE(all_close(cls, ref.cls_logits.to_vector<float>()));

  std::int64_t all_pixels = 0;
  int i = 0;
  for (const char* name : {"scan_a", "scan_b", "scan_c", "slice_d"}) {
    SCOPED_TRACE(name);
    const auto report = nlohmann::json::parse(io::read_file(out / (std::string(name) + ".json")));
    const double l0 = cls[2 * i], l1 = cls[2 * i + 1];
    EXPECT_NEAR(report.at("tumour_probability").get<double>(), 1.0 / (1.0 + std::exp(l0 - l1)),
                1e-6);
    EXPECT_EQ(report.at("predicted_class").get<int>(), l1 > l0 ? 1 : 0);
    const io::GrayImage mask = io::read_gray(out / (std::string(name) + "_mask.png"));
    ASSERT_EQ(mask.height, 256);
    ASSERT_EQ(mask.width, 256);
    std::int64_t count = 0;
    for (std::size_t j = 0; j < mask.pixels.size(); ++j) {
      const bool tumour = sigmoid(seg[static_cast<std::size_t>(i) * 65536 + j]) > threshold;
      ASSERT_EQ(mask.pixels[j], tumour ? 255.0f : 0.0f) << "pixel " << j;
      count += tumour;
    }
    EXPECT_EQ(report.at("tumour_pixels").get<std::int64_t>(), count);
    EXPECT_NEAR(report.at("tumour_percent").get<double>(), 100.0 * count / 65536.0, 1e-9);
    all_pixels += count;
    ++i;
  }
  EXPECT_GT(all_pixels, 0);
  EXPECT_LT(all_pixels, 4 * 65536);
}

TEST_F(InferAppTest, PrecisionFlagRunsTheModelInThatFormat) {
  const fs::path ckpt = dir_ / "m.safetensors";
  write_initial_checkpoint(ckpt, UNetConfig{.base_filters = 4, .depth = 2}, 3);
  const fs::path slice = write_npz("slice.npz", 64, 64, 5);
  LoadedModel loaded = load_checkpoint(ckpt);
  loaded.model->eval();
  const Tensor x = from_vector(io::read_slice(slice).image, {1, 1, 64, 64});
  NoGradGuard no_grad;
  const Tensor fp32 = loaded.model->forward(x, true, true).cls_logits;
  Tensor bf16;
  {
    const ScopedPrecision scope(Precision::bf16);
    bf16 = loaded.model->forward(x, true, true).cls_logits;
  }
  const fs::path raw = dir_ / "raw.safetensors";
  ASSERT_EQ(run(kInfer + " --checkpoint " + ckpt.string() + " --input " + slice.string() +
                " --out " + (dir_ / "out").string() + " --save-raw " + raw.string() +
                " --device cpu --precision bf16 > /dev/null"),
            0)
      << stderr_text();
  const std::vector<float> got =
      io::load_safetensors(raw).tensors.at("cls_logits").to_vector<float>();
  EXPECT_TRUE(all_close(got, bf16.to_vector<float>()));
  EXPECT_NE(got, fp32.to_vector<float>());
  EXPECT_EQ(run(kInfer + " --checkpoint " + ckpt.string() + " --input " + slice.string() +
                " --out " + (dir_ / "out").string() + " --precision fp8"),
            1);
  EXPECT_NE(stderr_text().find("--precision: unknown precision 'fp8'"), std::string::npos)
      << stderr_text();
}

TEST_F(InferAppTest, BadInputsFailNamingTheFileAndWriteNothing) {
  const fs::path ckpt = dir_ / "m.safetensors";
  write_initial_checkpoint(ckpt, UNetConfig{.base_filters = 2, .depth = 2}, 1);
  const fs::path good = write_image("good.png", 32, 32, 4);
  const fs::path out = dir_ / "out";

  // A missing input stops a --fail-fast run before any report is written.
  EXPECT_EQ(run(kInfer + " --checkpoint " + ckpt.string() + " --input " + good.string() + " " +
                (dir_ / "absent.png").string() + " --out " + out.string() + " --fail-fast"),
            1);
  EXPECT_NE(stderr_text().find("absent.png"), std::string::npos) << stderr_text();
  EXPECT_FALSE(fs::exists(out / "good.json")) << "no report before every input has been read";

  // A corrupt image.
  io::write_file_atomic(dir_ / "broken.png", "\x89PNG not really");
  EXPECT_NE(run(kInfer + " --checkpoint " + ckpt.string() + " --input " +
                (dir_ / "broken.png").string() + " --out " + out.string()),
            0);
  EXPECT_NE(stderr_text().find("broken.png"), std::string::npos) << stderr_text();

  // Not a checkpoint at all.
  EXPECT_NE(run(kInfer + " --checkpoint " + good.string() + " --input " + good.string() +
                " --out " + out.string()),
            0);
  EXPECT_NE(stderr_text().find("good.png"), std::string::npos) << stderr_text();

  // A checkpoint missing a key.
  io::SafetensorsContent content = io::load_safetensors(ckpt);
  content.tensors.erase("decoder.head.weight");
  io::save_safetensors(dir_ / "partial.safetensors", content.tensors, content.metadata);
  EXPECT_NE(run(kInfer + " --checkpoint " + (dir_ / "partial.safetensors").string() + " --input " +
                good.string() + " --out " + out.string()),
            0);
  EXPECT_NE(stderr_text().find("decoder.head.weight"), std::string::npos) << stderr_text();

  // Unknown flags and missing arguments.
  EXPECT_NE(run(kInfer + " --checkpoint " + ckpt.string() + " --out " + out.string()), 0);
  EXPECT_NE(stderr_text().find("--input"), std::string::npos) << stderr_text();
  EXPECT_NE(run(kInfer + " --frobnicate"), 0);
  EXPECT_FALSE(fs::exists(out / "good.json"));
}

// A BraTS-like FLAIR volume of 40 x 48 x 10 voxels (unequal sides, so a transpose cannot pass)
// with anisotropic voxels and an oblique affine, as qform and sform.
io::Volume phantom_flair() {
  const data::PhantomVolume phantom = data::make_brats_phantom(48, 10, true, 17);
  io::Volume v;
  v.nx = 40;
  v.ny = 48;
  v.nz = 10;
  for (int z = 0; z < 10; ++z) {
    for (int y = 0; y < 48; ++y) {
      for (int x = 0; x < 40; ++x) v.data.push_back(phantom.flair[(z * 48 + y) * 48 + x + 4]);
    }
  }
  v.dx = 0.9375f;
  v.dy = 1.25f;
  v.dz = 3.5f;
  const float angle = 0.3f, c = std::cos(angle), s = std::sin(angle);
  io::NiftiGeometry& g = v.geometry;
  g.qform_code = 1;
  g.sform_code = 1;
  g.quatern_b = std::sin(angle / 2);  // a rotation about x
  g.qoffset_x = 18.75f;
  g.qoffset_y = -30.0f;
  g.qoffset_z = -17.5f;
  g.qfac = -1.0f;
  g.srow = {{{v.dx, 0.0f, 0.0f, 18.75f},
             {0.0f, c * v.dy, s * v.dz, -30.0f},
             {0.0f, s * v.dy, -c * v.dz, -17.5f}}};
  g.xyz_units = 2;  // mm
  return v;
}

TEST_F(InferAppTest, VolumesGetAMaskInTheirOwnGeometryAndATumourVolume) {
  const fs::path ckpt = dir_ / "m.safetensors";
  write_initial_checkpoint(ckpt, UNetConfig{.base_filters = 2, .depth = 2}, 3);
  fs::create_directories(dir_ / "in");
  const io::Volume flair = phantom_flair();
  io::write_nifti(dir_ / "in" / "subject_flair.nii.gz", flair, io::NiftiDType::i16);
  write_image("in/scan.png", 40, 52, 8);
  // The reference: the checkpoint's predictor on glia-prep's preparation of each slice with brain,
  // its mask resized back to the slice with nearest neighbour.
  std::vector<std::int64_t> brain;
  std::vector<float> pixels;
  for (std::int64_t z = 0; z < flair.nz; ++z) {
    if (!data::slice_has_brain(data::axial_slice(flair, z))) continue;
    brain.push_back(z);
    const std::vector<float> x = data::prepare_axial_slice(flair, z);
    pixels.insert(pixels.end(), x.begin(), x.end());
  }
  ASSERT_GT(brain.size(), 2u);
  ASSERT_LT(brain.size(), 10u) << "the phantom's first and last slices hold no head";
  const Tensor x =
      from_vector(pixels, {static_cast<index_t>(brain.size()), 1, io::kSliceSize, io::kSliceSize});
  // An untrained model's segmentation sits on one side of 0.5: threshold between two of its
  // probabilities near the median instead, so that the mask is neither empty nor full.
  const PredictionBatch first = Predictor::from_checkpoint(ckpt, Device::cpu()).predict(x);
  std::vector<double> probabilities;
  const float* logits = first.seg_logits.data<float>();
  for (index_t i = 0; i < first.seg_logits.numel(); ++i)
    probabilities.push_back(sigmoid(logits[i]));
  std::sort(probabilities.begin(), probabilities.end());
  probabilities.erase(std::unique(probabilities.begin(), probabilities.end()), probabilities.end());
  const std::size_t mid = probabilities.size() * 3 / 4;
  char threshold[32];
  std::snprintf(threshold, sizeof threshold, "%.9g",
                (probabilities[mid] + probabilities[mid + 1]) / 2);
  const PredictionBatch ref =
      Predictor::from_checkpoint(
          ckpt, Device::cpu(),
          PredictOptions{.threshold = std::stod(threshold), .cls_threshold = 0})
          .predict(x);

  const fs::path out = dir_ / "out";
  // --cls-threshold 0: every slice with brain gets a mask, whatever the untrained model says.
  ASSERT_EQ(run(kInfer + " --checkpoint " + ckpt.string() + " --input " + (dir_ / "in").string() +
                " --out " + out.string() + " --cls-threshold 0 --threshold " + threshold +
                " > /dev/null"),
            0)
      << stderr_text();
  EXPECT_TRUE(fs::exists(out / "scan.json"));

  const io::Volume mask = io::read_nifti(out / "subject_flair_mask.nii.gz");
  EXPECT_EQ(mask.nx, flair.nx);
  EXPECT_EQ(mask.ny, flair.ny);
  EXPECT_EQ(mask.nz, flair.nz);
  EXPECT_EQ(mask.dx, flair.dx);
  EXPECT_EQ(mask.dy, flair.dy);
  EXPECT_EQ(mask.dz, flair.dz);
  EXPECT_EQ(mask.geometry, flair.geometry);

  const auto report = nlohmann::json::parse(io::read_file(out / "subject_flair.json"));
  ASSERT_EQ(report["slice_probabilities"].size(), 10u);
  std::vector<float> expected(mask.data.size(), 0.0f);
  const std::size_t plane = 40 * 48;
  for (std::size_t k = 0; k < brain.size(); ++k) {
    const Prediction& p = ref.predictions[k];
    EXPECT_NEAR(report["slice_probabilities"][brain[k]].get<double>(), p.tumour_probability, 1e-5);
    const std::vector<std::uint8_t> back =
        io::resize_nearest(p.mask, io::kSliceSize, io::kSliceSize, 48, 40);
    for (std::size_t j = 0; j < plane; ++j) {
      expected[static_cast<std::size_t>(brain[k]) * plane + j] = back[j] ? 1.0f : 0.0f;
    }
  }
  for (std::int64_t z = 0; z < 10; ++z) {
    const bool has_brain = std::find(brain.begin(), brain.end(), z) != brain.end();
    EXPECT_EQ(report["slice_probabilities"][z].is_null(), !has_brain) << "slice " << z;
  }
  EXPECT_EQ(report["slices"], 10);
  EXPECT_EQ(report["slices_with_brain"], brain.size());
  EXPECT_EQ(mask.data, expected);

  const auto voxels = std::count(mask.data.begin(), mask.data.end(), 1.0f);
  EXPECT_GT(voxels, 0);
  EXPECT_EQ(report["tumour_voxels"], voxels);
  const double voxel_mm3 = double{flair.dx} * flair.dy * flair.dz;
  EXPECT_NEAR(report["tumour_volume_ml"].get<double>(), voxels * voxel_mm3 / 1000.0, 1e-9);
  EXPECT_EQ(report["mask"], "subject_flair_mask.nii.gz");
}

TEST_F(InferAppTest, OneBadFileAmongManyIsReportedAndTheOthersGoOn) {
  const fs::path ckpt = dir_ / "m.safetensors";
  write_initial_checkpoint(ckpt, UNetConfig{.base_filters = 2, .depth = 2}, 1);
  const fs::path folder = dir_ / "scans";
  fs::create_directories(folder);
  write_image("scans/a.png", 48, 40, 1);
  write_image("scans/b.png", 32, 32, 2);
  write_image("scans/d.png", 40, 48, 3);
  // A PNG cut off half-way, as an interrupted copy leaves it.
  const std::string whole = io::read_file(write_image("scans/c.png", 64, 64, 4));
  io::write_file_atomic(folder / "c.png", whole.substr(0, whole.size() / 2));
  const std::string command =
      kInfer + " --checkpoint " + ckpt.string() + " --input " + folder.string() + " --out ";

  const fs::path out = dir_ / "out";
  EXPECT_EQ(run(command + out.string() + " > /dev/null"), 2);
  const std::string err = stderr_text();
  EXPECT_NE(err.find("1 of 4 inputs failed"), std::string::npos) << err;
  EXPECT_NE(err.find("c.png"), std::string::npos) << err;
  EXPECT_EQ(err.find("usage:"), std::string::npos) << "no usage text after a data error\n" << err;
  for (const char* name : {"a", "b", "d"}) {
    const auto report = nlohmann::json::parse(io::read_file(out / (std::string(name) + ".json")));
    EXPECT_TRUE(report.contains("tumour_probability")) << name;
    EXPECT_TRUE(fs::exists(out / (std::string(name) + "_panel.png"))) << name;
  }
  const auto failed = nlohmann::json::parse(io::read_file(out / "c.json"));
  EXPECT_EQ(failed["input"], (folder / "c.png").string());
  EXPECT_NE(failed["error"].get<std::string>().find("c.png"), std::string::npos) << failed;
  EXPECT_FALSE(failed.contains("tumour_probability"));
  EXPECT_FALSE(fs::exists(out / "c_panel.png"));

  // --fail-fast: the old behaviour, nothing written once an input cannot be read.
  const fs::path strict = dir_ / "strict";
  EXPECT_EQ(run(command + strict.string() + " --fail-fast > /dev/null"), 1);
  EXPECT_NE(stderr_text().find("c.png"), std::string::npos) << stderr_text();
  EXPECT_EQ(stderr_text().find("usage:"), std::string::npos) << stderr_text();
  EXPECT_FALSE(fs::exists(strict / "d.json"));
  EXPECT_FALSE(fs::exists(strict / "c.json"));

  // Argument errors still show the usage.
  EXPECT_EQ(run(command + out.string() + " --frobnicate"), 1);
  EXPECT_NE(stderr_text().find("usage:"), std::string::npos) << stderr_text();
}

TEST_F(InferAppTest, MixedSizesRunTogetherButCannotShareARawFile) {
  const fs::path ckpt = dir_ / "m.safetensors";
  write_initial_checkpoint(ckpt, UNetConfig{.base_filters = 2, .depth = 2}, 1);
  const fs::path image = write_image("image.png", 40, 40, 5);
  const fs::path small = write_npz("small.npz", 64, 64, 6);
  const fs::path out = dir_ / "out";
  ASSERT_EQ(run(kInfer + " --checkpoint " + ckpt.string() + " --input " + small.string() + " " +
                image.string() + " --out " + out.string() + " > /dev/null"),
            0)
      << stderr_text();
  EXPECT_EQ(io::read_gray(out / "small_mask.png").height, 64);
  EXPECT_EQ(io::read_gray(out / "image_mask.png").height, 256);
  EXPECT_NE(run(kInfer + " --checkpoint " + ckpt.string() + " --input " + small.string() + " " +
                image.string() + " --out " + out.string() + " --save-raw " +
                (dir_ / "raw.safetensors").string()),
            0);
  EXPECT_NE(stderr_text().find("--save-raw"), std::string::npos) << stderr_text();
  // Two inputs that would write the same report.
  EXPECT_NE(run(kInfer + " --checkpoint " + ckpt.string() + " --input " + image.string() + " " +
                (dir_ / "image.npz").string() + " --out " + out.string()),
            0);
  EXPECT_NE(stderr_text().find("image.json"), std::string::npos) << stderr_text();
}

TEST_F(InferAppTest, FolderWithGradCamAndMcDropout) {
  const fs::path ckpt = dir_ / "m.safetensors";
  write_initial_checkpoint(ckpt, UNetConfig{.base_filters = 2, .depth = 2, .cls_hidden = 8}, 3);
  fs::create_directories(dir_ / "in");
  const fs::path b = write_npz("in/b.npz", 32, 32, 7);
  const fs::path a = write_npz("in/a.npz", 32, 32, 8);
  const fs::path c = write_npz("in/c.npz", 32, 32, 9);
  io::write_file_atomic(dir_ / "in" / "readme.txt", "not an input");
  const fs::path out = dir_ / "out", raw = dir_ / "raw.safetensors";
  ASSERT_EQ(run(kInfer + " --checkpoint " + ckpt.string() + " --input " + (dir_ / "in").string() +
                " --out " + out.string() + " --gradcam --mc-dropout 3 --batch 2 --cls-threshold 0" +
                " --save-raw " + raw.string() + " > /dev/null"),
            0)
      << stderr_text();

  // The reference: grad_cam of the checkpoint's model on the inputs in name order.
  std::vector<float> pixels;
  std::vector<std::vector<float>> images;
  for (const fs::path& p : {a, b, c}) {
    images.push_back(io::read_slice(p).image);
    pixels.insert(pixels.end(), images.back().begin(), images.back().end());
  }
  LoadedModel loaded = load_checkpoint(ckpt);
  const GradCamResult ref = grad_cam(*loaded.model, from_vector(pixels, {3, 1, 32, 32}));
  const io::SafetensorsContent content = io::load_safetensors(raw);
  ASSERT_EQ(content.tensors.at("gradcam").shape(), (Shape{3, 1, 32, 32}));
  ASSERT_EQ(content.tensors.at("seg_variance").shape(), (Shape{3, 1, 32, 32}));
  const std::vector<float> cams = content.tensors.at("gradcam").to_vector<float>();
  EXPECT_TRUE(all_close(cams, ref.cams.to_vector<float>()));
  EXPECT_FALSE(fs::exists(out / "readme.json"));

  for (int i = 0; i < 3; ++i) {
    const std::string name = std::string(1, static_cast<char>('a' + i));
    SCOPED_TRACE(name);
    const auto report = nlohmann::json::parse(io::read_file(out / (name + ".json")));
    EXPECT_TRUE(report.at("mask_available").get<bool>());
    EXPECT_TRUE(fs::exists(out / (name + "_mask.png")));
    EXPECT_NEAR(report.at("tumour_probability").get<double>(), ref.probabilities[i], 1e-6);
    const auto& mc = report.at("mc_dropout");
    EXPECT_EQ(mc.at("passes").get<int>(), 3);
    EXPECT_EQ(report.at("recommendation").get<std::string>(),
              recommendation(mc.at("probability_mean").get<double>(),
                             mc.at("probability_std").get<double>()));
    EXPECT_GT(report.at("latency_ms").get<double>(), 0.0);
    // The overlay PNG is overlay_cam of the input and the CAM (read back as luma).
    const std::span<const float> cam(cams.data() + i * 1024, 1024);
    const std::vector<std::uint8_t> rgb = overlay_cam(images[i], cam, 32, 32);
    const io::GrayImage overlay = io::read_gray(out / (name + "_gradcam.png"));
    ASSERT_EQ(overlay.pixels.size(), 1024u);
    for (std::size_t j = 0; j < 1024; ++j) {
      const double luma = 0.299 * rgb[3 * j] + 0.587 * rgb[3 * j + 1] + 0.114 * rgb[3 * j + 2];
      ASSERT_NEAR(overlay.pixels[j], luma, 0.5) << "pixel " << j;
    }
    // input | Grad-CAM | mask.
    const io::GrayImage panel = io::read_gray(out / (name + "_panel.png"));
    EXPECT_EQ(panel.height, 32);
    EXPECT_EQ(panel.width, 96);
  }
}

TEST_F(InferAppTest, NoMaskBelowTheClassThresholdAndEmptyFoldersAreNamed) {
  const fs::path ckpt = dir_ / "m.safetensors";
  write_initial_checkpoint(ckpt, UNetConfig{.base_filters = 2, .depth = 2, .cls_hidden = 8}, 4);
  const fs::path x = write_npz("x.npz", 32, 32, 10);
  LoadedModel loaded = load_checkpoint(ckpt);
  const double p = grad_cam(*loaded.model, from_vector(io::read_slice(x).image, {1, 1, 32, 32}))
                       .probabilities[0];
  // One folder for both runs: the second must also remove the first's mask.
  const fs::path out = dir_ / "out";
  for (const double cut : {p - 1e-3, p + 1e-3}) {
    SCOPED_TRACE(cut);
    ASSERT_EQ(run(kInfer + " --checkpoint " + ckpt.string() + " --input " + x.string() + " --out " +
                  out.string() + " --cls-threshold " + std::to_string(cut) + " > /dev/null"),
              0)
        << stderr_text();
    const auto report = nlohmann::json::parse(io::read_file(out / "x.json"));
    const bool available = cut < p;
    EXPECT_EQ(report.at("mask_available").get<bool>(), available);
    EXPECT_EQ(fs::exists(out / "x_mask.png"), available);
    EXPECT_EQ(report.at("mask").is_null(), !available);
    EXPECT_FALSE(report.contains("gradcam"));
    // input | mask overlay (the input alone without a mask).
    EXPECT_EQ(io::read_gray(out / "x_panel.png").width, 64);
  }
  fs::create_directories(dir_ / "empty");
  io::write_file_atomic(dir_ / "empty" / "notes.txt", "no images here");
  EXPECT_NE(run(kInfer + " --checkpoint " + ckpt.string() + " --input " +
                (dir_ / "empty").string() + " --out " + (dir_ / "o").string()),
            0);
  EXPECT_NE(stderr_text().find((dir_ / "empty").string()), std::string::npos) << stderr_text();
  EXPECT_NE(run(kInfer + " --checkpoint " + ckpt.string() + " --input " + x.string() + " --out " +
                (dir_ / "o").string() + " --mc-dropout 0"),
            0);
  EXPECT_NE(stderr_text().find("--mc-dropout"), std::string::npos) << stderr_text();
}

}  // namespace
}  // namespace glia::nets
