// Uploads ahead of use (engine/upload.h): the taken tensors hold the host values on every device,
// the host tensors may be overwritten right after upload_async, bad inputs are named, and on a
// GPU a pipeline of batches (next batch queued before the current one's work, as the trainer
// does) gives the same results as the host while the upload pool reuses its blocks.
#include "engine/upload.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/memory.h"
#include "engine/ops.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

std::vector<float> random_floats(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// Uploads a float and an int tensor from cpu to `device`, overwrites the host tensors, then
// checks what was taken.
void check_round_trip(Device device) {
  const std::vector<float> values = random_floats(3 * 5 * 7, 11);
  const std::vector<std::int32_t> labels{3, -1, 0, 7};
  Tensor x = from_vector(values, {3, 5, 7});
  Tensor y = from_vector(labels, {4});
  PendingUpload up = upload_async({x, y}, device);
  EXPECT_FALSE(up.empty());
  if (!device.is_cpu()) {  // on cpu the upload is the host tensor itself
    fill_(x, 0.0);
    fill_(y, 0.0);
  }
  const std::vector<Tensor> got = up.take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].device(), device);
  EXPECT_EQ(got[0].shape(), (Shape{3, 5, 7}));
  EXPECT_EQ(got[1].dtype(), DType::i32);
  EXPECT_EQ(got[0].to(Device::cpu()).to_vector<float>(), values);
  EXPECT_EQ(got[1].to(Device::cpu()).to_vector<std::int32_t>(), labels);
  const std::vector<Tensor> again = up.take();
  EXPECT_TRUE(again[0].shares_storage_with(got[0]));
}

TEST(UploadTest, CpuTakesTheHostValues) {
  check_round_trip(Device::cpu());
}

TEST(UploadSimTest, SimTakesTheHostValues) {
  check_round_trip(Device::sim());
}

TEST(UploadTest, AnEmptyUploadTakesNothing) {
  PendingUpload none;
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(none.take().empty());
}

TEST(UploadTest, BadTensorsAreNamedByPosition) {
  const Tensor ok = zeros({2});
  const auto message = [&](const std::vector<Tensor>& tensors) {
    try {
      upload_async(tensors, Device::sim());
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({ok, Tensor()}).find("tensor 1 is undefined"), std::string::npos);
  const Tensor leaf = zeros({2}, {.requires_grad = true});
  EXPECT_NE(message({leaf}).find("tensor 0 requires grad"), std::string::npos);
}

TEST(CudaUploadTest, CudaTakesTheHostValues) {
  GLIA_SKIP_UNLESS_USABLE(Device::cuda());
  check_round_trip(Device::cuda());
}

TEST(CudaUploadTest, DeviceTensorsAreRefused) {
  GLIA_SKIP_UNLESS_USABLE(Device::cuda());
  const Tensor g = zeros({2}, {.device = Device::cuda()});
  EXPECT_THROW(upload_async({g}, Device::cuda()), std::invalid_argument);
}

// The trainer's order: batch i + 1 queued on the copy stream before batch i's work is queued on
// the compute stream; each batch's result must be the host's, and a fixed set of upload blocks
// must serve every batch once the compute stream is done with them.
TEST(CudaUploadTest, APipelineOfBatchesMatchesTheHost) {
  GLIA_SKIP_UNLESS_USABLE(Device::cuda());
  empty_cache();
  constexpr int kBatches = 24;
  constexpr std::size_t kNumel = std::size_t{1} << 20;  // 4 MiB a batch: copies take a while
  Tensor host = empty({static_cast<index_t>(kNumel)});
  const auto fill_host = [&](int i) {
    const std::vector<float> v = random_floats(kNumel, 100 + static_cast<std::uint32_t>(i));
    host = from_vector(v, {static_cast<index_t>(kNumel)});
    return v;
  };
  std::vector<std::vector<float>> sent;
  sent.push_back(fill_host(0));
  PendingUpload current = upload_async({host}, Device::cuda());
  std::vector<float> results;
  MemoryStats halfway;
  for (int i = 0; i < kBatches; ++i) {
    if (i == kBatches / 2) halfway = cuda_memory_stats(0);
    PendingUpload next;
    if (i + 1 < kBatches) {
      sent.push_back(fill_host(i + 1));
      next = upload_async({host}, Device::cuda());
    }
    const Tensor x = current.take()[0];
    // Enough work that the next copy overlaps it; only the reduced result is kept.
    Tensor y = x;
    for (int k = 0; k < 8; ++k) y = add(mul(y, 0.5), x);
    results.push_back(sum(y).item<float>());
    current = std::move(next);
  }
  for (int i = 0; i < kBatches; ++i) {
    double expect = 0.0;
    for (float v : sent[static_cast<std::size_t>(i)]) {
      float y = v;
      for (int k = 0; k < 8; ++k) y = y * 0.5f + v;
      expect += y;
    }
    EXPECT_NEAR(results[static_cast<std::size_t>(i)], expect, 0.05) << "batch " << i;
  }
  // In the steady state every block, uploads' included, comes back from its cache.
  EXPECT_EQ(cuda_memory_stats(0).raw_allocations, halfway.raw_allocations);
  empty_cache();
  EXPECT_EQ(cuda_memory_stats(0).fenced_bytes, 0u);
}

}  // namespace
}  // namespace glia
