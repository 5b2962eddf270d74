// Convolution benchmark over the U-Net's shapes (batch 8, 1x256x256 input, 32 filters at the top
// level doubling per level, 3x3 same convolutions and the 2x2 stride-2 up-convolutions as the
// convolutions whose data gradient they are): forward, backward data and backward filter. The cpu
// reference (im2col + OpenBLAS) in GFLOP/s, and on a GPU our implicit-GEMM kernels
// (kernels/cuda/conv.cu) against cuDNN (kernels/cudnn/conv.cpp), timed side by side in one process
// with CUDA events on the same buffers, with the largest relative difference between the two.
// Usage: glia-bench-layers [--quick] [--no-cpu] [--json FILE]. GPU results go to bench/results/.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/conv_shape.h"
#include "kernels/cpu/kernels.h"

#if defined(GLIA_HAVE_CUDA)
#include <cuda_runtime.h>
#include <cudnn.h>

#include "kernels/cuda/launchers.h"
#include "kernels/cudnn/conv.h"
#endif

namespace {

using glia::kernels::ConvShape;
using glia::kernels::index_t;

enum class Pass { forward, backward_data, backward_filter };
const char* pass_name(Pass p) {
  return p == Pass::forward ? "fwd" : p == Pass::backward_data ? "bwd data" : "bwd filter";
}

struct Case {
  std::string name;
  ConvShape s;
};

// A 3x3 same convolution c_in -> c_out on size x size, batch 8.
Case conv3x3(index_t c_in, index_t c_out, index_t size) {
  return {
      "3x3 " + std::to_string(c_in) + "->" + std::to_string(c_out) + " @" + std::to_string(size),
      glia::kernels::make_conv_shape(8, c_in, size, size, c_out, 3, 3, 1, 1, 1, 1, 1, 1)};
}

// ConvTranspose2d(c_in, c_out, 2, stride 2) from size to 2 size: the 2x2 stride-2 convolution
// of the up-sampled plane (c_out channels) down to c_in channels.
Case upconv(index_t c_in, index_t c_out, index_t size) {
  return {
      "up 2x2 " + std::to_string(c_in) + "->" + std::to_string(c_out) + " @" + std::to_string(size),
      glia::kernels::make_conv_shape(8, c_out, 2 * size, 2 * size, c_in, 2, 2, 2, 2, 0, 0, 1, 1)};
}

double gflops(const ConvShape& s, double seconds) {
  // Every pass does one multiply-add per (output element, patch element).
  return 2.0 * static_cast<double>(s.y_numel()) * static_cast<double>(s.patch()) / seconds * 1e-9;
}

std::vector<float> random_vector(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// Median wall time of fn over at least 3 repetitions filling min_seconds (after one warm-up).
double time_host(const std::function<void()>& fn, double min_seconds) {
  fn();
  std::vector<double> samples;
  double total = 0.0;
  while (total < min_seconds || samples.size() < 3) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    samples.push_back(dt);
    total += dt;
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

struct Row {
  std::string name;
  ConvShape s;
  Pass pass;
  double cpu_gflops = NAN;
  double native_gflops = NAN;
  double cudnn_gflops = NAN;
  double max_rel_diff = NAN;
};

#if defined(GLIA_HAVE_CUDA)
void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    std::fprintf(stderr, "glia-bench-layers: %s failed: %s\n", what, cudaGetErrorString(err));
    std::exit(1);
  }
}

// Median time in seconds over `reps` runs of fn, measured with CUDA events.
double time_device(const std::function<void()>& fn, cudaStream_t stream, int reps) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> samples;
  for (int i = 0; i < reps; ++i) {
    check(cudaEventRecord(start, stream), "cudaEventRecord");
    fn();
    check(cudaEventRecord(stop, stream), "cudaEventRecord");
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

float* device_copy(const std::vector<float>& host) {
  float* d = nullptr;
  check(cudaMalloc(&d, host.size() * sizeof(float)), "cudaMalloc");
  check(cudaMemcpy(d, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice),
        "cudaMemcpy");
  return d;
}

std::vector<float> host_copy(const float* d, index_t n) {
  std::vector<float> h(static_cast<std::size_t>(n));
  check(cudaMemcpy(h.data(), d, h.size() * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  return h;
}

// The three passes of one shape, native and cuDNN, on the same inputs.
void run_gpu(std::vector<Row*> rows, cudnnHandle_t handle, cudaStream_t stream, int reps) {
  namespace k = glia::kernels;
  const ConvShape& s = rows[0]->s;
  float* x = device_copy(random_vector(static_cast<std::size_t>(s.x_numel()), 1));
  float* w = device_copy(random_vector(static_cast<std::size_t>(s.w_numel()), 2));
  float* gy = device_copy(random_vector(static_cast<std::size_t>(s.y_numel()), 3));
  float* out_native = nullptr;
  float* out_cudnn = nullptr;
  const index_t largest = std::max({s.x_numel(), s.w_numel(), s.y_numel()});
  check(cudaMalloc(&out_native, static_cast<std::size_t>(largest) * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&out_cudnn, static_cast<std::size_t>(largest) * sizeof(float)), "cudaMalloc");
  const index_t split = k::cuda::conv2d_backward_filter_workspace_size(s);
  float* split_ws = nullptr;
  if (split > 0) {
    check(cudaMalloc(&split_ws, static_cast<std::size_t>(split) * sizeof(float)), "cudaMalloc");
  }
  const std::size_t ws_bytes =
      std::max({k::cudnn::conv2d_forward_workspace_size(handle, s),
                k::cudnn::conv2d_backward_data_workspace_size(handle, s),
                k::cudnn::conv2d_backward_filter_workspace_size(handle, s), std::size_t{1}});
  void* ws = nullptr;
  check(cudaMalloc(&ws, ws_bytes), "cudaMalloc");

  for (Row* row : rows) {
    std::function<void()> native, cudnn;
    index_t out_numel = 0;
    switch (row->pass) {
      case Pass::forward:
        native = [&] { k::cuda::conv2d_forward(s, x, w, nullptr, out_native, stream); };
        cudnn = [&] {
          k::cudnn::conv2d_forward(handle, s, x, w, nullptr, out_cudnn, ws, ws_bytes, stream);
        };
        out_numel = s.y_numel();
        break;
      case Pass::backward_data:
        native = [&] { k::cuda::conv2d_backward_data(s, gy, w, out_native, stream); };
        cudnn = [&] {
          k::cudnn::conv2d_backward_data(handle, s, gy, w, out_cudnn, ws, ws_bytes, stream);
        };
        out_numel = s.x_numel();
        break;
      case Pass::backward_filter:
        native = [&] { k::cuda::conv2d_backward_filter(s, x, gy, out_native, split_ws, stream); };
        cudnn = [&] {
          k::cudnn::conv2d_backward_filter(handle, s, x, gy, out_cudnn, ws, ws_bytes, stream);
        };
        out_numel = s.w_numel();
        break;
    }
    row->native_gflops = gflops(s, time_device(native, stream, reps));
    row->cudnn_gflops = gflops(s, time_device(cudnn, stream, reps));
    const auto got = host_copy(out_native, out_numel), ref = host_copy(out_cudnn, out_numel);
    double worst = 0.0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - ref[i]) /
                                  (1.0 + std::fabs(static_cast<double>(ref[i]))));
    }
    row->max_rel_diff = worst;
  }
  for (void* p : {static_cast<void*>(x), static_cast<void*>(w), static_cast<void*>(gy),
                  static_cast<void*>(out_native), static_cast<void*>(out_cudnn),
                  static_cast<void*>(split_ws), ws}) {
    if (p != nullptr) cudaFree(p);
  }
}
#endif

void run_cpu(Row& row, double min_seconds) {
  const ConvShape& s = row.s;
  const auto x = random_vector(static_cast<std::size_t>(s.x_numel()), 1);
  const auto w = random_vector(static_cast<std::size_t>(s.w_numel()), 2);
  const auto gy = random_vector(static_cast<std::size_t>(s.y_numel()), 3);
  std::vector<float> out(
      static_cast<std::size_t>(std::max({s.x_numel(), s.w_numel(), s.y_numel()})));
  namespace cpu = glia::kernels::cpu;
  std::function<void()> fn;
  switch (row.pass) {
    case Pass::forward:
      fn = [&] { cpu::conv2d_forward<float>(s, x.data(), w.data(), nullptr, out.data()); };
      break;
    case Pass::backward_data:
      fn = [&] { cpu::conv2d_backward_data<float>(s, gy.data(), w.data(), out.data()); };
      break;
    case Pass::backward_filter:
      fn = [&] { cpu::conv2d_backward_filter<float>(s, x.data(), gy.data(), out.data()); };
      break;
  }
  row.cpu_gflops = gflops(s, time_host(fn, min_seconds));
}

std::string fmt(double v, const char* spec = "%.1f") {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, spec, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, cpu = true;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--no-cpu") == 0) {
      cpu = false;
    } else if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: glia-bench-layers [--quick] [--no-cpu] [--json FILE]\n");
      return 2;
    }
  }

  // The U-Net's encoder (two 3x3 convolutions per level, 32 filters doubling per level, planes
  // halving from 256) and its up-convolutions.
  std::vector<Case> cases = {
      conv3x3(1, 32, 256),   conv3x3(32, 32, 256),  conv3x3(32, 64, 128),  conv3x3(64, 64, 128),
      conv3x3(64, 128, 64),  conv3x3(128, 128, 64), conv3x3(128, 256, 32), conv3x3(256, 256, 32),
      conv3x3(256, 512, 16), conv3x3(512, 512, 16), upconv(512, 256, 16),  upconv(256, 128, 32),
      upconv(128, 64, 64),   upconv(64, 32, 128),
  };
  if (quick) cases = {conv3x3(32, 32, 256), conv3x3(256, 256, 32), upconv(64, 32, 128)};

  std::vector<Row> rows;
  for (const auto& c : cases) {
    for (Pass p : {Pass::forward, Pass::backward_data, Pass::backward_filter}) {
      rows.push_back(Row{c.name, c.s, p});
    }
  }

  std::string device = "none";
