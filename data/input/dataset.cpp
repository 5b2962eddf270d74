// Sample checks, the Dataset base helpers, InMemoryDataset and ManifestDataset
// (data/input/dataset.h). Tested in tests/data/input/dataset_test.cpp.
#include "data/input/dataset.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "io/slice.h"

namespace glia::data {

void Sample::check(const std::string& what) const {
  if (height <= 0 || width <= 0) {
    throw std::invalid_argument(what + ": sample size " + std::to_string(height) + "x" +
                                std::to_string(width) + " is not positive");
  }
  const std::size_t n = static_cast<std::size_t>(height) * static_cast<std::size_t>(width);
  if (image.size() != n) {
    throw std::invalid_argument(what + ": image has " + std::to_string(image.size()) +
                                " values, expected 1x" + std::to_string(height) + "x" +
                                std::to_string(width));
  }
  if (mask) {
    if (mask->size() != n) {
      throw std::invalid_argument(what + ": mask has " + std::to_string(mask->size()) +
                                  " values, expected " + std::to_string(height) + "x" +
                                  std::to_string(width));
    }
    for (std::uint8_t m : *mask) {
      if (m > 1) {
        throw std::invalid_argument(what + ": mask holds " + std::to_string(m) +
                                    ", expected only 0 and 1");
      }
    }
  }
}

std::string Dataset::describe(std::size_t i) const {
  return "item " + std::to_string(i);
}

void Dataset::check_index(std::size_t i) const {
  if (i >= size()) {
    throw std::out_of_range("dataset item " + std::to_string(i) + " out of range (size " +
                            std::to_string(size()) + ")");
  }
}

InMemoryDataset::InMemoryDataset(std::vector<Sample> samples) {
  samples_.reserve(samples.size());
  for (auto& s : samples) add(std::move(s));
}

void InMemoryDataset::add(Sample sample) {
  sample.check("in-memory sample " + std::to_string(samples_.size()));
  samples_.push_back(std::move(sample));
}

const std::string& InMemoryDataset::source(std::size_t i) const {
  check_index(i);
  return samples_[i].source;
}

int InMemoryDataset::label(std::size_t i) const {
  check_index(i);
  return samples_[i].label;
}

bool InMemoryDataset::has_mask(std::size_t i) const {
  check_index(i);
  return samples_[i].has_mask();
}

Sample InMemoryDataset::load(std::size_t i) const {
  check_index(i);
  return samples_[i];
}

namespace {

const std::vector<std::string> kSplits = {"train", "val", "test"};

std::vector<io::ManifestEntry> filter_rows(std::vector<io::ManifestEntry> entries,
                                           const std::string& split,
                                           const std::vector<std::string>& sources) {
  if (!split.empty() && std::find(kSplits.begin(), kSplits.end(), split) == kSplits.end()) {
    throw std::invalid_argument("manifest dataset: split '" + split +
                                "' is not train, val or test");
  }
  std::vector<io::ManifestEntry> kept;
  for (io::ManifestEntry& e : entries) {
    if (!split.empty() && e.split != split) continue;
    if (!sources.empty() && std::find(sources.begin(), sources.end(), e.source) == sources.end()) {
      continue;
    }
    kept.push_back(std::move(e));
  }
  return kept;
}

template <class A, class B>
void expect_field(const std::filesystem::path& file, const char* field, const A& in_file,
                  const B& in_manifest) {
  if (in_file != in_manifest) {
    std::ostringstream msg;
    msg << file.string() << ": slice does not match its manifest row: " << field << " is "
        << in_file << " in the file but " << in_manifest << " in the manifest";
    throw std::runtime_error(msg.str());
  }
}

}  // namespace

ManifestDataset::ManifestDataset(const std::filesystem::path& csv, const std::string& split,
                                 std::vector<std::string> sources)
    : ManifestDataset(io::read_manifest(csv), csv.parent_path(), split, std::move(sources)) {}

ManifestDataset::ManifestDataset(std::vector<io::ManifestEntry> entries, std::filesystem::path root,
                                 const std::string& split, std::vector<std::string> sources)
    : root_(std::move(root)), rows_(filter_rows(std::move(entries), split, sources)) {}

const io::ManifestEntry& ManifestDataset::entry(std::size_t i) const {
  check_index(i);
  return rows_[i];
}

std::filesystem::path ManifestDataset::file(std::size_t i) const {
  return root_ / std::filesystem::path(entry(i).path);
}

const std::string& ManifestDataset::source(std::size_t i) const {
  return entry(i).source;
}
int ManifestDataset::label(std::size_t i) const {
  return entry(i).label;
}
bool ManifestDataset::has_mask(std::size_t i) const {
  return entry(i).has_mask;
}

Sample ManifestDataset::load(std::size_t i) const {
  const io::ManifestEntry& row = entry(i);
  const std::filesystem::path path = file(i);
  io::Slice slice = io::read_slice(path);
  expect_field(path, "source", slice.source, row.source);
  expect_field(path, "patient", slice.patient, row.patient);
  expect_field(path, "slice", slice.slice, row.slice);
  expect_field(path, "label", slice.label, row.label);
  expect_field(path, "has_mask", slice.mask.has_value(), row.has_mask);
  if (slice.mask) {
    const auto pixels = static_cast<std::int64_t>(
        std::count_if(slice.mask->begin(), slice.mask->end(), [](std::uint8_t v) { return v; }));
    expect_field(path, "tumor_pixels", pixels, row.tumor_pixels);
  }
  Sample s;
  s.height = slice.height;
  s.width = slice.width;
  s.image = std::move(slice.image);
  s.mask = std::move(slice.mask);
  s.label = slice.label;
  s.source = std::move(slice.source);
  s.patient = std::move(slice.patient);
  s.slice = slice.slice;
  s.check(path.string());
  return s;
}

}  // namespace glia::data
