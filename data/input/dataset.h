// Datasets of preprocessed slices. A Sample is one 1 x H x W float image (z-scores), its optional
// H x W 0/1 mask (BraTS has one, Kaggle none), its tumour label and where it came from. A Dataset
// answers size, source, label and has_mask of an item without loading it (the sampler balances on
// those) and loads an item on demand; load() is const and safe to call from several threads.
// InMemoryDataset holds samples (tests, synthetic data); ManifestDataset reads the slices a
// preprocessing manifest lists, filtered by split and source.
// Tested in tests/data/input/dataset_test.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/manifest.h"

namespace glia::data {

struct Sample {
  int height = 0, width = 0;
  std::vector<float> image;                       // 1 x height x width, row-major
  std::optional<std::vector<std::uint8_t>> mask;  // height x width, 0/1; absent: no target
  int label = 0;                                  // 1 = tumour
  std::string source;                             // "brats" | "kaggle" | ...
  std::string patient;
  int slice = 0;

  bool has_mask() const { return mask.has_value(); }
  // Throws std::invalid_argument naming `what` when the image or mask size does not match
  // height x width or the mask holds a value other than 0 and 1.
  void check(const std::string& what) const;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::size_t size() const = 0;
  // Metadata of item i, without loading it.
  virtual const std::string& source(std::size_t i) const = 0;
  virtual int label(std::size_t i) const = 0;
  virtual bool has_mask(std::size_t i) const = 0;
  // Loads item i; thread-safe.
  virtual Sample load(std::size_t i) const = 0;
  // Names item i in error messages (a file path where there is one).
  virtual std::string describe(std::size_t i) const;

 protected:
  // Throws std::out_of_range naming i and the size.
  void check_index(std::size_t i) const;
};

class InMemoryDataset : public Dataset {
 public:
  InMemoryDataset() = default;
  // Checks every sample (Sample::check).
  explicit InMemoryDataset(std::vector<Sample> samples);
  void add(Sample sample);

  std::size_t size() const override { return samples_.size(); }
  const std::string& source(std::size_t i) const override;
  int label(std::size_t i) const override;
  bool has_mask(std::size_t i) const override;
  Sample load(std::size_t i) const override;

 private:
  std::vector<Sample> samples_;
};

// The slices a manifest lists (io/manifest.h), keeping the rows of one split and some sources.
// Metadata comes from the manifest, read once; load(i) reads the slice file and checks it against
// its row (source, patient, slice, label, mask presence, tumour pixel count, size), throwing
// std::runtime_error naming the file and the field that differs.
class ManifestDataset : public Dataset {
 public:
  // Reads the manifest at `csv`; `split` is "train", "val" or "test" (empty: every split) and
  // `sources` the sources to keep (empty: all), e.g. {"brats"} or {"kaggle"}.
  ManifestDataset(const std::filesystem::path& csv, const std::string& split,
                  std::vector<std::string> sources = {});
  // The same over rows already read; paths are relative to `root`.
  ManifestDataset(std::vector<io::ManifestEntry> entries, std::filesystem::path root,
                  const std::string& split, std::vector<std::string> sources = {});

  std::size_t size() const override { return rows_.size(); }
  const std::string& source(std::size_t i) const override;
  int label(std::size_t i) const override;
  bool has_mask(std::size_t i) const override;
  Sample load(std::size_t i) const override;
  std::string describe(std::size_t i) const override { return file(i).string(); }

  const io::ManifestEntry& entry(std::size_t i) const;
  std::filesystem::path file(std::size_t i) const;

 private:
  std::filesystem::path root_;
  std::vector<io::ManifestEntry> rows_;
};

}  // namespace glia::data
