// Evaluation metrics; definitions and conventions in metrics.h.
#include "nets/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace glia::nets {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_sizes(std::size_t a, std::size_t b, const char* what) {
  if (a != b) {
    throw std::invalid_argument(std::string(what) + ": sizes differ (" + std::to_string(a) +
                                " vs " + std::to_string(b) + ")");
  }
}

void check_image(std::size_t n, int height, int width, const char* what) {
  if (height <= 0 || width <= 0 || n != static_cast<std::size_t>(height) * width) {
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(n) +
                                " pixels do not make a " + std::to_string(height) + "x" +
                                std::to_string(width) + " image");
  }
}

double ratio(double num, double den) {
  return den > 0 ? num / den : kNaN;
}

// Boundary pixels: set pixels with at least one 4-neighbour unset (or on the image edge).
std::vector<std::pair<int, int>> boundary(std::span<const std::uint8_t> mask, int height,
                                          int width) {
  std::vector<std::pair<int, int>> points;
  auto at = [&](int y, int x) {
    return y >= 0 && y < height && x >= 0 && x < width && mask[y * width + x] != 0;
  };
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      if (at(y, x) && !(at(y - 1, x) && at(y + 1, x) && at(y, x - 1) && at(y, x + 1))) {
        points.emplace_back(y, x);
      }
    }
  }
  return points;
}

// For each point of `from`, the Euclidean distance to the nearest point of `to` (non-empty).
std::vector<double> nearest_distances(const std::vector<std::pair<int, int>>& from,
                                      const std::vector<std::pair<int, int>>& to) {
  std::vector<double> d(from.size());
  for (std::size_t i = 0; i < from.size(); ++i) {
    long best = std::numeric_limits<long>::max();
    for (const auto& [y, x] : to) {
      const long dy = from[i].first - y, dx = from[i].second - x;
      best = std::min(best, dy * dy + dx * dx);
    }
    d[i] = std::sqrt(static_cast<double>(best));
  }
  return d;
}

// Linear-interpolated percentile, as numpy.percentile's default.
double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

}  // namespace

OverlapCounts& OverlapCounts::operator+=(const OverlapCounts& other) {
  intersection += other.intersection;
  predicted += other.predicted;
  target += other.target;
  return *this;
}

MaskScores OverlapCounts::scores() const {
  if (predicted + target == 0) return {1.0, 1.0};
  const auto both = static_cast<double>(intersection);
  const auto sum = static_cast<double>(predicted + target);
  return {2.0 * both / sum, both / (sum - both)};
}

OverlapCounts overlap_counts(std::span<const std::uint8_t> pred,
                             std::span<const std::uint8_t> target) {
  check_sizes(pred.size(), target.size(), "overlap_counts");
  OverlapCounts c;
  for (std::size_t i = 0; i < pred.size(); ++i) {
    const bool a = pred[i] != 0, b = target[i] != 0;
    c.intersection += a && b;
    c.predicted += a;
    c.target += b;
  }
  return c;
}

MaskScores mask_scores(std::span<const std::uint8_t> pred, std::span<const std::uint8_t> target) {
  check_sizes(pred.size(), target.size(), "mask_scores");
  return overlap_counts(pred, target).scores();
}

double pixel_accuracy(std::span<const std::uint8_t> pred, std::span<const std::uint8_t> target) {
  check_sizes(pred.size(), target.size(), "pixel_accuracy");
  std::int64_t same = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) same += (pred[i] != 0) == (target[i] != 0);
  return ratio(static_cast<double>(same), static_cast<double>(pred.size()));
}

double boundary_f_score(std::span<const std::uint8_t> pred, std::span<const std::uint8_t> target,
                        int height, int width, double tolerance) {
  check_sizes(pred.size(), target.size(), "boundary_f_score");
  check_image(pred.size(), height, width, "boundary_f_score");
  const auto bp = boundary(pred, height, width);
  const auto bt = boundary(target, height, width);
  if (bp.empty() && bt.empty()) return 1.0;
  if (bp.empty() || bt.empty()) return 0.0;
  auto within = [&](const std::vector<double>& d) {
    const auto n = std::count_if(d.begin(), d.end(), [&](double x) { return x <= tolerance; });
    return static_cast<double>(n) / static_cast<double>(d.size());
  };
  const double precision = within(nearest_distances(bp, bt));
  const double recall = within(nearest_distances(bt, bp));
  return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
}

double hausdorff95(std::span<const std::uint8_t> pred, std::span<const std::uint8_t> target,
                   int height, int width) {
  check_sizes(pred.size(), target.size(), "hausdorff95");
  check_image(pred.size(), height, width, "hausdorff95");
  const auto bp = boundary(pred, height, width);
  const auto bt = boundary(target, height, width);
  if (bp.empty() && bt.empty()) return 0.0;
  if (bp.empty() || bt.empty()) return kNaN;
  return std::max(percentile(nearest_distances(bp, bt), 95.0),
                  percentile(nearest_distances(bt, bp), 95.0));
}

double BinaryCounts::accuracy() const {
  return ratio(static_cast<double>(tp + tn), static_cast<double>(total()));
}
double BinaryCounts::precision() const {
  return ratio(static_cast<double>(tp), static_cast<double>(tp + fp));
}
double BinaryCounts::recall() const {
  return ratio(static_cast<double>(tp), static_cast<double>(tp + fn));
}
double BinaryCounts::specificity() const {
  return ratio(static_cast<double>(tn), static_cast<double>(tn + fp));
}
double BinaryCounts::f1() const {
  return ratio(2.0 * static_cast<double>(tp), static_cast<double>(2 * tp + fp + fn));
}