#if defined(GLIA_HAVE_CUDA)
  int count = 0;
  if (cudaGetDeviceCount(&count) == cudaSuccess && count > 0) {
    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    device = prop.name;
    cudaStream_t stream;
    check(cudaStreamCreate(&stream), "cudaStreamCreate");
    cudnnHandle_t handle;
    if (cudnnCreate(&handle) != CUDNN_STATUS_SUCCESS) {
      std::fprintf(stderr, "glia-bench-layers: cudnnCreate failed\n");
      return 1;
    }
    for (std::size_t i = 0; i < rows.size(); i += 3) {
      run_gpu({&rows[i], &rows[i + 1], &rows[i + 2]}, handle, stream, quick ? 5 : 20);
    }
    cudnnDestroy(handle);
    cudaStreamDestroy(stream);
  } else {
    std::printf("cuda: no device present; GPU columns skipped\n");
  }
#else
  std::printf("cuda: glia was built without CUDA; GPU columns skipped\n");
#endif
  if (cpu) {
    for (auto& row : rows) run_cpu(row, quick ? 0.1 : 0.5);
  }

  std::printf("conv2d (float32, NCHW, batch 8), GFLOP/s; GPU: %s\n", device.c_str());
  std::printf("%-22s %-10s %9s %9s %9s %8s %10s\n", "case", "pass", "cpu", "native", "cuDNN",
              "nat/cuD", "max rel d");
  for (const auto& r : rows) {
    std::printf("%-22s %-10s %9s %9s %9s %8s %10s\n", r.name.c_str(), pass_name(r.pass),
                fmt(r.cpu_gflops).c_str(), fmt(r.native_gflops).c_str(),
                fmt(r.cudnn_gflops).c_str(), fmt(r.native_gflops / r.cudnn_gflops, "%.2f").c_str(),
                fmt(r.max_rel_diff, "%.1e").c_str());
  }

  if (!json_path.empty()) {
    const std::string tmp = json_path + ".tmp";
    {
      std::ofstream out(tmp);
      if (!out) {
        std::fprintf(stderr, "glia-bench-layers: cannot write %s\n", tmp.c_str());
        return 1;
      }
      out << "{\"benchmark\": \"conv\", \"gpu\": \"" << device << "\", \"rows\": [\n";
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        auto num = [](double v) { return std::isnan(v) ? std::string("null") : fmt(v, "%.4g"); };
        out << "  {\"case\": \"" << r.name << "\", \"pass\": \"" << pass_name(r.pass)
            << "\", \"cpu_gflops\": " << num(r.cpu_gflops)
            << ", \"native_gflops\": " << num(r.native_gflops)
            << ", \"cudnn_gflops\": " << num(r.cudnn_gflops)
            << ", \"max_rel_diff\": " << num(r.max_rel_diff) << "}"
            << (i + 1 < rows.size() ? ",\n" : "\n");
      }
      out << "]}\n";
    }
    if (std::rename(tmp.c_str(), json_path.c_str()) != 0) {
      std::fprintf(stderr, "glia-bench-layers: cannot rename %s to %s\n", tmp.c_str(),
                   json_path.c_str());
      return 1;
    }
  }
  return 0;
}
