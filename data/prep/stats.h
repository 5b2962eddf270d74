// Statistics of a preprocessed dataset, per source ("brats", "kaggle") and split, so that a
// normalisation mismatch between the sources is visible before training: slice count, class
// balance, mean/std/min/max of the normalised pixels (all pixels, and the non-zero ones, which are
// the brain for BraTS), a histogram of the non-zero pixels over fixed bins on [-5, 5] (values
// outside are clamped into the end bins), and per pair of sources the histogram overlap
// sum_b min(p_b, q_b) of the normalised histograms (1 = identical distributions, 0 = disjoint).
// Per source also the kept-area share of each slice (data/prep/prep.h: the head region of an image
// file, the non-zero pixels of a BraTS slice): min, median, max and, where asked for, outliers.
// An outlier is a share below kKeptFloor, or outside median -+ 3 * max(1.4826 * MAD, 0.05)
// (MAD = median |x - median|; 1.4826 * MAD estimates a standard deviation robustly, and the 0.05
// keeps a set of near-identical images from flagging tiny differences). A small share means the
// head was mostly cut away, a large one that the background or a frame was kept as head.
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
// The kept-share outlier rule (see above).
inline constexpr double kKeptFloor = 0.15, kKeptMadScale = 1.4826, kKeptMinSpread = 0.05,
                        kKeptSpreads = 3.0;

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

struct KeptOutlier {
  std::string name;  // the input it came from (an image file)
  double fraction = 0;
};

struct KeptSummary {
  std::int64_t count = 0;
  double min = 0, median = 0, max = 0, mad = 0;
  bool checked = false;               // outliers looked for
  double low = 0, high = 0;           // bounds of the rule (when checked)
  std::vector<KeptOutlier> outliers;  // in the order added (when checked)
};

// Summary of kept shares and names (equal lengths); outliers only when `check`.
KeptSummary summarize_kept(std::span<const double> fractions, std::span<const std::string> names,
                           bool check);

class DatasetStats {
 public:
  void add(const std::string& source, const std::string& split, int label, bool has_mask,
           std::span<const float> image);
  // The kept-area share of one slice of `source`, coming from input `name`. `check`: look for
  // outliers among this source's shares (image files, where a share far from the others means
  // the head region went wrong; the top and bottom slices of a volume are small by anatomy).
  void add_kept(const std::string& source, const std::string& name, double fraction, bool check);
  std::map<std::string, KeptSummary> kept() const;
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
  struct KeptValues {
    std::vector<double> fractions;
    std::vector<std::string> names;
    bool check = false;
  };
  std::map<std::string, KeptValues> kept_;
};

// Writes stats.to_json() atomically, indented.
void write_stats_json(const std::filesystem::path& path, const DatasetStats& stats);

}  // namespace glia::data
