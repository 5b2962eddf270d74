// Layer benchmark over the U-Net's shapes (batch 8 and 16, 1x256x256 input, 32 filters at the top
// level doubling per level): the 3x3 same convolutions and the 2x2 stride-2 up-convolutions (as
// the convolutions whose data gradient they are) forward / backward data / backward filter; batch
// norm training forward and backward per level; 2x2 max pooling forward and backward per level;
// and the losses (Dice+BCE on N x 1 x 256 x 256 logits, cross-entropy on N x 2) forward and
// backward. The cpu reference kernels (kernels/cpu) in GFLOP/s for convolution and GB/s for the
// rest; on a GPU our kernels (kernels/cuda) against cuDNN (kernels/cudnn; the losses have no cuDNN
// twin) timed side by side in one process with CUDA events on the same buffers, in TFLOP/s or
// GB/s against the device's peak, with the largest relative difference between the two outputs.
// GB/s counts the least traffic an op needs: each input read once, each output written once.
// --precision adds, per tf32/bf16/fp16 in the list (fp32 is the tables above, always printed), a
// convolution-forward row per shape on a GPU: our tensor-core kernel (conv2d_forward_tc) against
// cuDNN in tensor-op math on the operands rounded to the format (cuDNN is called with float
// tensors, so bf16/fp16 run as TF32 math on bf16/fp16 values, which TF32 holds exactly; the
// rounding launches count in cuDNN's time, as the engine pays them), with the largest relative
// difference against cuDNN, against the FP32 result and against FP32 math on the rounded operands
// (our FP32 kernel on them: the operand-rounded reference). Without a GPU those rows are skipped.
// Usage: glia-bench-layers [--quick] [--no-cpu] [--json FILE] [--precision fp32,tf32,bf16,fp16].
// GPU results go to bench/results/; the smoke run (--quick --precision fp32,bf16) is the ctest
// cpu:bench.layers_quick.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench/args.h"
#include "engine/precision.h"
#include "kernels/conv_shape.h"
#include "kernels/cpu/kernels.h"
#include "kernels/types.h"

#if defined(GLIA_HAVE_CUDA)
#include <cuda_runtime.h>
#include <cudnn.h>

#include "kernels/cuda/cast.h"
#include "kernels/cuda/launchers.h"
#include "kernels/cudnn/batchnorm.h"
#include "kernels/cudnn/conv.h"
#include "kernels/cudnn/pool.h"
#include "kernels/cudnn/settings.h"
#endif

namespace {

namespace k = glia::kernels;
namespace cpu = glia::kernels::cpu;
using k::index_t;

// What a row's work counts: multiply-adds * 2 (convolution) or bytes moved (everything else).
enum class Unit { flop, byte };

struct Row {
  std::string op;
  std::string name;
  index_t batch = 0;
  std::string pass;
  Unit unit = Unit::byte;
  double work = 0.0;  // FLOPs or bytes of one call
  double cpu_s = NAN;
  double native_s = NAN;
  double cudnn_s = NAN;
  double max_rel_diff = NAN;
  // A tensor-core row's format ("fp32" for every other row) and its native output's largest
  // relative difference against the FP32 result and against FP32 math on the rounded operands.
  std::string precision = "fp32";
  double diff_fp32 = NAN;
  double diff_rounded = NAN;
};

std::vector<float> random_vector(index_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = dist(gen);
  return v;
}

// A binary segmentation mask with about a quarter of the pixels set.
std::vector<float> random_mask(index_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::bernoulli_distribution dist(0.25);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = dist(gen) ? 1.0f : 0.0f;
  return v;
}

std::vector<std::int32_t> random_classes(index_t n, index_t classes, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<std::int32_t> dist(0, static_cast<std::int32_t>(classes - 1));
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = dist(gen);
  return v;
}

// Median wall time of one call of fn. A timed warm-up sizes the samples: calls are grouped so
// that a sample lasts at least a millisecond (tiny ops), and samples are taken until min_seconds
// have passed and there are at least 3 of them, or 1 when a call lasts over a quarter second
// (large convolutions, which would otherwise dominate the run).
double time_host(const std::function<void()>& fn, double min_seconds) {
  using clock = std::chrono::steady_clock;
  const auto w0 = clock::now();
  fn();
  const double warm = std::chrono::duration<double>(clock::now() - w0).count();
  const int calls = warm >= 1e-3 ? 1 : static_cast<int>(std::ceil(1e-3 / std::max(warm, 1e-7)));
  const std::size_t min_samples = warm > 0.25 ? 1 : 3;
  std::vector<double> samples;
  double total = 0.0;
  while (total < min_seconds || samples.size() < min_samples) {
    const auto t0 = clock::now();
    for (int i = 0; i < calls; ++i) fn();
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    samples.push_back(dt / calls);
    total += dt;
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

#if defined(GLIA_HAVE_CUDA)
void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(err));
  }
}

