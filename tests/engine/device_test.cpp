// Devices, dtypes and memory: device names (parse / to_string), the errors for devices that are
// not there, host alignment, and on a GPU the caching allocator and copies. Tests engine/device.h,
// engine/dtype.h and engine/memory.h.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "engine/memory.h"
#include "engine/ops.h"
#include "tests/engine/test_util.h"

namespace glia {
namespace {

using testing::error_of;

TEST(DeviceTest, ParsesAndPrintsNames) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("sim"), Device::sim());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:1"), Device::cuda(1));
  EXPECT_EQ(Device::cpu().to_string(), "cpu");
  EXPECT_EQ(Device::sim().to_string(), "sim");
  EXPECT_EQ(Device::cuda(3).to_string(), "cuda:3");
  EXPECT_EQ(Device::parse(Device::cuda(2).to_string()), Device::cuda(2));
}

TEST(DeviceTest, RejectsUnknownNamesListingTheAcceptedOnes) {
  for (const char* bad : {"gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "sim:0", ""}) {
    const std::string msg = error_of([&] { (void)Device::parse(bad); });
    EXPECT_NE(msg.find("'" + std::string(bad) + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cpu, sim, cuda or cuda:N"), std::string::npos) << msg;
  }
}

TEST(DeviceTest, DTypeNamesAndSizes) {
  EXPECT_STREQ(dtype_name(DType::f32), "f32");
  EXPECT_STREQ(dtype_name(DType::f64), "f64");
  EXPECT_STREQ(dtype_name(DType::i32), "i32");
  EXPECT_STREQ(dtype_name(DType::u8), "u8");
  EXPECT_EQ(dtype_size(DType::f32), 4u);
  EXPECT_EQ(dtype_size(DType::f64), 8u);
  EXPECT_EQ(dtype_size(DType::i32), 4u);
  EXPECT_EQ(dtype_size(DType::u8), 1u);
  EXPECT_TRUE(is_floating(DType::f64));
  EXPECT_FALSE(is_floating(DType::u8));
}

TEST(DeviceTest, GpuRequestWithoutGpuIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present: the no-GPU message cannot be shown";
  const std::string msg = error_of([] { (void)zeros({2, 3}, {.device = Device::cuda()}); });
#if defined(GLIA_HAVE_CUDA)
  EXPECT_NE(msg.find("no CUDA device present: use --device cpu or sim"), std::string::npos) << msg;
#else
  EXPECT_NE(msg.find("glia was built without CUDA"), std::string::npos) << msg;
#endif
  EXPECT_FALSE(cuda_available());
  EXPECT_EQ(cuda_device_count(), 0);
}

TEST(DeviceTest, F64LivesOnCpuOnly) {
  const std::string msg =
      error_of([] { (void)zeros({4}, {.dtype = DType::f64, .device = Device::sim()}); });
  EXPECT_NE(msg.find("f64"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sim"), std::string::npos) << msg;
  EXPECT_NO_THROW((void)zeros({4}, {.dtype = DType::f64}));
}

TEST(DeviceTest, HostMemoryIsAligned) {
  for (std::size_t bytes : {1u, 7u, 64u, 1000u}) {
    void* p = allocate_bytes(Device::cpu(), bytes);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % kHostAlignment, 0u);
    free_bytes(Device::cpu(), p, bytes);
  }
  const Tensor t = zeros({3, 5}, {.device = Device::sim()});
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.raw_data()) % kHostAlignment, 0u);
}

// Large host blocks come back from the host cache (unless it is off: GLIA_HOST_CACHE_MB=0 or an
// AddressSanitizer build); small ones always go to the C library.
TEST(DeviceTest, HostCacheReusesLargeBlocksOnly) {
  empty_cache();
  const MemoryStats before = host_memory_stats();
  EXPECT_EQ(before.cached_bytes, 0u);
  { const Tensor small = empty({100}); }
  EXPECT_EQ(host_memory_stats().raw_allocations, before.raw_allocations);
  const std::size_t bytes = 3 * kHostCacheMinBytes;
  void* a = allocate_bytes(Device::cpu(), bytes);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) % kHostAlignment, 0u);
  std::memset(a, 0x5a, bytes);
  free_bytes(Device::cpu(), a, bytes);
  const MemoryStats freed = host_memory_stats();
  if (freed.raw_allocations == 0) GTEST_SKIP() << "the host cache is off in this build or run";
  EXPECT_EQ(freed.raw_allocations, before.raw_allocations + 1);
  EXPECT_GE(freed.cached_bytes, bytes);
  void* b = allocate_bytes(Device::sim(), bytes - 100);  // the same size class, any host device
  EXPECT_EQ(a, b);
  EXPECT_EQ(host_memory_stats().cache_hits, freed.cache_hits + 1);
  free_bytes(Device::sim(), b, bytes - 100);
  empty_cache();
  EXPECT_EQ(host_memory_stats().cached_bytes, 0u);
}

TEST(CudaDeviceTest, CachingAllocatorReusesFreedBlocks) {
  GLIA_SKIP_UNLESS_USABLE(Device::cuda());
  empty_cache();
  const CudaMemoryStats before = cuda_memory_stats(0);
  { const Tensor a = empty({1000}, {.device = Device::cuda()}); }
  const CudaMemoryStats freed = cuda_memory_stats(0);
  EXPECT_GT(freed.cached_bytes, 0u);
  EXPECT_EQ(freed.allocated_bytes, before.allocated_bytes);
  { const Tensor b = empty({999}, {.device = Device::cuda()}); }  // the same 4 KiB size class
  const CudaMemoryStats reused = cuda_memory_stats(0);
  EXPECT_EQ(reused.cache_hits, freed.cache_hits + 1);
  EXPECT_EQ(reused.raw_allocations, freed.raw_allocations);
  empty_cache();
  EXPECT_EQ(cuda_memory_stats(0).cached_bytes, 0u);
}

TEST(CudaDeviceTest, CopiesBetweenHostAndDevice) {
  GLIA_SKIP_UNLESS_USABLE(Device::cuda());
  const std::vector<float> values{1.5f, -2.0f, 3.25f, 0.0f, 7.0f};
  const Tensor g = from_vector(values, {5}).to(Device::cuda());
  const Tensor copy = g.clone();  // device to device
  synchronize(Device::cuda());
  EXPECT_EQ(copy.to_vector<float>(), values);
  EXPECT_EQ(g.to(Device::sim()).to_vector<float>(), values);
}

}  // namespace
}  // namespace glia
