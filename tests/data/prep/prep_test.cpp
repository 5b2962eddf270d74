// glia-prep's pipeline on a generated phantom set (5 subjects of 32x32x12, 12 Kaggle-like images
// of mixed sizes): slice counts against the NIfTI files read independently, splits disjoint by
// patient and stratified by class, labels and masks against the seg volumes, z-scored slices, the
// manifest against the files on disk, reproduction with one seed, the differently named seg, the
// keep policies, the errors for bad input (no seg, seg shape, corrupt JPEG, empty folders), the
// kept fractions against head_region and the non-zero pixels, the warning naming an image with a
// tiny head, and the contact sheets per source and split.
#include "data/prep/prep.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "data/prep/phantom.h"
#include "data/prep/preprocess.h"
#include "data/prep/preview.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "io/image_ops.h"
#include "io/manifest.h"
#include "io/nifti.h"
#include "io/slice.h"

namespace glia::data {
namespace {

namespace fs = std::filesystem;

constexpr int kSubjects = 5, kImages = 12;

class PrepTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("glia_prep_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    SynthOptions synth;
    synth.out = root_ / "raw";
    synth.brats_subjects = kSubjects;
    synth.kaggle_images = kImages;
    synth.size = 32;
    synth.depth = 12;
    synth.kaggle_size = 60;
    synth.seed = 9;
    write_synthetic_dataset(synth);
    report_ = new PrepReport(run_prep(options(root_ / "out")));
    manifest_ = io::read_manifest(root_ / "out" / "manifest.csv");
  }
  static void TearDownTestSuite() {
    delete report_;
    fs::remove_all(root_);
  }
  static PrepOptions options(const fs::path& out) {
    PrepOptions o;
    o.brats = root_ / "raw" / "brats";
    o.kaggle = root_ / "raw" / "kaggle";
    o.out = out;
    o.seed = 3;
    return o;
  }
  // The message of the error run_prep throws, or "" (a test failure) when it does not throw.
  static std::string error_of(const PrepOptions& o) {
    try {
      run_prep(o);
    } catch (const std::exception& e) {
      return e.what();
    }
    ADD_FAILURE() << "run_prep did not throw";
    return {};
  }
  static std::vector<fs::path> subject_dirs() {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(root_ / "raw" / "brats")) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  }
  // A fresh folder for one test's inputs and outputs.
  fs::path scratch() const {
    fs::path p = root_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }
  static fs::path find_file(const fs::path& dir, const std::string& key) {
    for (const auto& e : fs::directory_iterator(dir)) {
      std::string name = e.path().filename().string();
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      if (name.find(key) != std::string::npos) return e.path();
    }
    return {};
  }

  static fs::path root_;
  static PrepReport* report_;
  static std::vector<io::ManifestEntry> manifest_;
};

fs::path PrepTest::root_;
PrepReport* PrepTest::report_ = nullptr;
std::vector<io::ManifestEntry> PrepTest::manifest_;

TEST_F(PrepTest, SliceCountsMatchTheVolumes) {
  std::map<std::string, int> rows;
  int kaggle_rows = 0;
  for (const auto& e : manifest_) {
    if (e.source == "brats") ++rows[e.patient];
    if (e.source == "kaggle") ++kaggle_rows;
  }
  int total = 0;
  for (const auto& dir : subject_dirs()) {
    io::Volume flair = io::read_nifti(find_file(dir, "flair"));
    const std::int64_t plane = flair.nx * flair.ny;
    int with_brain = 0;
    for (std::int64_t z = 0; z < flair.nz; ++z) {
      bool any = false;
      for (std::int64_t i = 0; i < plane; ++i) any |= flair.data[z * plane + i] != 0.0f;
      with_brain += any;
    }
    EXPECT_GT(with_brain, 0);
    EXPECT_LT(with_brain, flair.nz);  // the phantom's end slices hold no head
    EXPECT_EQ(rows[dir.filename().string()], with_brain) << dir;
    total += with_brain;
  }
  EXPECT_EQ(report_->brats_slices_seen, total);
  EXPECT_EQ(report_->brats_subjects, kSubjects);
  int images = 0;
  for (const char* cls : {"yes", "no"}) {
    for (const auto& e : fs::directory_iterator(root_ / "raw" / "kaggle" / cls)) {
      images += e.is_regular_file();
    }
  }
  EXPECT_EQ(images, kImages);
  EXPECT_EQ(kaggle_rows, kImages);
  EXPECT_EQ(report_->slices, static_cast<std::int64_t>(manifest_.size()));
}

