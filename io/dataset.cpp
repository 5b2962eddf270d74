// Sample checks, the Dataset base helpers and InMemoryDataset (io/dataset.h).
// Tested in tests/io/dataset_test.cpp.
#include "io/dataset.h"

#include <stdexcept>

namespace glia::io {

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

}  // namespace glia::io
