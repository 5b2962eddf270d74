// Accumulation, JSON and table of the dataset statistics; see prep_stats.h.
#include "data/prep/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "data/prep/split.h"
#include "io/atomic_file.h"

namespace glia::data {

void PixelStats::add(double v) {
  if (count == 0) {
    min = max = v;
  } else {
    min = std::min(min, v);
    max = std::max(max, v);
  }
  ++count;
  sum += v;
  sum_sq += v * v;
}

void PixelStats::merge(const PixelStats& o) {
  if (o.count == 0) return;
  if (count == 0) {
    *this = o;
    return;
  }
  count += o.count;
  sum += o.sum;
  sum_sq += o.sum_sq;
  min = std::min(min, o.min);
  max = std::max(max, o.max);
}

double PixelStats::stddev() const {
  if (count == 0) return 0.0;
  double m = mean();
  return std::sqrt(std::max(0.0, sum_sq / static_cast<double>(count) - m * m));
}

void GroupStats::merge(const GroupStats& o) {
  slices += o.slices;
  positives += o.positives;
  with_mask += o.with_mask;
  all.merge(o.all);
  nonzero.merge(o.nonzero);
  for (int b = 0; b < kStatsBins; ++b) histogram[b] += o.histogram[b];
}

int stats_bin(double v) {
  double t = (v - kStatsLo) / (kStatsHi - kStatsLo) * kStatsBins;
  if (!(t >= 0.0)) return 0;                       // also NaN
  if (t >= kStatsBins - 1) return kStatsBins - 1;  // before the cast, which would overflow
  return static_cast<int>(t);
}

double histogram_overlap(std::span<const std::int64_t> a, std::span<const std::int64_t> b) {
  double ta = 0, tb = 0;
  for (auto v : a) ta += static_cast<double>(v);
  for (auto v : b) tb += static_cast<double>(v);
  if (ta == 0 || tb == 0) return 0.0;
  double overlap = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    overlap += std::min(static_cast<double>(a[i]) / ta, static_cast<double>(b[i]) / tb);
  }
  return overlap;
}

namespace {

// Median of a copy (mean of the two middle values for an even count); 0 when empty.
double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  const std::size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  const double upper = v[mid];
  if (v.size() % 2) return upper;
  const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2.0;
}

}  // namespace

KeptSummary summarize_kept(std::span<const double> fractions, std::span<const std::string> names,
                           bool check) {
  if (fractions.size() != names.size()) {
    throw std::invalid_argument("summarize_kept: " + std::to_string(fractions.size()) +
                                " fractions but " + std::to_string(names.size()) + " names");
  }
  KeptSummary s;
  s.count = static_cast<std::int64_t>(fractions.size());
  if (fractions.empty()) return s;
  s.min = *std::min_element(fractions.begin(), fractions.end());
  s.max = *std::max_element(fractions.begin(), fractions.end());
  s.median = median_of({fractions.begin(), fractions.end()});
  std::vector<double> deviations;
  for (double f : fractions) deviations.push_back(std::abs(f - s.median));
  s.mad = median_of(std::move(deviations));
  s.checked = check;
  if (!check) return s;
  const double spread = kKeptSpreads * std::max(kKeptMadScale * s.mad, kKeptMinSpread);
  s.low = std::max(kKeptFloor, s.median - spread);
  s.high = s.median + spread;
  for (std::size_t i = 0; i < fractions.size(); ++i) {
    if (fractions[i] < s.low || fractions[i] > s.high)
      s.outliers.push_back({names[i], fractions[i]});
  }
  return s;
}

void DatasetStats::add_kept(const std::string& source, const std::string& name, double fraction,
                            bool check) {
  KeptValues& k = kept_[source];
  k.fractions.push_back(fraction);
  k.names.push_back(name);
  k.check = k.check || check;
}

std::map<std::string, KeptSummary> DatasetStats::kept() const {
  std::map<std::string, KeptSummary> out;
  for (const auto& [source, k] : kept_) out[source] = summarize_kept(k.fractions, k.names, k.check);
  return out;
}

void DatasetStats::add(const std::string& source, const std::string& split, int label,
                       bool has_mask, std::span<const float> image) {
  GroupStats& g = groups_[{source, split}];
  ++g.slices;
  g.positives += label != 0;
  g.with_mask += has_mask;
  for (float v : image) {
    g.all.add(v);
    if (v != 0.0f) {
      g.nonzero.add(v);
      ++g.histogram[stats_bin(v)];
    }
  }
}

std::map<std::string, GroupStats> DatasetStats::by_source() const {
  std::map<std::string, GroupStats> out;
  for (const auto& [key, g] : groups_) out[key.first].merge(g);
  return out;
}

std::map<std::string, double> DatasetStats::overlaps() const {
  auto sources = by_source();
  std::map<std::string, double> out;
  for (auto a = sources.begin(); a != sources.end(); ++a) {
    for (auto b = std::next(a); b != sources.end(); ++b) {
      out[a->first + "|" + b->first] = histogram_overlap(a->second.histogram, b->second.histogram);
    }
  }
  return out;
}