TEST_F(PrepTest, SplitsAreDisjointByPatientAndStratifiedByClass) {
  std::map<std::string, std::set<std::string>> splits_of;
  std::map<std::string, std::set<std::string>> patients_in;
  std::map<std::pair<int, std::string>, int> kaggle;
  std::map<int, int> kaggle_class;
  for (const auto& e : manifest_) {
    if (e.source == "brats") {
      splits_of[e.patient].insert(e.split);
      patients_in[e.split].insert(e.patient);
    } else {
      ++kaggle[{e.label, e.split}];
      ++kaggle_class[e.label];
    }
  }
  ASSERT_EQ(splits_of.size(), static_cast<std::size_t>(kSubjects));
  for (const auto& [patient, splits] : splits_of) EXPECT_EQ(splits.size(), 1u) << patient;
  auto counts = split_counts(kSubjects, SplitFractions{});
  for (int s = 0; s < 3; ++s) EXPECT_EQ(patients_in[kSplitNames[s]].size(), std::size_t(counts[s]));
  for (const auto& [cls, n] : kaggle_class) {
    auto c = split_counts(n, SplitFractions{});
    for (int s = 0; s < 3; ++s) EXPECT_EQ((kaggle[{cls, kSplitNames[s]}]), c[s]) << cls;
  }
  EXPECT_EQ(kaggle_class.size(), 2u);
}

TEST_F(PrepTest, LabelsAndMasksFollowTheSegVolumes) {
  std::map<std::string, io::Volume> segs;
  for (const auto& dir : subject_dirs())
    segs[dir.filename().string()] = io::read_nifti(find_file(dir, "seg"));
  int positives = 0;
  for (const auto& e : manifest_) {
    io::Slice s = io::read_slice(root_ / "out" / e.path);
    EXPECT_EQ(s.label, e.label) << e.path;
    EXPECT_EQ(s.source, e.source);
    EXPECT_EQ(s.patient, e.patient);
    EXPECT_EQ(s.slice, e.slice);
    EXPECT_EQ(s.mask.has_value(), e.has_mask) << e.path;
    if (e.source == "kaggle") {
      EXPECT_FALSE(e.has_mask);
      EXPECT_EQ(e.tumor_pixels, 0);
      continue;
    }
    ASSERT_TRUE(s.mask.has_value()) << e.path;
    const io::Volume& seg = segs.at(e.patient);
    const std::int64_t plane = seg.nx * seg.ny;
    std::vector<std::uint8_t> m(plane);
    std::int64_t raw_tumour = 0;
    for (std::int64_t i = 0; i < plane; ++i) {
      m[i] = seg.data[e.slice * plane + i] > 0 ? 1 : 0;
      raw_tumour += m[i];
    }
    auto expect = io::resize_nearest(m, int(seg.ny), int(seg.nx), io::kSliceSize, io::kSliceSize);
    std::int64_t count = 0;
    for (std::size_t i = 0; i < expect.size(); ++i) {
      ASSERT_EQ((*s.mask)[i] != 0, expect[i] != 0) << e.path << " pixel " << i;
      count += (*s.mask)[i] != 0;
    }
    // Nearest neighbour from 32x32 to 256x256 copies each voxel into 8x8 pixels.
    EXPECT_EQ(count, raw_tumour * 64) << e.path;
    EXPECT_EQ(e.tumor_pixels, count) << e.path;
    EXPECT_EQ(e.label, count >= 10 ? 1 : 0) << e.path;
    positives += e.label;
  }
  EXPECT_GT(positives, 0);
}

TEST_F(PrepTest, WrittenSlicesAreZScoredOverTheirNonZeroPixels) {
  for (const auto& e : manifest_) {
    io::Slice s = io::read_slice(root_ / "out" / e.path);
    ASSERT_EQ(s.image.size(), std::size_t(io::kSliceSize) * io::kSliceSize) << e.path;
    double sum = 0, sum_sq = 0;
    std::int64_t n = 0;
    for (float v : s.image) {
      ASSERT_TRUE(std::isfinite(v)) << e.path;
      if (v == 0.0f) continue;
      sum += v, sum_sq += double(v) * v, ++n;
    }
    ASSERT_GT(n, 0) << e.path;
    const double mean = sum / n, stddev = std::sqrt(sum_sq / n - mean * mean);
    EXPECT_NEAR(mean, 0.0, 1e-3) << e.path;
    EXPECT_NEAR(stddev, 1.0, 1e-3) << e.path;
  }
}

