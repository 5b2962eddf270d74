// Splits: largest-remainder counts against their definition, patient groups that never straddle
// splits, per-class stratification, seeds that reproduce and change the assignment, and the
// portable random helpers against their stated ranges and moments.
#include "data/prep/split.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "data/prep/portable_random.h"

namespace glia::data {
namespace {

TEST(SplitTest, ParsesAndRejectsFractions) {
  auto f = parse_split_fractions("0.8,0.1,0.1");
  EXPECT_DOUBLE_EQ(f.train, 0.8);
  EXPECT_DOUBLE_EQ(f.val, 0.1);
  EXPECT_DOUBLE_EQ(f.test, 0.1);
  for (const char* bad :
       {"0.7,0.15", "0.7,0.15,0.15,0", "0.7,x,0.3", "0.9,0.2,-0.1", "0.5,0.2,0.2", "", ",,"}) {
    EXPECT_THROW(parse_split_fractions(bad), std::invalid_argument) << bad;
  }
}

TEST(SplitTest, CountsSumToNAndStayWithinOneOfTheExactShare) {
  for (SplitFractions f : {SplitFractions{}, SplitFractions{0.5, 0.5, 0.0},
                           SplitFractions{1.0, 0.0, 0.0}, SplitFractions{0.6, 0.2, 0.2}}) {
    for (std::int64_t n : {0, 1, 2, 3, 5, 7, 12, 13, 100, 369}) {
      auto c = split_counts(n, f);
      EXPECT_EQ(c[0] + c[1] + c[2], n);
      const double exact[3] = {f.train * n, f.val * n, f.test * n};
      for (int i = 0; i < 3; ++i) {
        EXPECT_LT(std::abs(static_cast<double>(c[i]) - exact[i]), 1.0) << n << " " << i;
        if (exact[i] == 0) {
          EXPECT_EQ(c[i], 0);
        }
      }
    }
  }
  auto c = split_counts(5, SplitFractions{});  // 3.5, 0.75, 0.75
  EXPECT_EQ(c[0], 3);
  EXPECT_EQ(c[1], 1);
  EXPECT_EQ(c[2], 1);
}

TEST(SplitTest, GroupsAreAssignedOnceWithTheRightCounts) {
  std::vector<std::string> names;
  for (int i = 0; i < 20; ++i) names.push_back("P" + std::to_string(i));
  names.push_back("P3");  // a duplicate counts once
  auto split = split_by_group(names, SplitFractions{}, 7);
  ASSERT_EQ(split.size(), 20u);
  std::map<std::string, int> per;
  for (auto& [name, s] : split) ++per[s];
  auto c = split_counts(20, SplitFractions{});
  EXPECT_EQ(per["train"], c[0]);
  EXPECT_EQ(per["val"], c[1]);
  EXPECT_EQ(per["test"], c[2]);
  // Order of the input does not matter; the seed does.
  std::vector<std::string> reversed(names.rbegin(), names.rend());
  EXPECT_EQ(split_by_group(reversed, SplitFractions{}, 7), split);
  bool any_differs = false;
  for (std::uint64_t seed = 8; seed < 12; ++seed) {
    any_differs |= split_by_group(names, SplitFractions{}, seed) != split;
  }
  EXPECT_TRUE(any_differs);
}

TEST(SplitTest, StratifiedSplitsEachClassWithTheFractions) {
  std::vector<std::string> names;
  std::vector<int> classes;
  for (int i = 0; i < 13; ++i) names.push_back("yes" + std::to_string(i)), classes.push_back(1);
  for (int i = 0; i < 8; ++i) names.push_back("no" + std::to_string(i)), classes.push_back(0);
  auto split = split_stratified(names, classes, SplitFractions{}, 3);
  ASSERT_EQ(split.size(), names.size());
  std::map<std::pair<int, std::string>, int> per;
  for (std::size_t i = 0; i < names.size(); ++i) ++per[{classes[i], split[i]}];
  for (auto [cls, n] : {std::pair{1, 13}, std::pair{0, 8}}) {
    auto c = split_counts(n, SplitFractions{});
    EXPECT_EQ((per[{cls, "train"}]), c[0]) << cls;
    EXPECT_EQ((per[{cls, "val"}]), c[1]) << cls;
    EXPECT_EQ((per[{cls, "test"}]), c[2]) << cls;
  }
  EXPECT_EQ(split_stratified(names, classes, SplitFractions{}, 3), split);
  std::vector<std::string> dup = {"a", "a"};
  EXPECT_THROW(split_stratified(dup, {0, 1}, SplitFractions{}, 3), std::invalid_argument);
}

TEST(PortableRandomTest, RangesAndMoments) {
  std::mt19937_64 rng(42);
  const int n = 200000;
  double sum = 0, sum_sq = 0;
  std::vector<int> buckets(7, 0);
  for (int i = 0; i < n; ++i) {
    double u = uniform01(rng);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    auto k = uniform_below(rng, 7);
    ASSERT_LT(k, 7u);
    ++buckets[k];
    double z = normal(rng);
    sum += z;
    sum_sq += z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);      // 4.5 standard errors
  EXPECT_NEAR(sum_sq / n, 1.0, 0.015);  // var of z^2 is 2: se 0.0032
  for (int b : buckets) EXPECT_NEAR(b, n / 7.0, 5 * std::sqrt(n / 7.0));
  std::mt19937_64 a(5), b(5);
  EXPECT_EQ(uniform01(a), uniform01(b));
  EXPECT_NE(stable_hash("P1"), stable_hash("P2"));
  EXPECT_EQ(stable_hash(""), 14695981039346656037ull);  // the FNV-1a offset basis
}

}  // namespace
}  // namespace glia::data
