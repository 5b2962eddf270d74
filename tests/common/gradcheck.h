// Gradient checking by central finite differences in f64 on cpu (DESIGN.md section 6). For
// y = f(inputs) and fixed random weights w, the scalar L = sum(y * w) is differentiated two ways:
// by backward(), and per input element as (L(x + eps) - L(x - eps)) / (2 eps). Elements within
// a step of a kink (relu at 0, clamp bounds, max ties) may be skipped, since there the numeric
// derivative straddles two slopes. Tests of every op use it; the product never does, so it lives
// here, in the glia_gradcheck library that only test executables link (tests/CMakeLists.txt).
// Tested in tests/engine/gradcheck_test.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace glia {

struct GradcheckOptions {
  double eps = 1e-6;
  // An element passes when |analytic - numeric| <= atol + rtol * |numeric|.
  double atol = 1e-6;
  double rtol = 1e-5;
  // Skip an element whose value lies within eps of one of these (e.g. {0} for relu).
  std::vector<double> kinks;
  // Skip an element when this returns true for (input index, flat element index, value): for kinks
  // that depend on more than the value (max ties).
  std::function<bool(std::size_t input, std::size_t index, double value)> skip;
  std::uint64_t seed = 1234;  // of the weights w
};

struct GradcheckResult {
  bool ok = true;
  std::size_t checked = 0;  // elements compared
  std::size_t skipped = 0;  // elements near a kink
  // The worst element (largest error beyond its margin).
  std::size_t worst_input = 0;
  std::size_t worst_index = 0;
  double worst_analytic = 0.0;
  double worst_numeric = 0.0;
  double worst_excess = 0.0;  // |analytic - numeric| - margin; positive when it fails
  std::string message;        // a summary naming the worst element
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

// `inputs` are f64 cpu tensors; those with requires_grad set are checked (all of them when none
// is set). They are not modified.
GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace glia