BinaryCounts confusion(std::span<const int> predicted, std::span<const int> labels) {
  check_sizes(predicted.size(), labels.size(), "confusion");
  BinaryCounts c;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const bool p = predicted[i] != 0, t = labels[i] != 0;
    c.tp += p && t;
    c.fp += p && !t;
    c.tn += !p && !t;
    c.fn += !p && t;
  }
  return c;
}

double roc_auc(std::span<const double> scores, std::span<const int> labels) {
  check_sizes(scores.size(), labels.size(), "roc_auc");
  // Rank-sum form: AUC = (sum of positive ranks - P(P+1)/2) / (P N), with tied scores sharing
  // their average rank (so a tie between a positive and a negative counts half).
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return scores[a] < scores[b]; });
  double positive_rank_sum = 0;
  std::int64_t positives = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double rank = 0.5 * static_cast<double>(i + 1 + j);  // mean of ranks i+1 .. j
    for (std::size_t k = i; k < j; ++k) {
      if (labels[order[k]] != 0) {
        positive_rank_sum += rank;
        ++positives;
      }
    }
    i = j;
  }
  const auto negatives = static_cast<std::int64_t>(scores.size()) - positives;
  if (positives == 0 || negatives == 0) return kNaN;
  const double p = static_cast<double>(positives);
  return (positive_rank_sum - p * (p + 1) / 2) / (p * static_cast<double>(negatives));
}

double pr_auc(std::span<const double> scores, std::span<const int> labels) {
  check_sizes(scores.size(), labels.size(), "pr_auc");
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return scores[a] > scores[b]; });
  const auto positives = std::count_if(labels.begin(), labels.end(), [](int l) { return l != 0; });
  if (positives == 0) return kNaN;
  // Thresholds at each distinct score, highest first; AP = sum (R_k - R_{k-1}) P_k.
  double ap = 0, previous_recall = 0;
  std::int64_t tp = 0, seen = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) {
      tp += labels[order[j]] != 0;
      ++seen;
      ++j;
    }
    const double recall = static_cast<double>(tp) / static_cast<double>(positives);
    const double precision = static_cast<double>(tp) / static_cast<double>(seen);
    ap += (recall - previous_recall) * precision;
    previous_recall = recall;
    i = j;
  }
  return ap;
}

double expected_calibration_error(std::span<const double> probabilities,
                                  std::span<const int> labels, int bins) {
  check_sizes(probabilities.size(), labels.size(), "expected_calibration_error");
  if (bins <= 0) throw std::invalid_argument("expected_calibration_error: bins must be positive");
  if (probabilities.empty()) return kNaN;
  std::vector<double> confidence_sum(bins, 0.0), correct_sum(bins, 0.0);
  std::vector<std::int64_t> count(bins, 0);
  for (std::size_t i = 0; i < probabilities.size(); ++i) {
    const double p = probabilities[i];
    const int predicted = p >= 0.5 ? 1 : 0;
    const double confidence = std::max(p, 1.0 - p);
    // Bins (k/B, (k+1)/B], as the usual definition; confidence is at least 0.5 here.
    int b = static_cast<int>(std::ceil(confidence * bins)) - 1;
    b = std::clamp(b, 0, bins - 1);
    confidence_sum[b] += confidence;
    correct_sum[b] += predicted == (labels[i] != 0 ? 1 : 0);
    ++count[b];
  }
  double ece = 0;
  for (int b = 0; b < bins; ++b) {
    if (count[b] == 0) continue;
    const double n = static_cast<double>(count[b]);
    ece += std::fabs(correct_sum[b] / n - confidence_sum[b] / n) * n /
           static_cast<double>(probabilities.size());
  }
  return ece;
}

MeanStd mean_std(std::span<const double> values) {
  MeanStd r;
  double sum = 0;
  for (double v : values) {
    if (std::isfinite(v)) {
      sum += v;
      ++r.count;
    }
  }
  if (r.count == 0) return {kNaN, kNaN, 0};
  r.mean = sum / static_cast<double>(r.count);
  double squares = 0;
  for (double v : values) {
    if (std::isfinite(v)) squares += (v - r.mean) * (v - r.mean);
  }
  r.std = std::sqrt(squares / static_cast<double>(r.count));
  return r;
}

std::map<std::string, Summary> summarize(std::span<const SampleResult> results, double threshold,
                                         double dice_weight) {
  std::map<std::string, std::vector<const SampleResult*>> groups;
  groups["overall"];  // present even for no results, with NaN rates
  for (const auto& r : results) {
    groups["overall"].push_back(&r);
    groups[r.source].push_back(&r);
  }
  std::map<std::string, Summary> out;
  for (const auto& [name, members] : groups) {
    Summary s;
    std::vector<double> dice, iou, scores;
    std::vector<int> labels, predicted;
    for (const SampleResult* r : members) {
      ++s.count;
      if (r->has_mask) {
        ++s.masked;
        dice.push_back(r->seg.dice);
        iou.push_back(r->seg.iou);
      }
      scores.push_back(r->probability);
      labels.push_back(r->label);
      predicted.push_back(r->probability >= threshold ? 1 : 0);
    }
    s.dice = mean_std(dice);
    s.iou = mean_std(iou);
    s.counts = confusion(predicted, labels);
    s.accuracy = s.counts.accuracy();
    s.sensitivity = s.counts.recall();
    s.specificity = s.counts.specificity();
    s.roc_auc = roc_auc(scores, labels);
    s.combined =
        s.dice.count > 0 ? dice_weight * s.dice.mean + (1 - dice_weight) * s.accuracy : s.accuracy;
    out[name] = s;
  }
  return out;
}

}  // namespace glia::nets
