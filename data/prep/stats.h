// Statistics of a preprocessed dataset, per source ("brats", "kaggle") and split, so that a
// normalisation mismatch between the sources is visible before training: slice count, class
// balance, mean/std/min/max of the normalised pixels (all pixels, and the non-zero ones, which are
// the brain for BraTS), a histogram of the non-zero pixels over fixed bins on [-5, 5] (values
// outside are clamped into the end bins), and per pair of sources the histogram overlap
// sum_b min(p_b, q_b) of the normalised histograms (1 = identical distributions, 0 = disjoint).
// Tested in tests/data/prep/stats_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace glia::data {

inline constexpr int kStatsBins = 50;
inline constexpr double kStatsLo = -5.0, kStatsHi = 5.0;

// Running moments and extremes of a set of pixel values (sums in double).
struct PixelStats {
  std::int64_t count = 0;
  double sum = 0, sum_sq = 0;
  double min = 0, max = 0;
  void add(double v);
  void merge(const PixelStats& other);
  double mean() const { return count ? sum / static_cast<double>(count) : 0.0; }
  double stddev() const;  // population standard deviation
};

struct GroupStats {
  std::int64_t slices = 0, positives = 0, with_mask = 0;
  PixelStats all, nonzero;
  std::vector<std::int64_t> histogram = std::vector<std::int64_t>(kStatsBins, 0);
  void merge(const GroupStats& other);
};

// Bin of a value in the fixed histogram (clamped to [0, kStatsBins)).
int stats_bin(double v);

// sum_b min(p_b, q_b) with p, q the histograms divided by their totals; 0 when either is empty.
double histogram_overlap(std::span<const std::int64_t> a, std::span<const std::int64_t> b);

class DatasetStats {
 public:
  void add(const std::string& source, const std::string& split, int label, bool has_mask,
           std::span<const float> image);
  // Per (source, split), and per source over all splits.
  const std::map<std::pair<std::string, std::string>, GroupStats>& groups() const {
    return groups_;
  }
  std::map<std::string, GroupStats> by_source() const;
  // Overlap of every pair of sources present, keyed "a|b" with a < b.
  std::map<std::string, double> overlaps() const;
  nlohmann::json to_json() const;
  // A fixed-width table for the terminal, one row per (source, split) and per source.
  std::string table() const;

 private:
  std::map<std::pair<std::string, std::string>, GroupStats> groups_;
};

// Writes stats.to_json() atomically, indented.
void write_stats_json(const std::filesystem::path& path, const DatasetStats& stats);

}  // namespace glia::data