TEST_F(PrepTest, ManifestMatchesTheFilesOnDisk) {
  std::set<std::string> listed, on_disk;
  for (const auto& e : manifest_) {
    EXPECT_TRUE(listed.insert(e.path).second) << "listed twice: " << e.path;
    EXPECT_TRUE(e.path.starts_with(e.split + "/" + e.source + "/")) << e.path;
  }
  const fs::path out = root_ / "out";
  for (const auto& f : fs::recursive_directory_iterator(out)) {
    if (!f.is_regular_file()) continue;
    std::string rel = fs::relative(f.path(), out).generic_string();
    if (rel == "manifest.csv" || rel == "stats.json") continue;
    on_disk.insert(rel);  // a leftover temporary file would show here too
  }
  EXPECT_EQ(listed, on_disk);
  // stats.json agrees with the manifest.
  auto stats = nlohmann::json::parse(io::read_file(out / "stats.json"));
  std::map<std::string, int> per_source;
  for (const auto& e : manifest_) ++per_source[e.source];
  EXPECT_EQ(stats["sources"]["brats"]["slices"].get<int>(), per_source["brats"]);
  EXPECT_EQ(stats["sources"]["kaggle"]["slices"].get<int>(), per_source["kaggle"]);
  EXPECT_NEAR(stats["sources"]["brats"]["pixels_nonzero"]["mean"].get<double>(), 0.0, 1e-3);
  EXPECT_TRUE(stats["histogram_overlap"].contains("brats|kaggle"));
}

TEST_F(PrepTest, SameSeedSameOutputOtherSeedOtherSplit) {
  const fs::path dir = scratch();
  run_prep(options(dir / "again"));
  EXPECT_EQ(io::read_file(dir / "again" / "manifest.csv"),
            io::read_file(root_ / "out" / "manifest.csv"));
  EXPECT_EQ(io::read_file(dir / "again" / "stats.json"),
            io::read_file(root_ / "out" / "stats.json"));
  for (const auto& e : manifest_) {
    ASSERT_EQ(io::read_file(dir / "again" / e.path), io::read_file(root_ / "out" / e.path))
        << e.path;
  }
  // Another seed moves the split (Kaggle alone keeps this short: 12 images, many splits).
  auto kaggle_manifest = [&](std::uint64_t seed) {
    PrepOptions o = options(dir / ("seed" + std::to_string(seed)));
    o.brats.clear();
    o.seed = seed;
    run_prep(o);
    return io::read_file(o.out / "manifest.csv");
  };
  const std::string base = kaggle_manifest(3);
  bool differs = false;
  for (std::uint64_t seed = 4; seed < 8 && !differs; ++seed)
    differs = kaggle_manifest(seed) != base;
  EXPECT_TRUE(differs);
}

TEST_F(PrepTest, DifferentlyNamedSegIsFound) {
  const fs::path last = subject_dirs().back();
  const std::string id = last.filename().string();
  EXPECT_TRUE(fs::exists(last / (id + "_Seg.nii")));
  int rows = 0;
  for (const auto& e : manifest_) rows += e.patient == id && e.has_mask;
  EXPECT_GT(rows, 0);
}

TEST_F(PrepTest, KeepPolicies) {
  const fs::path dir = scratch();
  PrepOptions tumor = options(dir / "tumor");
  tumor.kaggle.clear();
  tumor.keep = KeepPolicy::tumor;
  run_prep(tumor);
  std::map<std::string, std::pair<int, int>> all;  // patient -> (positives, negatives)
  for (const auto& e : manifest_) {
    if (e.source == "brats") (e.label ? all[e.patient].first : all[e.patient].second)++;
  }
  std::map<std::string, std::pair<int, int>> kept;
  for (const auto& e : io::read_manifest(tumor.out / "manifest.csv")) {
    EXPECT_EQ(e.source, "brats");
    EXPECT_EQ(e.label, 1) << e.path;
    ++kept[e.patient].first;
  }
  PrepOptions balanced = options(dir / "balanced");
  balanced.kaggle.clear();
  balanced.keep = KeepPolicy::balanced;
  balanced.negatives_per_patient = 3;
  run_prep(balanced);
  std::map<std::string, std::pair<int, int>> bal;
  for (const auto& e : io::read_manifest(balanced.out / "manifest.csv")) {
    (e.label ? bal[e.patient].first : bal[e.patient].second)++;
  }
  int without_tumour = 0;
  for (const auto& [patient, pn] : all) {
    EXPECT_EQ(kept[patient].first, pn.first) << patient;
    EXPECT_EQ(bal[patient].first, pn.first) << patient;
    EXPECT_EQ(bal[patient].second, std::min(pn.second, 3)) << patient;
    without_tumour += pn.first == 0;
  }
  EXPECT_GT(without_tumour, 0);  // the phantom set has a subject without tumour
}

