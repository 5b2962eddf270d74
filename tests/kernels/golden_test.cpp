// Pooling and softmax kernels on every backend against PyTorch (golden files written by
// golden/make_golden.py, see its header for the format): avg_pool2d with and without the padding
// counted in the divisor, max_pool2d on inputs full of ties (values, first-maximum indices,
// gradients), softmax and log_softmax (forward and backward, logits of +-300 included). The cpu
// and cuda kernels share their window and divisor arithmetic through kernels/types.h
// (Pool2dShape), so the cpu-against-sim tests of pool_test.cpp cannot see a mistake made there;
// these files are the independent oracle. Outputs start as NaN; sim runs under every lane order.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/launchers.h"
#include "tests/common/tolerance.h"
#include "tests/kernels/backends.h"

namespace glia::testing {
namespace {

using kernels::ClassShape;
using kernels::index_t;
using kernels::Pool2dShape;

// One case of a golden file: the op, its integer parameters and its named tensors.
struct GoldenCase {
  std::string op;
  std::map<std::string, long long> params;
  std::map<std::string, std::vector<double>> tensors;

  index_t param(const std::string& name) const {
    const auto it = params.find(name);
    if (it == params.end()) throw std::runtime_error(op + " case lacks param " + name);
    return static_cast<index_t>(it->second);
  }
  const std::vector<double>& tensor(const std::string& name) const {
    const auto it = tensors.find(name);
    if (it == tensors.end()) throw std::runtime_error(op + " case lacks tensor " + name);
    return it->second;
  }
  std::vector<float> floats(const std::string& name) const {
    return converted<float>(tensor(name));
  }
  std::string describe() const {
    std::string s = op;
    for (const auto& [name, value] : params) s += " " + name + " " + std::to_string(value);
    return s;
  }
};

std::vector<GoldenCase> read_golden(const std::string& file) {
  const std::string path = std::string(GLIA_KERNEL_GOLDEN_DIR) + "/" + file;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open golden file " + path);
  std::vector<GoldenCase> cases;
  std::string token;
  while (in >> token) {
    if (token[0] == '#') {
      std::getline(in, token);
    } else if (token == "case") {
      cases.emplace_back();
      in >> cases.back().op;
    } else if (token == "param" && !cases.empty()) {
      std::string name;
      long long value = 0;
      in >> name >> value;
      cases.back().params[name] = value;
    } else if (token == "tensor" && !cases.empty()) {
      std::string name;
      std::size_t count = 0;
      in >> name >> count;
      std::vector<double>& values = cases.back().tensors[name];
      values.resize(count);
      for (double& v : values) in >> v;
    } else if (token != "end") {
      throw std::runtime_error(path + ": unexpected token '" + token + "'");
    }
    if (in.fail()) throw std::runtime_error(path + ": malformed after '" + token + "'");
  }
  if (cases.empty()) throw std::runtime_error(path + " holds no case");
  return cases;
}

Pool2dShape pool_shape(const GoldenCase& g) {
  const bool count_include_pad =
      g.params.count("count_include_pad") == 0 || g.param("count_include_pad") != 0;
  return Pool2dShape::make(g.param("n"), g.param("c"), g.param("h"), g.param("w"),
                           g.param("kernel"), g.param("stride"), g.param("padding"),
                           count_include_pad);
}

template <class B>
class Golden : public BackendTest<B> {};
TYPED_TEST_SUITE(Golden, Backends, BackendNames);

TYPED_TEST(Golden, AvgPool2d) {
  using B = TypeParam;
  int checked = 0;
  for (const GoldenCase& g : read_golden("pool.txt")) {
    if (g.op != "avg_pool2d") continue;
    SCOPED_TRACE(g.describe());
    const Pool2dShape s = pool_shape(g);
    ASSERT_TRUE(s.valid());
    ASSERT_EQ(g.tensor("y").size(), static_cast<std::size_t>(s.out_numel()));
    const auto [y, gx] = run_in_every_lane_order<B>([&] {
      typename B::template Buffer<float> dx(g.floats("x")),
          dy(nan_poisoned(static_cast<std::size_t>(s.out_numel()))), dgy(g.floats("gy")),
          dgx(nan_poisoned(static_cast<std::size_t>(s.in_numel())));
      GLIA_ON_BACKEND(avg_pool2d, dx.data(), dy.data(), s);
      GLIA_ON_BACKEND(avg_pool2d_backward, dgy.data(), dgx.data(), s);
      return std::tuple{dy.to_host(), dgx.to_host()};
    });
    EXPECT_TRUE(all_close(y, g.tensor("y")));
    EXPECT_TRUE(all_close(gx, g.tensor("gx")));
    ++checked;
  }
  EXPECT_GE(checked, 12);
}

TYPED_TEST(Golden, MaxPool2dWithTies) {
  using B = TypeParam;
  int checked = 0;
  for (const GoldenCase& g : read_golden("pool.txt")) {
    if (g.op != "max_pool2d") continue;
    SCOPED_TRACE(g.describe());
    const Pool2dShape s = pool_shape(g);
    ASSERT_TRUE(s.valid());
    const auto outputs = static_cast<std::size_t>(s.out_numel());
    ASSERT_EQ(g.tensor("y").size(), outputs);
    const auto [y, idx, gx] = run_in_every_lane_order<B>([&] {
      typename B::template Buffer<float> dx(g.floats("x")), dy(nan_poisoned(outputs)),
          dgy(g.floats("gy")), dgx(nan_poisoned(static_cast<std::size_t>(s.in_numel())));
      typename B::template Buffer<std::int32_t> didx(std::vector<std::int32_t>(outputs, -1));
      GLIA_ON_BACKEND(max_pool2d, dx.data(), dy.data(), didx.data(), s);
      GLIA_ON_BACKEND(max_pool2d_backward, dgy.data(), didx.data(), dgx.data(), s);
      return std::tuple{dy.to_host(), didx.to_host(), dgx.to_host()};
    });
    EXPECT_TRUE(all_equal(converted<double>(y), g.tensor("y")));
    EXPECT_TRUE(all_equal(idx, converted<std::int32_t>(g.tensor("idx"))));
    EXPECT_TRUE(all_close(gx, g.tensor("gx")));
    ++checked;
  }
  EXPECT_GE(checked, 6);
}

TYPED_TEST(Golden, SoftmaxAndLogSoftmax) {
  using B = TypeParam;
  int checked = 0;
  for (const GoldenCase& g : read_golden("softmax.txt")) {
    SCOPED_TRACE(g.describe());
    const bool log = g.op == "log_softmax";
    ASSERT_TRUE(log || g.op == "softmax");
    const ClassShape s{g.param("rows"), g.param("classes")};
    const auto n = static_cast<std::size_t>(s.rows * s.classes);
    ASSERT_EQ(g.tensor("y").size(), n);
    const auto [y, gx] = run_in_every_lane_order<B>([&] {
      typename B::template Buffer<float> dx(g.floats("x")), dy(nan_poisoned(n)),
          dgy(g.floats("gy")), dgx(nan_poisoned(n));
      if (log) {
        GLIA_ON_BACKEND(log_softmax, dx.data(), dy.data(), s);
        GLIA_ON_BACKEND(log_softmax_backward, dy.data(), dgy.data(), dgx.data(), s);
      } else {
        GLIA_ON_BACKEND(softmax, dx.data(), dy.data(), s);
        GLIA_ON_BACKEND(softmax_backward, dy.data(), dgy.data(), dgx.data(), s);
      }
      return std::tuple{dy.to_host(), dgx.to_host()};
    });
    EXPECT_TRUE(all_close(y, g.tensor("y")));
    EXPECT_TRUE(all_close(gx, g.tensor("gx")));
    ++checked;
  }
  EXPECT_GE(checked, 12);
}

}  // namespace
}  // namespace glia::testing
