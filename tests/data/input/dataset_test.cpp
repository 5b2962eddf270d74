// Datasets: InMemoryDataset checks its samples and answers metadata without loading;
// ManifestDataset filters a manifest by split and source, loads the slices it lists and rejects a
// slice that does not match its manifest row, naming the file; the loader batches its files and
// names a missing one.
#include "data/input/dataset.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "data/input/loader.h"
#include "io/manifest.h"
#include "io/slice.h"
#include "tests/common/temp_dir.h"

namespace glia::data {
namespace {

namespace fs = std::filesystem;

Sample square(int n, bool with_mask, std::string source, int label) {
  Sample s;
  s.height = s.width = n;
  s.image.assign(static_cast<std::size_t>(n) * n, 0.5f);
  if (with_mask) s.mask.emplace(static_cast<std::size_t>(n) * n, 1);
  s.source = std::move(source);
  s.label = label;
  return s;
}

TEST(DatasetTest, InMemoryAnswersMetadataAndLoads) {
  InMemoryDataset d({square(3, true, "brats", 1), square(3, false, "kaggle", 0)});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d.source(0), "brats");
  EXPECT_EQ(d.source(1), "kaggle");
  EXPECT_EQ(d.label(0), 1);
  EXPECT_TRUE(d.has_mask(0));
  EXPECT_FALSE(d.has_mask(1));
  const Sample s = d.load(1);
  EXPECT_EQ(s.image.size(), 9u);
  EXPECT_FALSE(s.has_mask());
  EXPECT_THROW(d.load(2), std::out_of_range);
  EXPECT_THROW(d.source(2), std::out_of_range);
}

TEST(DatasetTest, InMemoryRejectsInconsistentSamples) {
  InMemoryDataset d;
  Sample wrong_size = square(3, false, "brats", 0);
  wrong_size.image.pop_back();
  EXPECT_THROW(d.add(wrong_size), std::invalid_argument);
  Sample wrong_mask = square(3, true, "brats", 0);
  wrong_mask.mask->pop_back();
  EXPECT_THROW(d.add(wrong_mask), std::invalid_argument);
  Sample not_binary = square(3, true, "brats", 0);
  (*not_binary.mask)[4] = 255;
  try {
    d.add(not_binary);
    ADD_FAILURE() << "a 255 in a mask was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("255"), std::string::npos) << e.what();
  }
  EXPECT_EQ(d.size(), 0u);
}

// --- ManifestDataset, over slices written to a per-test folder ----------------------------------

class ManifestDatasetTest : public testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    fs::create_directories(dir_ / "slices");
    add("brats", "train", "BraTS_001", 40, 1, true);
    add("brats", "train", "BraTS_001", 41, 0, true);
    add("brats", "val", "BraTS_002", 40, 1, true);
    add("kaggle", "train", "Y12", 0, 1, false);
    add("kaggle", "train", "no 3, \"b\"", 0, 0, false);
    add("kaggle", "test", "Y13", 0, 1, false);
    io::write_manifest(dir_ / "manifest.csv", rows_);
  }
  // Writes a slice whose image encodes its row number and whose mask (BraTS) marks a square of
  // 10 x 10 pixels when the label is 1; appends its manifest row.
  void add(const std::string& source, const std::string& split, const std::string& patient, int z,
           int label, bool with_mask) {
    io::Slice s;
    const std::size_t n = static_cast<std::size_t>(io::kSliceSize) * io::kSliceSize;
    s.image.resize(n);
    for (std::size_t p = 0; p < n; ++p) {
      s.image[p] = static_cast<float>(rows_.size()) + static_cast<float>(p % 7) * 0.25f;
    }
    std::int64_t pixels = 0;
    if (with_mask) {
      s.mask.emplace(n, 0);
      for (int i = 0; i < 10 && label; ++i) {
        for (int j = 0; j < 10; ++j) {
          (*s.mask)[(100 + i) * io::kSliceSize + 100 + j] = 1;
          ++pixels;
        }
      }
    }
    s.label = label;
    s.source = source;
    s.patient = patient;
    s.slice = z;
    io::ManifestEntry e;
    e.path = "slices/" + std::to_string(rows_.size()) + ".npz";
    e.split = split;
    e.source = source;
    e.patient = patient;
    e.slice = z;
    e.label = label;
    e.has_mask = with_mask;
    e.tumor_pixels = pixels;
    io::write_slice(dir_ / e.path, s);
    slices_.push_back(std::move(s));
    rows_.push_back(std::move(e));
  }

  std::vector<io::ManifestEntry> rows_;
  std::vector<io::Slice> slices_;
};

