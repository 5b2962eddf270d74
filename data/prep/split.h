// Train/val/test splits for the preprocessing: BraTS by patient (a subject's slices all land in
// one split, so no patient leaks between training and evaluation) and Kaggle stratified by class
// (each class is split with the same fractions). Counts come from the largest-remainder method,
// so they always sum to n and follow the fractions as closely as integers allow; which items go
// where is a seeded shuffle (data/prep/portable_random.h) of the items in sorted order, so the
// result depends only on the set of names and the seed, not on directory listing order. Tested in
// tests/data/prep/split_test.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace glia::data {

inline constexpr std::array<const char*, 3> kSplitNames = {"train", "val", "test"};

struct SplitFractions {
  double train = 0.7, val = 0.15, test = 0.15;
};

// Parses "0.7,0.15,0.15": three non-negative numbers summing to 1 (within 1e-6). Throws
// std::invalid_argument quoting the text otherwise.
SplitFractions parse_split_fractions(std::string_view text);

// How many of n items go to train, val, test (largest remainder; ties to the earlier split).
std::array<std::int64_t, 3> split_counts(std::int64_t n, const SplitFractions& fractions);

// Assigns each distinct name a split ("train", "val", "test"). Duplicates count once.
std::map<std::string, std::string> split_by_group(std::vector<std::string> names,
                                                  const SplitFractions& fractions,
                                                  std::uint64_t seed);

// Assigns each item (name, class) a split, splitting every class separately with the same
// fractions. Returns one split per input item, in input order. Names must be distinct.
std::vector<std::string> split_stratified(const std::vector<std::string>& names,
                                          const std::vector<int>& classes,
                                          const SplitFractions& fractions, std::uint64_t seed);

}  // namespace glia::data