// One device allocation, freed on scope exit.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t bytes) {
    check(cudaMalloc(&ptr_, std::max<std::size_t>(bytes, 1)), "cudaMalloc");
  }
  template <class T>
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size() * sizeof(T)) {
    check(cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
          "cudaMemcpy");
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { cudaFree(ptr_); }
  template <class T = float>
  T* get() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

DeviceBuffer floats(index_t n) {
  return DeviceBuffer(static_cast<std::size_t>(n) * sizeof(float));
}

// The GPU side of a run: one stream and one cuDNN handle for every op.
struct Gpu {
  cudaStream_t stream = nullptr;
  cudnnHandle_t handle = nullptr;
  int reps = 20;
};

// Median time in seconds over `reps` runs of fn (after 3 warm-ups), measured with CUDA events.
double time_device(const std::function<void()>& fn, const Gpu& gpu) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> samples;
  for (int i = 0; i < gpu.reps; ++i) {
    check(cudaEventRecord(start, gpu.stream), "cudaEventRecord");
    fn();
    check(cudaEventRecord(stop, gpu.stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    samples.push_back(ms * 1e-3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

// max |a - b| / (1 + |b|) over n device floats.
double max_rel_diff(const float* a, const float* b, index_t n) {
  std::vector<float> ha(static_cast<std::size_t>(n)), hb(ha.size());
  check(cudaMemcpy(ha.data(), a, ha.size() * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaMemcpy(hb.data(), b, hb.size() * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  double worst = 0.0;
  for (std::size_t i = 0; i < ha.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(ha[i]) - hb[i]) /
                                (1.0 + std::fabs(static_cast<double>(hb[i]))));
  }
  return worst;
}

// Times native against cuDNN (null: native only) and compares their n-float outputs.
void time_pair(Row& row, const Gpu& gpu, const std::function<void()>& native,
               const std::function<void()>& cudnn, const float* native_out, const float* cudnn_out,
               index_t n) {
  row.native_s = time_device(native, gpu);
  if (cudnn) {
    row.cudnn_s = time_device(cudnn, gpu);
    row.max_rel_diff = max_rel_diff(native_out, cudnn_out, n);
  }
}
#endif

// What a run measures: cpu unless --no-cpu, the GPU when one is present, and the tensor-core
// formats of --precision.
struct Context {
  bool cpu = true;
  double cpu_min_seconds = 0.5;
  std::vector<k::TensorFormat> formats;
#if defined(GLIA_HAVE_CUDA)
  const Gpu* gpu = nullptr;
#endif
};

// --- convolution -------------------------------------------------------------------------------

enum class ConvPass { forward, backward_data, backward_filter };

// A 3x3 same convolution c_in -> c_out on size x size.
std::pair<std::string, k::ConvShape> conv3x3(index_t n, index_t c_in, index_t c_out, index_t size) {
  return {
      "3x3 " + std::to_string(c_in) + "->" + std::to_string(c_out) + " @" + std::to_string(size),
      k::make_conv_shape(n, c_in, size, size, c_out, 3, 3, 1, 1, 1, 1, 1, 1)};
}

// ConvTranspose2d(c_in, c_out, 2, stride 2) from size to 2 size: the 2x2 stride-2 convolution
// of the up-sampled plane (c_out channels) down to c_in channels.
std::pair<std::string, k::ConvShape> upconv(index_t n, index_t c_in, index_t c_out, index_t size) {
  return {
      "up 2x2 " + std::to_string(c_in) + "->" + std::to_string(c_out) + " @" + std::to_string(size),
      k::make_conv_shape(n, c_out, 2 * size, 2 * size, c_in, 2, 2, 2, 2, 0, 0, 1, 1)};
}

#if defined(GLIA_HAVE_CUDA)
// The cuDNN settings for a scope, restored on exit.
class ScopedCudnnSettings {
 public:
  explicit ScopedCudnnSettings(const k::cudnn::Settings& s) : previous_(k::cudnn::settings()) {
    k::cudnn::set_settings(s);
  }
  ~ScopedCudnnSettings() { k::cudnn::set_settings(previous_); }
  ScopedCudnnSettings(const ScopedCudnnSettings&) = delete;
  ScopedCudnnSettings& operator=(const ScopedCudnnSettings&) = delete;

 private:
  k::cudnn::Settings previous_;
};

// The forward pass of one shape per tensor-core format of ctx (see the header), on the inputs
// dx and dw of bench_conv.
void bench_conv_tc(const Context& ctx, const std::pair<std::string, k::ConvShape>& c, double flops,
                   const DeviceBuffer& dx, const DeviceBuffer& dw, std::vector<Row>& rows) {
  if (ctx.formats.empty()) return;
  const k::ConvShape& s = c.second;
  const Gpu& gpu = *ctx.gpu;
  const DeviceBuffer xr = floats(s.x_numel()), wr = floats(s.w_numel()),
                     y_fp32 = floats(s.y_numel()), y_rounded = floats(s.y_numel()),
                     y_native = floats(s.y_numel()), y_cudnn = floats(s.y_numel());
  k::cuda::conv2d_forward(s, dx.get(), dw.get(), nullptr, y_fp32.get(), gpu.stream);
  // Tensor-op math for cuDNN, as the engine sets it for every precision but fp32.
  k::cudnn::Settings tensor_op = k::cudnn::settings();
  tensor_op.math = k::cudnn::Math::tf32;
  const ScopedCudnnSettings scoped(tensor_op);
  const std::size_t ws_bytes = k::cudnn::conv2d_forward_workspace_size(gpu.handle, s);
  const DeviceBuffer ws(ws_bytes);
  for (const k::TensorFormat format : ctx.formats) {
    Row row{"conv2d", c.first, s.n, "fwd", Unit::flop, flops};
    row.precision = glia::precision_name(format == k::TensorFormat::tf32   ? glia::Precision::tf32
                                         : format == k::TensorFormat::bf16 ? glia::Precision::bf16
                                                                           : glia::Precision::fp16);
    const auto native = [&] {
      k::cuda::conv2d_forward_tc(s, format, dx.get(), dw.get(), nullptr, y_native.get(),
                                 gpu.stream);
    };
    const auto round_operands = [&] {
      k::cuda::round_to_format(dx.get(), xr.get(), s.x_numel(), format, gpu.stream);
      k::cuda::round_to_format(dw.get(), wr.get(), s.w_numel(), format, gpu.stream);
    };
    const auto cudnn = [&] {
      round_operands();
      k::cudnn::conv2d_forward(gpu.handle, s, xr.get(), wr.get(), nullptr, y_cudnn.get(),
                               ws.get<void>(), ws_bytes, gpu.stream);
    };
    time_pair(row, gpu, native, cudnn, y_native.get(), y_cudnn.get(), s.y_numel());
    round_operands();
    k::cuda::conv2d_forward(s, xr.get(), wr.get(), nullptr, y_rounded.get(), gpu.stream);
    row.diff_fp32 = max_rel_diff(y_native.get(), y_fp32.get(), s.y_numel());
    row.diff_rounded = max_rel_diff(y_native.get(), y_rounded.get(), s.y_numel());
    rows.push_back(row);
  }
}
#endif

// The three passes of one shape, on the GPU native and cuDNN on the same inputs, then on cpu.
void bench_conv(const Context& ctx, const std::pair<std::string, k::ConvShape>& c,
                std::vector<Row>& rows) {
  const k::ConvShape& s = c.second;
  // Every pass does one multiply-add per (output element, patch element).
  const double flops = 2.0 * static_cast<double>(s.y_numel()) * static_cast<double>(s.patch());
  const std::size_t first = rows.size();
  for (const char* pass : {"fwd", "bwd data", "bwd filter"}) {
    rows.push_back(Row{"conv2d", c.first, s.n, pass, Unit::flop, flops});
  }
  const auto x = random_vector(s.x_numel(), 1);
  const auto w = random_vector(s.w_numel(), 2);
  const auto gy = random_vector(s.y_numel(), 3);
  const index_t largest = std::max({s.x_numel(), s.w_numel(), s.y_numel()});
  const ConvPass passes[] = {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_filter};

#if defined(GLIA_HAVE_CUDA)
  if (ctx.gpu != nullptr) {
    const Gpu& gpu = *ctx.gpu;
    const DeviceBuffer dx(x), dw(w), dgy(gy), out_native = floats(largest),
                                              out_cudnn = floats(largest);
    const DeviceBuffer split = floats(k::cuda::conv2d_backward_filter_workspace_size(s));
    const std::size_t ws_bytes =
        std::max({k::cudnn::conv2d_forward_workspace_size(gpu.handle, s),
                  k::cudnn::conv2d_backward_data_workspace_size(gpu.handle, s),
                  k::cudnn::conv2d_backward_filter_workspace_size(gpu.handle, s)});
    const DeviceBuffer ws(ws_bytes);
    for (int p = 0; p < 3; ++p) {
      float *yn = out_native.get(), *yc = out_cudnn.get();
      std::function<void()> native, cudnn;
      index_t out_numel = 0;
      switch (passes[p]) {
        case ConvPass::forward:
          native = [&] { k::cuda::conv2d_forward(s, dx.get(), dw.get(), nullptr, yn, gpu.stream); };
          cudnn = [&] {
            k::cudnn::conv2d_forward(gpu.handle, s, dx.get(), dw.get(), nullptr, yc, ws.get<void>(),
                                     ws_bytes, gpu.stream);
          };
          out_numel = s.y_numel();
          break;
        case ConvPass::backward_data:
          native = [&] { k::cuda::conv2d_backward_data(s, dgy.get(), dw.get(), yn, gpu.stream); };
          cudnn = [&] {
            k::cudnn::conv2d_backward_data(gpu.handle, s, dgy.get(), dw.get(), yc, ws.get<void>(),
                                           ws_bytes, gpu.stream);
          };
          out_numel = s.x_numel();
          break;
        case ConvPass::backward_filter:
          native = [&] {
            k::cuda::conv2d_backward_filter(s, dx.get(), dgy.get(), yn, split.get(), gpu.stream);
          };
          cudnn = [&] {
            k::cudnn::conv2d_backward_filter(gpu.handle, s, dx.get(), dgy.get(), yc, ws.get<void>(),
                                             ws_bytes, gpu.stream);
          };
          out_numel = s.w_numel();
          break;
      }
      time_pair(rows[first + p], gpu, native, cudnn, yn, yc, out_numel);
    }
    bench_conv_tc(ctx, c, flops, dx, dw, rows);
  }
#endif

  if (ctx.cpu) {
    std::vector<float> out(static_cast<std::size_t>(largest));
    for (int p = 0; p < 3; ++p) {
      std::function<void()> fn;
      switch (passes[p]) {
        case ConvPass::forward:
          fn = [&] { cpu::conv2d_forward<float>(s, x.data(), w.data(), nullptr, out.data()); };
          break;
        case ConvPass::backward_data:
          fn = [&] { cpu::conv2d_backward_data<float>(s, gy.data(), w.data(), out.data()); };
          break;
        case ConvPass::backward_filter:
          fn = [&] { cpu::conv2d_backward_filter<float>(s, x.data(), gy.data(), out.data()); };
          break;
      }
      rows[first + p].cpu_s = time_host(fn, ctx.cpu_min_seconds);
    }
  }
}

// --- batch norm (training) ---------------------------------------------------------------------

// Forward: the batch statistics and the affine map (reads x, writes y). Backward: the weight and
// bias gradients and gx through the batch statistics (reads x and gy, writes gx).
void bench_batch_norm(const Context& ctx, index_t n, index_t c, index_t size,
                      std::vector<Row>& rows) {
  k::BatchNormShape s;
  s.n = n;
  s.c = c;
  s.h = s.w = size;
  const double bytes = static_cast<double>(s.numel()) * sizeof(float);
  const std::string name = "C " + std::to_string(c) + " @" + std::to_string(size);
  const std::size_t first = rows.size();
  rows.push_back(Row{"batch_norm", name, n, "fwd train", Unit::byte, 2 * bytes});
  rows.push_back(Row{"batch_norm", name, n, "bwd", Unit::byte, 3 * bytes});
  const auto x = random_vector(s.numel(), 1);
  const auto gy = random_vector(s.numel(), 2);
  const std::vector<float> weight(static_cast<std::size_t>(c), 1.5f),
      bias(static_cast<std::size_t>(c), 0.25f), zeros(static_cast<std::size_t>(c), 0.0f),
      ones(static_cast<std::size_t>(c), 1.0f);

#if defined(GLIA_HAVE_CUDA)
  if (ctx.gpu != nullptr) {
    const Gpu& gpu = *ctx.gpu;
    const DeviceBuffer dx(x), dgy(gy), dw(weight), db(bias), rm(zeros), rv(ones), y_native(x),
        y_cudnn(x), mean = floats(c), invstd = floats(c), save_mean = floats(c),
                    save_invstd = floats(c), sum_dy = floats(c), sum_dy_xhat = floats(c),
                    gw = floats(c), gb = floats(c), gx_native(x), gx_cudnn(x);
    // The split reductions' scratch, as the engine gives it (one float when none is needed).
    const index_t ws_floats = k::cuda::batch_norm_workspace_size(s);
    const DeviceBuffer ws = floats(ws_floats > 0 ? ws_floats : 1);
    time_pair(
        rows[first], gpu,
        [&] {
          k::cuda::batch_norm_stats(dx.get(), mean.get(), invstd.get(), rm.get(), rv.get(), s,
                                    ws.get(), gpu.stream);
          k::cuda::batch_norm_apply(dx.get(), mean.get(), invstd.get(), dw.get(), db.get(),
                                    y_native.get(), s, gpu.stream);
        },
        [&] {
          k::cudnn::batch_norm_forward_training(gpu.handle, s, dx.get(), dw.get(), db.get(),
                                                y_cudnn.get(), rm.get(), rv.get(), save_mean.get(),
                                                save_invstd.get(), gpu.stream);
        },
        y_native.get(), y_cudnn.get(), s.numel());
    time_pair(
        rows[first + 1], gpu,
        [&] {
          k::cuda::batch_norm_backward_reduce(dx.get(), dgy.get(), mean.get(), invstd.get(),
                                              sum_dy.get(), sum_dy_xhat.get(), s, ws.get(),
                                              gpu.stream);
          k::cuda::batch_norm_backward_input(dx.get(), dgy.get(), mean.get(), invstd.get(),
                                             dw.get(), sum_dy.get(), sum_dy_xhat.get(),
                                             gx_native.get(), s, true, gpu.stream);
        },
        [&] {
          k::cudnn::batch_norm_backward(gpu.handle, s, dx.get(), dgy.get(), dw.get(),
                                        save_mean.get(), save_invstd.get(), gx_cudnn.get(),
                                        gw.get(), gb.get(), gpu.stream);
        },
        gx_native.get(), gx_cudnn.get(), s.numel());
  }
#endif

  if (ctx.cpu) {
    std::vector<float> y(x.size()), gx(x.size()), mean(weight.size()), invstd(weight.size()),
        running_mean = zeros, running_var = ones, sum_dy(weight.size()), sum_dy_xhat(weight.size());
    rows[first].cpu_s = time_host(
        [&] {
          cpu::batch_norm_stats<float>(x.data(), mean.data(), invstd.data(), running_mean.data(),
                                       running_var.data(), s);
          cpu::batch_norm_apply<float>(x.data(), mean.data(), invstd.data(), weight.data(),
                                       bias.data(), y.data(), s);
        },
        ctx.cpu_min_seconds);
    rows[first + 1].cpu_s = time_host(
        [&] {
          cpu::batch_norm_backward_reduce<float>(x.data(), gy.data(), mean.data(), invstd.data(),
                                                 sum_dy.data(), sum_dy_xhat.data(), s);
          cpu::batch_norm_backward_input<float>(x.data(), gy.data(), mean.data(), invstd.data(),
                                                weight.data(), sum_dy.data(), sum_dy_xhat.data(),
                                                gx.data(), s, true);
        },
        ctx.cpu_min_seconds);
  }
}

// --- max pooling 2x2 ---------------------------------------------------------------------------

// Forward reads x and writes y (plus the argmax indices natively; cuDNN keeps none); backward
// reads gy and writes gx (natively through the indices, cuDNN from x and y again).
void bench_max_pool(const Context& ctx, index_t n, index_t c, index_t size,
                    std::vector<Row>& rows) {
  const k::Pool2dShape s = k::Pool2dShape::make(n, c, size, size, 2, 2, 0);
  const index_t x_numel = n * c * size * size, y_numel = n * c * s.out_h * s.out_w;
  const double bytes = static_cast<double>(x_numel + y_numel) * sizeof(float);
  const std::string name = "C " + std::to_string(c) + " @" + std::to_string(size);
  const std::size_t first = rows.size();
  rows.push_back(Row{"max_pool 2x2", name, n, "fwd", Unit::byte, bytes});
  rows.push_back(Row{"max_pool 2x2", name, n, "bwd", Unit::byte, bytes});
  const auto x = random_vector(x_numel, 1);
  const auto gy = random_vector(y_numel, 2);

#if defined(GLIA_HAVE_CUDA)
  if (ctx.gpu != nullptr) {
    const Gpu& gpu = *ctx.gpu;
    const DeviceBuffer dx(x), dgy(gy),
        y_native = floats(y_numel), y_cudnn = floats(y_numel),
        idx(static_cast<std::size_t>(y_numel) * sizeof(std::int32_t)), gx_native = floats(x_numel),
        gx_cudnn = floats(x_numel);
    time_pair(
        rows[first], gpu,
        [&] {
          k::cuda::max_pool2d(dx.get(), y_native.get(), idx.get<std::int32_t>(), s, gpu.stream);
        },
        [&] {
          k::cudnn::pool2d_forward(gpu.handle, k::cudnn::PoolMode::max, s, dx.get(), y_cudnn.get(),
                                   gpu.stream);
        },
        y_native.get(), y_cudnn.get(), y_numel);
    time_pair(
        rows[first + 1], gpu,
        [&] {
          k::cuda::max_pool2d_backward(dgy.get(), idx.get<std::int32_t>(), gx_native.get(), s,
                                       gpu.stream);
        },
        [&] {
          k::cudnn::pool2d_backward(gpu.handle, k::cudnn::PoolMode::max, s, dx.get(), y_cudnn.get(),
                                    dgy.get(), gx_cudnn.get(), gpu.stream);
        },
        gx_native.get(), gx_cudnn.get(), x_numel);
  }
#endif

  if (ctx.cpu) {
    std::vector<float> y(static_cast<std::size_t>(y_numel)), gx(x.size());
    std::vector<std::int32_t> idx(y.size());
    rows[first].cpu_s = time_host(
        [&] { cpu::max_pool2d<float>(x.data(), y.data(), idx.data(), s); }, ctx.cpu_min_seconds);
    rows[first + 1].cpu_s =
        time_host([&] { cpu::max_pool2d_backward<float>(gy.data(), idx.data(), gx.data(), s); },
                  ctx.cpu_min_seconds);
  }
}

// --- losses ------------------------------------------------------------------------------------

// Dice + BCE (weights 1, smooth 1, pos_weight 1) on the segmentation logits [n, 1, 256, 256]:
// forward reads logits and mask; backward reads them and writes the logits' gradient.
void bench_dice_bce(const Context& ctx, index_t n, std::vector<Row>& rows) {
  const k::SampleShape s{n, 256 * 256};
  const index_t numel = s.samples * s.elements;
  const double bytes = static_cast<double>(numel) * sizeof(float);
  const std::size_t first = rows.size();
  rows.push_back(Row{"dice+bce", "1x256x256", n, "fwd", Unit::byte, 2 * bytes});
  rows.push_back(Row{"dice+bce", "1x256x256", n, "bwd", Unit::byte, 3 * bytes});
  const auto x = random_vector(numel, 1);
  const auto t = random_mask(numel, 2);
  const std::vector<float> gloss(static_cast<std::size_t>(n), 1.0f / static_cast<float>(n));

#if defined(GLIA_HAVE_CUDA)
  if (ctx.gpu != nullptr) {
    const Gpu& gpu = *ctx.gpu;
    const DeviceBuffer dx(x), dt(t), dgloss(gloss),
        sums = floats(3 * n), loss = floats(n), ws = floats(k::cuda::dice_bce_workspace_size(s)),
        gx = floats(numel);
    time_pair(
        rows[first], gpu,
        [&] {
          k::cuda::dice_bce(dx.get(), dt.get(), sums.get(), loss.get(), s, 1.0f, 1.0f, 1.0f, 1.0f,
                            ws.get(), gpu.stream);
        },
        nullptr, nullptr, nullptr, 0);
    time_pair(
        rows[first + 1], gpu,
        [&] {
          k::cuda::dice_bce_backward(dx.get(), dt.get(), sums.get(), dgloss.get(), gx.get(), s,
                                     1.0f, 1.0f, 1.0f, 1.0f, gpu.stream);
        },
        nullptr, nullptr, nullptr, 0);
  }
#endif

  if (ctx.cpu) {
    std::vector<float> sums(static_cast<std::size_t>(3 * n)), loss(gloss.size()), gx(x.size());
    rows[first].cpu_s = time_host(
        [&] {
          cpu::dice_bce<float>(x.data(), t.data(), sums.data(), loss.data(), s, 1.0f, 1.0f, 1.0f,
                               1.0f);
        },
        ctx.cpu_min_seconds);
    rows[first + 1].cpu_s = time_host(
        [&] {
          cpu::dice_bce_backward<float>(x.data(), t.data(), sums.data(), gloss.data(), gx.data(), s,
                                        1.0f, 1.0f, 1.0f, 1.0f);
        },
        ctx.cpu_min_seconds);
  }
}

// Cross-entropy on the classification logits [n, 2] (no class weights, no smoothing): a
// launch-latency benchmark more than a bandwidth one at these sizes.
void bench_cross_entropy(const Context& ctx, index_t n, std::vector<Row>& rows) {
  const k::ClassShape s{n, 2};
  const double logits = static_cast<double>(n * s.classes) * sizeof(float);
  const double per_row = static_cast<double>(n) * sizeof(float);  // a target, a loss or a gloss
  const std::size_t first = rows.size();
  rows.push_back(Row{"cross_entropy", "2 classes", n, "fwd", Unit::byte, logits + 4 * per_row});
  rows.push_back(Row{"cross_entropy", "2 classes", n, "bwd", Unit::byte, 2 * logits + 3 * per_row});
  const auto x = random_vector(n * s.classes, 1);
  const auto target = random_classes(n, s.classes, 2);
  const std::vector<float> gloss(static_cast<std::size_t>(n), 1.0f / static_cast<float>(n));

#if defined(GLIA_HAVE_CUDA)
  if (ctx.gpu != nullptr) {
    const Gpu& gpu = *ctx.gpu;
    const DeviceBuffer dx(x), dtarget(target), dgloss(gloss),
        loss = floats(n), lse = floats(n), target_weight = floats(n), gx = floats(n * s.classes);
    time_pair(
        rows[first], gpu,
        [&] {
          k::cuda::cross_entropy(dx.get(), dtarget.get<std::int32_t>(), nullptr, loss.get(),
                                 lse.get(), target_weight.get(), s, 0.0f, gpu.stream);
        },
        nullptr, nullptr, nullptr, 0);
    time_pair(
        rows[first + 1], gpu,
        [&] {
          k::cuda::cross_entropy_backward(dx.get(), dtarget.get<std::int32_t>(), nullptr, lse.get(),
                                          dgloss.get(), gx.get(), s, 0.0f, gpu.stream);
        },
        nullptr, nullptr, nullptr, 0);
  }
#endif

  if (ctx.cpu) {
    std::vector<float> loss(gloss.size()), lse(gloss.size()), target_weight(gloss.size()),
        gx(x.size());
    rows[first].cpu_s = time_host(
        [&] {
          cpu::cross_entropy<float>(x.data(), target.data(), nullptr, loss.data(), lse.data(),
                                    target_weight.data(), s, 0.0f);
        },
        ctx.cpu_min_seconds);
    rows[first + 1].cpu_s = time_host(
        [&] {
          cpu::cross_entropy_backward<float>(x.data(), target.data(), nullptr, lse.data(),
                                             gloss.data(), gx.data(), s, 0.0f);
        },
        ctx.cpu_min_seconds);
  }
}

// --- report ------------------------------------------------------------------------------------

std::string fmt(double v, const char* spec = "%.1f") {
  if (std::isnan(v) || std::isinf(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, spec, v);
  return buf;
}

// The device's peaks; NaN without a GPU.
struct Peaks {
  double bytes_per_s = NAN;
  double flops = NAN;  // an estimate, see main
  // Dense tensor-core FLOP/s with FP32 accumulation for TF32 and for 16-bit inputs: an estimate
  // from the SM count, the clock and the MMA rate of sm_80 / sm_90; NaN on other devices.
  double tf32_flops = NAN;
  double half_flops = NAN;
};

// One table per op: cpu rate, then GPU times, native speed-up over cuDNN (cuDNN time / native
// time), rates and their share of the peak, and the largest relative difference.
void print_table(const std::vector<Row>& rows, const std::string& op, const Peaks& peaks) {
  const bool flop = rows.end() != std::find_if(rows.begin(), rows.end(), [&](const Row& r) {
                      return r.op == op && r.unit == Unit::flop;
                    });
  const char* cpu_unit = flop ? "GFLOP/s" : "GB/s";
  const char* gpu_unit = flop ? "TFLOP/s" : "GB/s";
  const double gpu_scale = flop ? 1e-12 : 1e-9;
  const double peak = flop ? peaks.flops : peaks.bytes_per_s;
  std::printf("\n%s (float32): cpu time in us and %s; GPU time in us, %s and %% of peak\n",
              op.c_str(), cpu_unit, gpu_unit);
  std::printf("%-20s %3s %-10s %10s %9s %10s %10s %7s %8s %5s %8s %5s %9s\n", "case", "N", "pass",
              "cpu us", "cpu", "native us", "cuDNN us", "speedup", "native", "%pk", "cuDNN", "%pk",
              "max rel d");
  for (const auto& r : rows) {
    if (r.op != op || r.precision != "fp32") continue;
    const double native_rate = r.work / r.native_s, cudnn_rate = r.work / r.cudnn_s;
    std::printf("%-20s %3lld %-10s %10s %9s %10s %10s %7s %8s %5s %8s %5s %9s\n", r.name.c_str(),
                static_cast<long long>(r.batch), r.pass.c_str(), fmt(r.cpu_s * 1e6).c_str(),
                fmt(r.work / r.cpu_s * 1e-9).c_str(), fmt(r.native_s * 1e6).c_str(),
                fmt(r.cudnn_s * 1e6).c_str(), fmt(r.cudnn_s / r.native_s, "%.2f").c_str(),
                fmt(native_rate * gpu_scale, flop ? "%.2f" : "%.0f").c_str(),
                fmt(100.0 * native_rate / peak, "%.0f").c_str(),
                fmt(cudnn_rate * gpu_scale, flop ? "%.2f" : "%.0f").c_str(),
                fmt(100.0 * cudnn_rate / peak, "%.0f").c_str(),
                fmt(r.max_rel_diff, "%.1e").c_str());
  }
}

// The tensor-core rows (see the header): times, rates and share of the format's peak, and the
// native output's largest relative differences.
void print_precision_table(const std::vector<Row>& rows, const Peaks& peaks) {
  std::printf(
      "\nconv2d fwd per precision: native = conv2d_forward_tc; cuDNN = operands rounded to the "
      "format, then tensor-op (TF32) math on float tensors (exact for bf16/fp16 values), rounding "
      "included in its time; time in us, TFLOP/s and %% of the format's tensor peak; max rel d of "
      "native against cuDNN, the FP32 result and FP32 math on the rounded operands\n");
  std::printf("%-20s %3s %-5s %10s %10s %7s %8s %5s %8s %5s %9s %9s %9s\n", "case", "N", "prec",
              "native us", "cuDNN us", "speedup", "native", "%pk", "cuDNN", "%pk", "vs cuDNN",
              "vs fp32", "vs round");
  for (const auto& r : rows) {
    if (r.precision == "fp32") continue;
    const double peak = r.precision == "tf32" ? peaks.tf32_flops : peaks.half_flops;
    const double native_rate = r.work / r.native_s, cudnn_rate = r.work / r.cudnn_s;
    std::printf("%-20s %3lld %-5s %10s %10s %7s %8s %5s %8s %5s %9s %9s %9s\n", r.name.c_str(),
                static_cast<long long>(r.batch), r.precision.c_str(), fmt(r.native_s * 1e6).c_str(),
                fmt(r.cudnn_s * 1e6).c_str(), fmt(r.cudnn_s / r.native_s, "%.2f").c_str(),
                fmt(native_rate * 1e-12, "%.2f").c_str(),
                fmt(100.0 * native_rate / peak, "%.0f").c_str(),
                fmt(cudnn_rate * 1e-12, "%.2f").c_str(),
                fmt(100.0 * cudnn_rate / peak, "%.0f").c_str(), fmt(r.max_rel_diff, "%.1e").c_str(),
                fmt(r.diff_fp32, "%.1e").c_str(), fmt(r.diff_rounded, "%.1e").c_str());
  }
}

std::string num(double v) {
  return std::isnan(v) ? std::string("null") : fmt(v, "%.6g");
}

void write_json(const std::string& path, const std::string& device, const Peaks& peaks,
                const std::vector<Row>& rows) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) throw std::runtime_error("cannot write " + tmp);
    out << "{\"benchmark\": \"layers\", \"gpu\": \"" << device
        << "\", \"peak_bytes_per_s\": " << num(peaks.bytes_per_s)
        << ", \"peak_flops_estimate\": " << num(peaks.flops)
        << ", \"peak_tf32_flops_estimate\": " << num(peaks.tf32_flops)
        << ", \"peak_16bit_flops_estimate\": " << num(peaks.half_flops) << ", \"rows\": [\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      out << "  {\"op\": \"" << r.op << "\", \"case\": \"" << r.name << "\", \"batch\": " << r.batch
          << ", \"pass\": \"" << r.pass << "\", \"precision\": \"" << r.precision
          << "\", \"unit\": \"" << (r.unit == Unit::flop ? "flop" : "byte")
          << "\", \"work\": " << num(r.work) << ", \"cpu_s\": " << num(r.cpu_s)
          << ", \"native_s\": " << num(r.native_s) << ", \"cudnn_s\": " << num(r.cudnn_s)
          << ", \"max_rel_diff\": " << num(r.max_rel_diff)
          << ", \"max_rel_diff_fp32\": " << num(r.diff_fp32)
          << ", \"max_rel_diff_rounded\": " << num(r.diff_rounded) << "}"
          << (i + 1 < rows.size() ? ",\n" : "\n");
    }
    out << "]}\n";
    if (!out.flush()) throw std::runtime_error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("cannot rename " + tmp + " to " + path);
  }
}

int run(int argc, char** argv) {
  bool quick = false;
  Context ctx;
  std::string json_path;
  for (glia::bench::Args args(argc, argv); args.next();) {
    if (args.is("--quick")) {
      quick = true;
    } else if (args.is("--no-cpu")) {
      ctx.cpu = false;
    } else if (args.is("--json")) {
      json_path = args.value();
    } else if (args.is("--precision")) {
      ctx.formats.clear();
      for (const glia::Precision p : args.precisions()) {
        if (p == glia::Precision::tf32) ctx.formats.push_back(k::TensorFormat::tf32);
        if (p == glia::Precision::bf16) ctx.formats.push_back(k::TensorFormat::bf16);
        if (p == glia::Precision::fp16) ctx.formats.push_back(k::TensorFormat::f16);
      }
    } else {
      args.unknown(
          "glia-bench-layers [--quick] [--no-cpu] [--json FILE] [--precision fp32,tf32,bf16,fp16]");
    }
  }
  ctx.cpu_min_seconds = quick ? 0.05 : 0.3;

  std::string device = "none";
  Peaks peaks;
#if defined(GLIA_HAVE_CUDA)
  Gpu gpu;
  gpu.reps = quick ? 5 : 20;
  int count = 0;
  if (cudaGetDeviceCount(&count) == cudaSuccess && count > 0) {
    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    device = prop.name;
    int clock_khz = 0, memory_clock_khz = 0;
    check(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0), "cudaDeviceGetAttribute");
    check(cudaDeviceGetAttribute(&memory_clock_khz, cudaDevAttrMemoryClockRate, 0),
          "cudaDeviceGetAttribute");
    // Double data rate: two transfers per memory clock over the whole bus.
    peaks.bytes_per_s = 2.0 * memory_clock_khz * 1e3 * prop.memoryBusWidth / 8.0;
    peaks.flops = 2.0 * 128.0 * prop.multiProcessorCount * clock_khz * 1e3;
    // Dense MMA multiply-adds per SM per clock with 16-bit inputs (TF32: half): 1024 on sm_80
    // (A100), 2048 on sm_90 (H100/H200); no estimate for other devices.
    const double half_fma = prop.major == 9 && prop.minor == 0   ? 2048.0
                            : prop.major == 8 && prop.minor == 0 ? 1024.0
                                                                 : NAN;
    peaks.half_flops = 2.0 * half_fma * prop.multiProcessorCount * clock_khz * 1e3;
    peaks.tf32_flops = 0.5 * peaks.half_flops;
    std::printf(
        "GPU: %s; memory peak %.0f GB/s (2 * memory clock * bus width); FP32 peak %.1f "
        "TFLOP/s is an estimate (SMs * clock * 128 FMA/SM/clock * 2)\n",
        device.c_str(), peaks.bytes_per_s * 1e-9, peaks.flops * 1e-12);
    check(cudaStreamCreate(&gpu.stream), "cudaStreamCreate");
    if (cudnnCreate(&gpu.handle) != CUDNN_STATUS_SUCCESS) {
      throw std::runtime_error("cudnnCreate failed");
    }
    ctx.gpu = &gpu;
  } else {
    std::printf("cuda: no device present; GPU part skipped\n");
  }
  const bool have_gpu = ctx.gpu != nullptr;
#else
  std::printf("cuda: glia was built without CUDA; GPU part skipped\n");
  const bool have_gpu = false;
#endif
  if (!ctx.formats.empty() && !have_gpu) {
    std::printf("conv2d fwd per precision (tensor cores): needs a GPU; skipped\n");
  }

  const std::vector<index_t> batches =
      quick ? std::vector<index_t>{8} : std::vector<index_t>{8, 16};
  // The U-Net's levels: filters and plane size, 32 at 256 down to the 512-filter bottleneck at 16.
  struct Level {
    index_t c, size;
  };
  const std::vector<Level> levels = {{32, 256}, {64, 128}, {128, 64}, {256, 32}, {512, 16}};
  std::vector<Row> rows;
  for (index_t n : batches) {
    std::vector<std::pair<std::string, k::ConvShape>> convs;
    if (quick) {
      convs = {conv3x3(n, 256, 256, 32), upconv(n, 64, 32, 128)};
    } else {
      // The encoder's two 3x3 convolutions per level (the first from the input's single
      // channel), then the decoder's up-convolutions.
      index_t c_in = 1;
      for (const Level& l : levels) {
        convs.push_back(conv3x3(n, c_in, l.c, l.size));
        convs.push_back(conv3x3(n, l.c, l.c, l.size));
        c_in = l.c;
      }
      for (std::size_t i = levels.size() - 1; i > 0; --i) {
        convs.push_back(upconv(n, levels[i].c, levels[i - 1].c, levels[i].size));
      }
    }
    for (const auto& c : convs) bench_conv(ctx, c, rows);
  }
  for (index_t n : batches) {
    for (std::size_t i = 0; i < levels.size(); ++i) {
      if (quick && i != 3) continue;
      bench_batch_norm(ctx, n, levels[i].c, levels[i].size, rows);
    }
  }
  for (index_t n : batches) {
    // Pooling follows every level but the bottleneck.
    for (std::size_t i = 0; i + 1 < levels.size(); ++i) {
      if (quick && i != 3) continue;
      bench_max_pool(ctx, n, levels[i].c, levels[i].size, rows);
    }
  }
  for (index_t n : batches) {
    bench_dice_bce(ctx, n, rows);
    bench_cross_entropy(ctx, n, rows);
  }

#if defined(GLIA_HAVE_CUDA)
  if (ctx.gpu != nullptr) {
    cudnnDestroy(gpu.handle);
    cudaStreamDestroy(gpu.stream);
  }
#endif

  std::printf(
      "GB/s counts each input read once and each output written once; speedup is cuDNN time / "
      "native time.\n");
  for (const char* op : {"conv2d", "batch_norm", "max_pool 2x2", "dice+bce", "cross_entropy"}) {
    print_table(rows, op, peaks);
  }
  if (!ctx.formats.empty() && have_gpu) print_precision_table(rows, peaks);
  if (!json_path.empty()) write_json(json_path, device, peaks, rows);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return glia::bench::run_main("glia-bench-layers", [&] { return run(argc, argv); });
}
