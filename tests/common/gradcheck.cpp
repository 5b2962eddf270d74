// The finite-difference gradient check; see gradcheck.h. Tested in
// tests/engine/gradcheck_test.cpp.
#include "tests/common/gradcheck.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "engine/ops.h"
#include "engine/random.h"

namespace glia {
namespace {

double weighted_sum(const GradcheckFn& f, const std::vector<Tensor>& inputs, const Tensor& w) {
  const Tensor y = f(inputs);
  if (y.shape() != w.shape() || y.dtype() != DType::f64 || !y.device().is_cpu()) {
    throw std::invalid_argument("gradcheck: the function returned " + y.describe() +
                                ", expected f64 tensor " + shape_to_string(w.shape()) + " on cpu");
  }
  return sum(mul(y, w)).item<double>();
}

bool near_kink(const GradcheckOptions& o, std::size_t input, std::size_t index, double value) {
  for (double k : o.kinks) {
    if (std::fabs(value - k) <= o.eps) return true;
  }
  return o.skip && o.skip(input, index, value);
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  bool any_marked = false;
  for (const Tensor& x : inputs) {
    if (x.dtype() != DType::f64 || !x.device().is_cpu()) {
      throw std::invalid_argument("gradcheck needs f64 inputs on cpu, got " + x.describe());
    }
    any_marked = any_marked || x.requires_grad();
  }

  // Fresh leaves, so the caller's tensors keep their gradients and values.
  std::vector<Tensor> leaves;
  std::vector<bool> checked;
  for (const Tensor& x : inputs) {
    const bool check = any_marked ? x.requires_grad() : true;
    leaves.push_back(x.detach().clone().set_requires_grad(check));
    checked.push_back(check);
  }

  Tensor w;
  {
    NoGradGuard no_grad;
    const Tensor y = f(leaves);
    Generator generator(options.seed);
    w = randn(y.shape(), {.dtype = DType::f64}, &generator);
  }
  const Tensor loss = sum(mul(f(leaves), w));
  if (!loss.requires_grad()) {
    throw std::invalid_argument("gradcheck: the output does not depend on any checked input");
  }
  loss.backward();

  GradcheckResult result;
  result.worst_excess = -INFINITY;
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    if (!checked[i]) continue;
    const Tensor g = leaves[i].grad();
    const std::vector<double> analytic =
        g.defined() ? g.to_vector<double>() : std::vector<double>(leaves[i].numel(), 0.0);
    // Perturb a private copy in place; every evaluation reads the same storage.
    std::vector<Tensor> probe = leaves;
    probe[i] = leaves[i].detach().clone();
    double* x = probe[i].data<double>();
    for (std::size_t j = 0; j < analytic.size(); ++j) {
      const double x0 = x[j];
      if (near_kink(options, i, j, x0)) {
        ++result.skipped;
        continue;
      }
      x[j] = x0 + options.eps;
      const double plus = weighted_sum(f, probe, w);
      x[j] = x0 - options.eps;
      const double minus = weighted_sum(f, probe, w);
      x[j] = x0;
      const double numeric = (plus - minus) / (2.0 * options.eps);
      const double margin = options.atol + options.rtol * std::fabs(numeric);
      const double err = std::fabs(analytic[j] - numeric);
      const double excess = std::isnan(err) ? INFINITY : err - margin;
      ++result.checked;
      if (excess > result.worst_excess) {
        result.worst_excess = excess;
        result.worst_input = i;
        result.worst_index = j;
        result.worst_analytic = analytic[j];
        result.worst_numeric = numeric;
      }
    }
  }
  result.ok = result.checked == 0 || result.worst_excess <= 0.0;
  std::ostringstream msg;
  msg.precision(10);
  msg << "gradcheck " << (result.ok ? "passed" : "FAILED") << ": " << result.checked
      << " elements checked, " << result.skipped << " skipped near kinks";
  if (result.checked > 0) {
    msg << "; worst at input " << result.worst_input << " element " << result.worst_index
        << ": analytic " << result.worst_analytic << ", numeric " << result.worst_numeric
        << ", |error| - margin " << result.worst_excess << " (eps " << options.eps << ", atol "
        << options.atol << ", rtol " << options.rtol << ")";
  }
  result.message = msg.str();
  return result;
}

}  // namespace glia
