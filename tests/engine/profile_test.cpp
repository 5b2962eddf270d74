// The per-op profile (engine/profile.h): off, nothing is counted; on, each op's dispatches are
// counted under its name with their time, a dispatch inside another is not counted again, and the
// end of a step (as Optimizer::step ends it) starts the next table empty.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/profile.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using glia::testing::random_tensor;

const profile::OpTime* find(const std::vector<profile::OpTime>& rows, const std::string& op) {
  const auto it = std::find_if(rows.begin(), rows.end(), [&](const auto& r) { return r.op == op; });
  return it == rows.end() ? nullptr : &*it;
}

class ProfileTest : public ::testing::Test {
 protected:
  void TearDown() override { profile::enable(false); }
};

TEST_F(ProfileTest, CountsEachOpUnderItsNameOnlyWhenOn) {
  const Tensor a = random_tensor({64, 64}, -1, 1, 1), b = random_tensor({64, 64}, -1, 1, 2);
  profile::enable(false);
  (void)add(a, b);
  profile::enable(true);
  EXPECT_TRUE(profile::snapshot().empty());
  (void)add(a, b);
  (void)add(a, b);
  (void)relu(a);
  const std::vector<profile::OpTime> rows = profile::snapshot();
  const profile::OpTime* added = find(rows, "add");
  ASSERT_NE(added, nullptr);
  EXPECT_EQ(added->calls, 2);
  EXPECT_GE(added->ms, 0.0);
  ASSERT_NE(find(rows, "relu"), nullptr);
  EXPECT_EQ(find(rows, "relu")->calls, 1);
  EXPECT_LE(added->ms, profile::step_ms());
  ::testing::internal::CaptureStderr();
  profile::step_end();
  const std::string table = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(table.find("add"), std::string::npos) << table;
  EXPECT_TRUE(profile::snapshot().empty());
}

TEST_F(ProfileTest, NestedDispatchCountsOnceForTheOuterOp) {
  profile::enable(true);
  {
    const profile::Scope outer("outer");
    const profile::Scope inner("inner");
  }
  const std::vector<profile::OpTime> rows = profile::snapshot();
  ASSERT_NE(find(rows, "outer"), nullptr);
  EXPECT_EQ(find(rows, "outer")->calls, 1);
  EXPECT_EQ(find(rows, "inner"), nullptr);
  {
    const profile::Scope again("inner");  // the depth came back to zero
  }
  ASSERT_NE(find(profile::snapshot(), "inner"), nullptr);
}

}  // namespace
}  // namespace glia