TEST_F(PrepTest, SubjectWithoutSegIsNamedOrSkipped) {
  const fs::path dir = scratch();
  fs::copy(root_ / "raw" / "brats", dir / "brats", fs::copy_options::recursive);
  const fs::path victim = dir / "brats" / subject_dirs()[1].filename();
  fs::remove(find_file(victim, "seg"));
  PrepOptions o = options(dir / "out");
  o.brats = dir / "brats";
  o.kaggle.clear();
  std::string e = error_of(o);
  EXPECT_NE(e.find(victim.filename().string()), std::string::npos) << e;
  EXPECT_NE(e.find("seg"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(o.out / "manifest.csv"));

  o.skip_bad = true;
  PrepReport r = run_prep(o);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_NE(r.skipped[0].find(victim.filename().string()), std::string::npos);
  EXPECT_EQ(r.brats_subjects, kSubjects - 1);
  for (const auto& m : io::read_manifest(o.out / "manifest.csv")) {
    EXPECT_NE(m.patient, victim.filename().string());
  }
}

TEST_F(PrepTest, SegShapeDifferentFromFlairNamesBothFiles) {
  const fs::path dir = scratch();
  const fs::path src = subject_dirs()[0];
  fs::create_directories(dir / "brats" / src.filename());
  const fs::path flair = dir / "brats" / src.filename() / find_file(src, "flair").filename();
  fs::copy_file(find_file(src, "flair"), flair);
  io::Volume seg;
  seg.nx = 32;
  seg.ny = 30;
  seg.nz = 12;
  seg.data.assign(32 * 30 * 12, 0.0f);
  const fs::path seg_path = dir / "brats" / src.filename() / "x_seg.nii.gz";
  io::write_nifti(seg_path, seg, io::NiftiDType::u8);
  PrepOptions o = options(dir / "out");
  o.brats = dir / "brats";
  o.kaggle.clear();
  std::string e = error_of(o);
  EXPECT_NE(e.find(flair.string()), std::string::npos) << e;
  EXPECT_NE(e.find(seg_path.string()), std::string::npos) << e;
  EXPECT_NE(e.find("32x30x12"), std::string::npos) << e;
}

TEST_F(PrepTest, TruncatedNiftiIsNamedOrSkipped) {
  const fs::path dir = scratch();
  fs::copy(root_ / "raw" / "brats", dir / "brats", fs::copy_options::recursive);
  const fs::path victim = dir / "brats" / subject_dirs()[0].filename();
  const fs::path flair = find_file(victim, "flair");
  std::string bytes = io::read_file(flair);
  io::write_file_atomic(flair, bytes.substr(0, bytes.size() / 2));
  PrepOptions o = options(dir / "out");
  o.brats = dir / "brats";
  o.kaggle.clear();
  std::string e = error_of(o);
  EXPECT_NE(e.find(flair.string()), std::string::npos) << e;
  o.skip_bad = true;
  PrepReport r = run_prep(o);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_EQ(r.brats_subjects, kSubjects - 1);
}

TEST_F(PrepTest, CorruptJpegIsNamedOrSkipped) {
  const fs::path dir = scratch();
  fs::copy(root_ / "raw" / "kaggle", dir / "kaggle", fs::copy_options::recursive);
  io::write_file_atomic(dir / "kaggle" / "yes" / "broken scan.jpg", "\xff\xd8\xff\xe0 not a jpeg");
  PrepOptions o = options(dir / "out");
  o.brats.clear();
  o.kaggle = dir / "kaggle";
  std::string e = error_of(o);
  EXPECT_NE(e.find("broken scan.jpg"), std::string::npos) << e;
  o.skip_bad = true;
  PrepReport r = run_prep(o);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_EQ(r.kaggle_images, kImages);
}

TEST_F(PrepTest, EmptyOrMissingFoldersAreNamed) {
  const fs::path dir = scratch();
  fs::create_directories(dir / "empty_brats");
  PrepOptions o = options(dir / "out");
  o.brats = dir / "empty_brats";
  o.kaggle.clear();
  EXPECT_NE(error_of(o).find("empty_brats"), std::string::npos);
  o.skip_bad = true;  // a folder-level problem is not skippable
  EXPECT_NE(error_of(o).find("empty_brats"), std::string::npos);

  fs::create_directories(dir / "k" / "yes");
  fs::create_directories(dir / "k" / "no");
  fs::copy(root_ / "raw" / "kaggle" / "yes", dir / "k" / "yes");
  o.brats.clear();
  o.kaggle = dir / "k";
  std::string e = error_of(o);
  EXPECT_NE(e.find((dir / "k" / "no").string()), std::string::npos) << e;

  o.kaggle = dir / "missing";
  EXPECT_NE(error_of(o).find("missing"), std::string::npos);
  o.kaggle.clear();
  EXPECT_THROW(run_prep(o), std::invalid_argument);
}

TEST_F(PrepTest, NamesThatCollideGetDistinctFiles) {
  const fs::path dir = scratch();
  fs::create_directories(dir / "k" / "yes");
  fs::create_directories(dir / "k" / "no");
  std::vector<std::uint8_t> px(20 * 30);
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint8_t>(1 + i % 200);
  io::write_jpeg_gray(dir / "k" / "yes" / "a b.jpg", px, 20, 30);
  io::write_png_gray(dir / "k" / "yes" / "a_b.png", px, 20, 30);
  io::write_png_gray(dir / "k" / "yes" / "a b.png", px, 20, 30);  // same stem as a b.jpg
  io::write_png_gray(dir / "k" / "no" / "a b.png", px, 20, 30);   // same stem, other class
  PrepOptions o = options(dir / "out");
  o.brats.clear();
  o.kaggle = dir / "k";
  o.split = SplitFractions{1.0, 0.0, 0.0};
  run_prep(o);
  auto rows = io::read_manifest(o.out / "manifest.csv");
  ASSERT_EQ(rows.size(), 4u);
  std::set<std::string> paths;
  for (const auto& e : rows) {
    paths.insert(e.path);
    EXPECT_TRUE(fs::exists(o.out / e.path)) << e.path;
  }
  EXPECT_EQ(paths.size(), 4u);
  EXPECT_EQ(std::count_if(rows.begin(), rows.end(), [](auto& e) { return e.patient == "a b"; }), 3);
}

TEST_F(PrepTest, KeptFractionsAreTheHeadRegionAndTheNonZeroShare) {
  std::map<std::string, io::Volume> flairs;
  for (const auto& e : manifest_) {
    ASSERT_TRUE(e.kept_fraction.has_value()) << e.path;
    double expected = 0;
    if (e.source == "kaggle") {
      // The original file: its stem is the patient, its folder the class.
      const fs::path dir = root_ / "raw" / "kaggle" / (e.label ? "yes" : "no");
      fs::path file;
      for (const auto& f : fs::directory_iterator(dir)) {
        if (f.path().stem().string() == e.patient) file = f.path();
      }
      ASSERT_FALSE(file.empty()) << e.patient;
      const io::GrayImage img = io::read_gray(file);
      const auto head = head_region(img.pixels, img.height, img.width);
      double sum = 0;
      for (auto v : head) sum += v;
      expected = sum / static_cast<double>(head.size());
    } else {
      auto it = flairs.find(e.patient);
      if (it == flairs.end()) {
        const fs::path flair = find_file(root_ / "raw" / "brats" / e.patient, "flair");
        it = flairs.emplace(e.patient, io::read_nifti(flair)).first;
      }
      const io::Volume& v = it->second;
      const std::size_t plane = static_cast<std::size_t>(v.nx * v.ny);
      std::int64_t nonzero = 0;
      for (std::size_t p = 0; p < plane; ++p) nonzero += v.data[e.slice * plane + p] != 0.0f;
      expected = static_cast<double>(nonzero) / static_cast<double>(plane);
    }
    EXPECT_DOUBLE_EQ(*e.kept_fraction, expected) << e.path;
    EXPECT_GT(*e.kept_fraction, 0.0) << e.path;
  }
  // stats.json summarises them per source; the phantom heads are all ordinary.
  auto stats = nlohmann::json::parse(io::read_file(root_ / "out" / "stats.json"));
  EXPECT_EQ(stats["sources"]["kaggle"]["kept_fraction"]["count"].get<int>(), kImages);
  EXPECT_TRUE(stats["sources"]["kaggle"]["kept_fraction"]["outliers"].empty());
  EXPECT_FALSE(stats["sources"]["brats"]["kept_fraction"]["checked"].get<bool>());
}

TEST_F(PrepTest, AnImageWithATinyHeadIsWarnedAboutByName) {
  const fs::path dir = scratch();
  fs::copy(root_ / "raw" / "kaggle", dir / "kaggle", fs::copy_options::recursive);
  // Mostly black with a small bright blob: head_region keeps about 1% of the image.
  const int h = 120, w = 100;
  std::vector<std::uint8_t> px(static_cast<std::size_t>(h) * w, 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      if (std::hypot(y - 60, x - 50) <= 6) px[y * w + x] = 220;
    }
  }
  const fs::path tiny = dir / "kaggle" / "no" / "tiny head.png";
  io::write_png_gray(tiny, px, h, w);
  PrepOptions o = options(dir / "out");
  o.brats.clear();
  o.kaggle = dir / "kaggle";
  std::vector<std::string> warnings;
  o.log = [&](const std::string& line) {
    if (line.starts_with("warning")) warnings.push_back(line);
  };
  PrepReport r = run_prep(o);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(tiny.string()), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("see them with --preview"), std::string::npos) << warnings[0];
  const auto kept = r.stats.kept().at("kaggle");
  ASSERT_EQ(kept.outliers.size(), 1u);
  EXPECT_EQ(kept.outliers[0].name, tiny.string());
  EXPECT_LT(kept.outliers[0].fraction, 0.02);
  auto stats = nlohmann::json::parse(io::read_file(o.out / "stats.json"));
  EXPECT_EQ(stats["sources"]["kaggle"]["kept_fraction"]["outliers"][0]["name"], tiny.string());

  // With previews on, the flagged image also gets a sheet of its own, which the warning names.
  warnings.clear();
  o.preview = 2;
  r = run_prep(o);
  const fs::path sheet = o.out / "preview" / "kaggle_outliers.png";
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("see " + sheet.string()), std::string::npos) << warnings[0];
  ASSERT_EQ(r.previews.back(), sheet);
  const io::GrayImage img = io::read_gray(sheet);
  EXPECT_EQ(img.height, sheet_geometry(1).height);
  EXPECT_EQ(img.width, sheet_geometry(1).width);
  const std::string list = io::read_file(o.out / "preview" / "kaggle_outliers.txt");
  EXPECT_NE(list.find("\t" + tiny.string() + "\t"), std::string::npos) << list;
}