TEST_F(ManifestDatasetTest, FiltersBySplitAndSource) {
  const fs::path csv = dir_ / "manifest.csv";
  EXPECT_EQ(ManifestDataset(csv, "train").size(), 4u);
  EXPECT_EQ(ManifestDataset(csv, "val").size(), 1u);
  EXPECT_EQ(ManifestDataset(csv, "").size(), 6u);
  const ManifestDataset brats(csv, "train", {"brats"});
  ASSERT_EQ(brats.size(), 2u);
  EXPECT_EQ(brats.entry(1).slice, 41);
  const ManifestDataset kaggle(csv, "train", {"kaggle"});
  ASSERT_EQ(kaggle.size(), 2u);
  EXPECT_EQ(kaggle.entry(1).patient, "no 3, \"b\"");
  EXPECT_EQ(ManifestDataset(csv, "test", {"brats", "kaggle"}).size(), 1u);
  EXPECT_THROW(ManifestDataset(csv, "training"), std::invalid_argument);
}

TEST_F(ManifestDatasetTest, MetadataComesFromTheManifestAlone) {
  const ManifestDataset d(dir_ / "manifest.csv", "train");
  fs::remove_all(dir_ / "slices");  // metadata must not need the slice files
  ASSERT_EQ(d.size(), 4u);
  const std::vector<std::size_t> rows = {0, 1, 3, 4};  // the train rows
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(d.source(i), rows_[rows[i]].source);
    EXPECT_EQ(d.label(i), rows_[rows[i]].label);
    EXPECT_EQ(d.has_mask(i), rows_[rows[i]].has_mask);
  }
  EXPECT_TRUE(testing::throws_naming([&] { d.load(2); }, "3.npz"));
}

TEST_F(ManifestDatasetTest, LoadsTheSliceItsRowNames) {
  const ManifestDataset d(dir_ / "manifest.csv", "");
  for (std::size_t i = 0; i < d.size(); ++i) {
    const Sample s = d.load(i);
    EXPECT_EQ(s.height, io::kSliceSize);
    EXPECT_EQ(s.image, slices_[i].image);
    EXPECT_EQ(s.mask, slices_[i].mask);
    EXPECT_EQ(s.label, rows_[i].label);
    EXPECT_EQ(s.source, rows_[i].source);
    EXPECT_EQ(s.patient, rows_[i].patient);
    EXPECT_EQ(s.slice, rows_[i].slice);
  }
}

TEST_F(ManifestDatasetTest, RejectsASliceThatDoesNotMatchItsRow) {
  struct Case {
    const char* field;
    void (*edit)(io::ManifestEntry&);
  };
  const Case cases[] = {
      {"label", [](io::ManifestEntry& e) { e.label = 1 - e.label; }},
      {"has_mask", [](io::ManifestEntry& e) { e.has_mask = !e.has_mask; }},
      {"tumor_pixels", [](io::ManifestEntry& e) { e.tumor_pixels += 1; }},
      {"patient", [](io::ManifestEntry& e) { e.patient += "x"; }},
      {"slice", [](io::ManifestEntry& e) { e.slice += 1; }},
      {"source", [](io::ManifestEntry& e) { e.source = "kaggle"; }},
  };
  for (const Case& c : cases) {
    std::vector<io::ManifestEntry> rows = rows_;
    c.edit(rows[1]);
    const ManifestDataset d(rows, dir_, "", {});
    EXPECT_NO_THROW(d.load(0));
    EXPECT_TRUE(testing::throws_naming([&] { d.load(1); }, "1.npz")) << c.field;
    EXPECT_TRUE(testing::throws_naming([&] { d.load(1); }, c.field));
  }
}

TEST_F(ManifestDatasetTest, LoaderBatchesFilesAndNamesAMissingOne) {
  auto d = std::make_shared<ManifestDataset>(dir_ / "manifest.csv", "train");
  SamplerConfig sc;
  sc.mode = SamplerMode::sequential;
  LoaderConfig lc;
  lc.batch_size = 2;
  lc.workers = 2;
  Loader loader(d, Sampler(*d, sc), Compose(), lc);
  const std::optional<Batch> first = loader.next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->images.shape(), (Shape{2, 1, io::kSliceSize, io::kSliceSize}));
  EXPECT_EQ(first->has_mask.to_vector<float>(), (std::vector<float>{1.0f, 1.0f}));
  const std::optional<Batch> second = loader.next();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->has_mask.to_vector<float>(), (std::vector<float>{0.0f, 0.0f}));
  EXPECT_EQ(second->masks.to_vector<float>(),
            std::vector<float>(2 * io::kSliceSize * io::kSliceSize, 0.0f));

  fs::remove(dir_ / "slices" / "4.npz");  // train row 3
  loader.start_epoch(1);
  ASSERT_TRUE(loader.next().has_value());
  EXPECT_TRUE(testing::throws_naming([&] { loader.next(); }, "4.npz"));
}

}  // namespace
}  // namespace glia::data
