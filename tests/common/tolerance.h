// Comparison of a result against a reference with per-dtype tolerances, |got - ref| <= atol +
// rtol * |ref|, used by every numeric test. A failure names the worst element, its error and the
// margin used. Loosening a tolerance at a call site needs a comment saying why.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <sstream>
#include <vector>

namespace glia::testing {

struct Tolerance {
  double atol;
  double rtol;
};

template <class T>
constexpr Tolerance default_tolerance();
// float32: a few ulps of accumulated rounding over sums of up to a few thousand terms.
template <>
constexpr Tolerance default_tolerance<float>() {
  return {1e-5, 1e-4};
}
template <>
constexpr Tolerance default_tolerance<double>() {
  return {1e-12, 1e-10};
}

// Whether NaN in `got` may match NaN in `ref`. Opt in only where NaN is the defined result (the
// loss of an invalid target): by default every NaN fails, so a reference that overflowed to NaN
// cannot hide a kernel that did too.
enum class NanMatch { fails, equal };

// Checks every element; any NaN in `got` fails (unwritten poisoned output), unless `nan` is
// NanMatch::equal and `ref` holds NaN at the same place.
template <class T, class R>
::testing::AssertionResult all_close(const std::vector<T>& got, const std::vector<R>& ref,
                                     Tolerance tol = default_tolerance<T>(),
                                     NanMatch nan = NanMatch::fails) {
  if (got.size() != ref.size()) {
    return ::testing::AssertionFailure()
           << "size mismatch: got " << got.size() << " elements, reference " << ref.size();
  }
  std::size_t worst = 0, failures = 0;
  double worst_excess = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), r = static_cast<double>(ref[i]);
    if (nan == NanMatch::equal && std::isnan(r) && std::isnan(g)) continue;
    const double margin = tol.atol + tol.rtol * std::fabs(r);
    const double err = std::fabs(g - r);
    const double excess = std::isnan(err) ? std::numeric_limits<double>::infinity() : err - margin;
    if (excess > 0) ++failures;
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
  }
  if (failures == 0) return ::testing::AssertionSuccess();
  const double g = static_cast<double>(got[worst]), r = static_cast<double>(ref[worst]);
  std::ostringstream msg;
  msg.precision(9);
  msg << failures << " of " << got.size() << " elements differ; largest error at [" << worst
      << "]: got " << g << ", reference " << r << ", |error| " << std::fabs(g - r) << " > margin "
      << tol.atol + tol.rtol * std::fabs(r) << " (atol " << tol.atol << ", rtol " << tol.rtol
      << ")";
  return ::testing::AssertionFailure() << msg.str();
}

// Bitwise equality, for results that must not depend on lane order or device (integers, indices,
// deterministic float kernels run twice).
template <class T>
::testing::AssertionResult all_equal(const std::vector<T>& got, const std::vector<T>& ref) {
  if (got.size() != ref.size()) {
    return ::testing::AssertionFailure()
           << "size mismatch: got " << got.size() << ", reference " << ref.size();
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool both_nan =
        std::isnan(static_cast<double>(got[i])) && std::isnan(static_cast<double>(ref[i]));
    if (!(got[i] == ref[i]) && !both_nan) {
      return ::testing::AssertionFailure()
             << "first difference at [" << i << "]: got " << +got[i] << ", reference " << +ref[i];
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace glia::testing