namespace {

nlohmann::json pixel_json(const PixelStats& p) {
  return {
      {"count", p.count}, {"mean", p.mean()}, {"std", p.stddev()}, {"min", p.min}, {"max", p.max}};
}

// The groups in the order source, then train, val, test (other split names last, by name).
std::vector<std::pair<std::pair<std::string, std::string>, const GroupStats*>> ordered(
    const std::map<std::pair<std::string, std::string>, GroupStats>& groups) {
  auto rank = [](const std::string& split) {
    for (int i = 0; i < 3; ++i) {
      if (split == kSplitNames[i]) return i;
    }
    return 3;
  };
  std::vector<std::pair<std::pair<std::string, std::string>, const GroupStats*>> out;
  for (const auto& [key, g] : groups) out.emplace_back(key, &g);
  std::stable_sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
    if (a.first.first != b.first.first) return a.first.first < b.first.first;
    return rank(a.first.second) < rank(b.first.second);
  });
  return out;
}

nlohmann::json group_json(const GroupStats& g) {
  return {{"slices", g.slices},
          {"positives", g.positives},
          {"negatives", g.slices - g.positives},
          {"positive_fraction",
           g.slices ? static_cast<double>(g.positives) / static_cast<double>(g.slices) : 0.0},
          {"with_mask", g.with_mask},
          {"pixels_all", pixel_json(g.all)},
          {"pixels_nonzero", pixel_json(g.nonzero)},
          {"histogram_nonzero", g.histogram}};
}

nlohmann::json kept_json(const KeptSummary& k) {
  nlohmann::json j = {{"count", k.count}, {"min", k.min}, {"median", k.median},
                      {"max", k.max},     {"mad", k.mad}, {"checked", k.checked}};
  if (k.checked) {
    j["low_bound"] = k.low;
    j["high_bound"] = k.high;
    nlohmann::json outliers = nlohmann::json::array();
    for (const auto& o : k.outliers)
      outliers.push_back({{"name", o.name}, {"kept_fraction", o.fraction}});
    j["outliers"] = std::move(outliers);
  }
  return j;
}

void table_row(std::ostringstream& out, const std::string& source, const std::string& split,
               const GroupStats& g) {
  char line[256];
  std::snprintf(line, sizeof line,
                "%-8s %-6s %7lld %6lld %6lld %8.3f %7.3f %8.3f %7.3f %8.3f %8.3f\n", source.c_str(),
                split.c_str(), static_cast<long long>(g.slices),
                static_cast<long long>(g.positives), static_cast<long long>(g.slices - g.positives),
                g.all.mean(), g.all.stddev(), g.nonzero.mean(), g.nonzero.stddev(), g.nonzero.min,
                g.nonzero.max);
  out << line;
}

}  // namespace

nlohmann::json DatasetStats::to_json() const {
  nlohmann::json j;
  j["histogram"] = {{"lo", kStatsLo},
                    {"hi", kStatsHi},
                    {"bins", kStatsBins},
                    {"pixels", "non-zero normalised pixels, clamped into the end bins"}};
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& [key, g] : ordered(groups_)) {
    nlohmann::json row = group_json(*g);
    row["source"] = key.first;
    row["split"] = key.second;
    groups.push_back(std::move(row));
  }
  j["groups"] = std::move(groups);
  nlohmann::json sources = nlohmann::json::object();
  for (const auto& [source, g] : by_source()) sources[source] = group_json(g);
  for (const auto& [source, k] : kept()) sources[source]["kept_fraction"] = kept_json(k);
  j["sources"] = std::move(sources);
  nlohmann::json overlap = nlohmann::json::object();
  for (const auto& [pair, v] : overlaps()) overlap[pair] = v;
  j["histogram_overlap"] = std::move(overlap);
  return j;
}

std::string DatasetStats::table() const {
  std::ostringstream out;
  out << "source   split   slices    pos    neg mean_all std_all  mean_nz  std_nz   min_nz   "
         "max_nz\n";
  for (const auto& [key, g] : ordered(groups_)) table_row(out, key.first, key.second, *g);
  for (const auto& [source, g] : by_source()) table_row(out, source, "all", g);
  for (const auto& [pair, v] : overlaps()) {
    char line[128];
    std::snprintf(line, sizeof line, "histogram overlap %s: %.3f\n", pair.c_str(), v);
    out << line;
  }
  for (const auto& [source, k] : kept()) {
    char line[256];
    std::snprintf(line, sizeof line, "kept fraction %s: min %.3f median %.3f max %.3f",
                  source.c_str(), k.min, k.median, k.max);
    out << line;
    if (k.checked)
      out << ", " << k.outliers.size() << " outlier" << (k.outliers.size() == 1 ? "" : "s");
    out << "\n";
  }
  return out.str();
}

void write_stats_json(const std::filesystem::path& path, const DatasetStats& stats) {
  io::write_file_atomic(path, stats.to_json().dump(2) + "\n");
}

}  // namespace glia::data
