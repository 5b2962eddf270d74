// Largest-remainder counts and seeded assignment of splits; see split.h.
#include "data/prep/split.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <stdexcept>

#include "data/prep/portable_random.h"

namespace glia::data {

SplitFractions parse_split_fractions(std::string_view text) {
  std::array<double, 3> v{};
  std::size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    std::size_t comma = text.find(',', pos);
    bool last = i == 2;
    if (last != (comma == std::string_view::npos)) {
      throw std::invalid_argument("--split '" + std::string(text) +
                                  "': expected three fractions train,val,test");
    }
    std::string part(text.substr(pos, last ? std::string_view::npos : comma - pos));
    std::size_t used = 0;
    try {
      v[i] = std::stod(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size() || !(v[i] >= 0.0) || !std::isfinite(v[i])) {
      throw std::invalid_argument("--split '" + std::string(text) + "': '" + part +
                                  "' is not a non-negative number");
    }
    pos = comma + 1;
  }
  if (std::abs(v[0] + v[1] + v[2] - 1.0) > 1e-6) {
    throw std::invalid_argument("--split '" + std::string(text) + "': the fractions sum to " +
                                std::to_string(v[0] + v[1] + v[2]) + ", not 1");
  }
  return {v[0], v[1], v[2]};
}

std::array<std::int64_t, 3> split_counts(std::int64_t n, const SplitFractions& f) {
  const std::array<double, 3> frac = {f.train, f.val, f.test};
  std::array<std::int64_t, 3> counts{};
  std::array<double, 3> rest{};
  std::int64_t assigned = 0;
  for (int i = 0; i < 3; ++i) {
    double exact = frac[i] * static_cast<double>(n);
    counts[i] = static_cast<std::int64_t>(std::floor(exact + 1e-9));
    rest[i] = exact - static_cast<double>(counts[i]);
    assigned += counts[i];
  }
  while (assigned < n) {
    int best = 0;
    for (int i = 1; i < 3; ++i) {
      if (rest[i] > rest[best] + 1e-12) best = i;
    }
    ++counts[best];
    rest[best] = -1.0;
    ++assigned;
  }
  while (assigned > n) {  // only from rounding when the fractions sum to 1 + 1e-6
    int largest = static_cast<int>(std::max_element(counts.begin(), counts.end()) - counts.begin());
    --counts[largest];
    --assigned;
  }
  return counts;
}

namespace {

// Shuffles the sorted names and deals them out in train, val, test order.
std::vector<std::pair<std::string, std::string>> deal(std::vector<std::string> names,
                                                      const SplitFractions& fractions,
                                                      std::mt19937_64& rng) {
  std::sort(names.begin(), names.end());
  shuffle_in_place(names, rng);
  auto counts = split_counts(static_cast<std::int64_t>(names.size()), fractions);
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t k = 0;
  for (int s = 0; s < 3; ++s) {
    for (std::int64_t i = 0; i < counts[s]; ++i) out.emplace_back(names[k++], kSplitNames[s]);
  }
  return out;
}

}  // namespace

std::map<std::string, std::string> split_by_group(std::vector<std::string> names,
                                                  const SplitFractions& fractions,
                                                  std::uint64_t seed) {
  std::set<std::string> unique(names.begin(), names.end());
  std::mt19937_64 rng(seed);
  std::map<std::string, std::string> out;
  for (auto& [name, split] : deal({unique.begin(), unique.end()}, fractions, rng)) {
    out.emplace(name, split);
  }
  return out;
}

std::vector<std::string> split_stratified(const std::vector<std::string>& names,
                                          const std::vector<int>& classes,
                                          const SplitFractions& fractions, std::uint64_t seed) {
  if (names.size() != classes.size()) {
    throw std::invalid_argument("split_stratified: " + std::to_string(names.size()) +
                                " names but " + std::to_string(classes.size()) + " classes");
  }
  std::map<int, std::vector<std::string>> by_class;
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!index.emplace(names[i], i).second) {
      throw std::invalid_argument("split_stratified: duplicate name '" + names[i] + "'");
    }
    by_class[classes[i]].push_back(names[i]);
  }
  std::vector<std::string> out(names.size());
  for (auto& [cls, members] : by_class) {
    // One stream per class, so adding images of one class does not move the other's.
    std::mt19937_64 rng(seed ^ (0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(cls + 1)));
    for (auto& [name, split] : deal(members, fractions, rng)) out[index[name]] = split;
  }
  return out;
}

}  // namespace glia::data