TEST_F(PrepTest, PreviewWritesASheetPerSourceAndSplit) {
  const fs::path dir = scratch();
  PrepOptions o = options(dir / "out");
  o.preview = 3;
  // A sheet from an earlier run into the same folder does not survive.
  fs::create_directories(o.out / "preview");
  io::write_file_atomic(o.out / "preview" / "kaggle_outliers.png", "stale");
  PrepReport r = run_prep(o);
  EXPECT_FALSE(fs::exists(o.out / "preview" / "kaggle_outliers.png"));
  std::map<std::pair<std::string, std::string>, int> rows;
  for (const auto& e : manifest_) ++rows[{e.source, e.split}];
  ASSERT_EQ(r.previews.size(), rows.size());
  for (const auto& [key, count] : rows) {
    const fs::path png = o.out / "preview" / (key.first + "_" + key.second + ".png");
    ASSERT_TRUE(fs::exists(png)) << png;
    const io::GrayImage sheet = io::read_gray(png);
    const SheetGeometry g = sheet_geometry(std::min(count, 3));
    EXPECT_EQ(sheet.height, g.height) << png;
    EXPECT_EQ(sheet.width, g.width) << png;
  }
  // The sheets change nothing else: the manifest is the one without them.
  EXPECT_EQ(io::read_file(o.out / "manifest.csv"), io::read_file(root_ / "out" / "manifest.csv"));
  o.preview = -1;
  EXPECT_THROW(run_prep(o), std::invalid_argument);
}

TEST(PrepNamesTest, SanitizedNamesAreSafe) {
  EXPECT_EQ(sanitize_name("BraTS20_Training_001"), "BraTS20_Training_001");
  EXPECT_EQ(sanitize_name("Y 12"), "Y_12");
  EXPECT_EQ(sanitize_name("a/b\\c,\"d\""), "a_b_c__d_");
  EXPECT_EQ(sanitize_name(".hidden"), "_.hidden");
  EXPECT_EQ(sanitize_name(""), "_");
  EXPECT_EQ(parse_keep_policy("balanced"), KeepPolicy::balanced);
  EXPECT_THROW(parse_keep_policy("some"), std::invalid_argument);
}

}  // namespace
}  // namespace glia::data
