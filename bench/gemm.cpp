// GEMM benchmark: the cpu reference (OpenBLAS) in GFLOP/s, and on a GPU our tiled kernel
// (kernels/cuda/gemm.cu) against cuBLAS (kernels/cudnn/gemm.cpp), timed side by side in one
// process with CUDA events on the same buffers. Shapes: square sizes and the im2col products a
// 3x3 convolution of the U-Net runs (M = out channels, N = pixels, K = in channels * 9).
// Usage: glia-bench-gemm [--quick] [--json FILE]. Results measured on a GPU go to bench/results/.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/types.h"

#if defined(GLIA_HAVE_CUDA)
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "kernels/cuda/launchers.h"
#include "kernels/cudnn/gemm.h"
#endif

namespace {

using glia::kernels::GemmShape;
using glia::kernels::index_t;

struct Case {
  std::string name;
  index_t m, n, k;
  bool trans_a, trans_b;
};

GemmShape make_shape(const Case& c) {
  GemmShape s;
  s.m = c.m;
  s.n = c.n;
  s.k = c.k;
  s.trans_a = c.trans_a;
  s.trans_b = c.trans_b;
  s.lda = c.trans_a ? c.m : c.k;
  s.ldb = c.trans_b ? c.k : c.n;
  s.ldc = c.n;
  return s;
}

double gflops(const Case& c, double seconds) {
  return 2.0 * static_cast<double>(c.m) * static_cast<double>(c.n) * static_cast<double>(c.k) /
         seconds * 1e-9;
}

std::vector<float> random_vector(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// Median wall time of fn over repetitions filling at least min_seconds (after one warm-up).
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
  Case c;
  double cpu_gflops = NAN;
  double native_gflops = NAN;
  double cublas_gflops = NAN;
  double max_rel_diff = NAN;
};

#if defined(GLIA_HAVE_CUDA)
void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    std::fprintf(stderr, "glia-bench-gemm: %s failed: %s\n", what, cudaGetErrorString(err));
    std::exit(1);
  }
}

// Median kernel time in seconds over `reps` launches, measured with CUDA events.
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

void run_gpu(Row& row, cublasHandle_t handle, cudaStream_t stream, int reps) {
  const GemmShape s = make_shape(row.c);
  const std::size_t na = row.c.m * row.c.k, nb = row.c.k * row.c.n, nc = row.c.m * row.c.n;
  const auto ha = random_vector(na, 1), hb = random_vector(nb, 2);
  float *a, *b, *c_native, *c_cublas;
  check(cudaMalloc(&a, na * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&b, nb * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&c_native, nc * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&c_cublas, nc * sizeof(float)), "cudaMalloc");
  check(cudaMemcpy(a, ha.data(), na * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
  check(cudaMemcpy(b, hb.data(), nb * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");

  const double t_native =
      time_device([&] { glia::kernels::cuda::gemm(s, a, b, c_native, stream); }, stream, reps);
  const double t_cublas = time_device(
      [&] { glia::kernels::cudnn::gemm(handle, s, a, b, c_cublas, stream); }, stream, reps);
  row.native_gflops = gflops(row.c, t_native);
  row.cublas_gflops = gflops(row.c, t_cublas);

  std::vector<float> got(nc), ref(nc);
  check(cudaMemcpy(got.data(), c_native, nc * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaMemcpy(ref.data(), c_cublas, nc * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  double worst = 0.0;
  for (std::size_t i = 0; i < nc; ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - ref[i]) /
                                (1.0 + std::fabs(static_cast<double>(ref[i]))));
  }
  row.max_rel_diff = worst;
  cudaFree(a);
  cudaFree(b);
  cudaFree(c_native);
  cudaFree(c_cublas);
}
#endif

void run_cpu(Row& row, double min_seconds) {
  const GemmShape s = make_shape(row.c);
  const auto a = random_vector(row.c.m * row.c.k, 1), b = random_vector(row.c.k * row.c.n, 2);
  std::vector<float> c(row.c.m * row.c.n);
  const double t = time_host(
      [&] { glia::kernels::cpu::gemm<float>(s, a.data(), b.data(), c.data()); }, min_seconds);
  row.cpu_gflops = gflops(row.c, t);
}

std::string fmt(double v, const char* spec = "%.1f") {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, spec, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: glia-bench-gemm [--quick] [--json FILE]\n");
      return 2;
    }
  }

  std::vector<Case> cases = {
      {"square 256", 256, 256, 256, false, false},
      {"square 512", 512, 512, 512, false, false},
      {"square 1024", 1024, 1024, 1024, false, false},
      {"square 1024 A^T", 1024, 1024, 1024, true, false},
      {"square 1024 B^T", 1024, 1024, 1024, false, true},
      {"square 2048", 2048, 2048, 2048, false, false},
      {"odd 1000x999x1001", 1000, 999, 1001, false, false},
      {"conv 3x3 32->32 @256^2", 32, 65536, 288, false, false},
      {"conv 3x3 64->64 @128^2", 64, 16384, 576, false, false},
      {"conv 3x3 256->256 @32^2", 256, 1024, 2304, false, false},
  };
  if (quick) cases.resize(3);

  std::vector<Row> rows;
  for (const auto& c : cases) rows.push_back(Row{c});

  std::string device = "none";
#if defined(GLIA_HAVE_CUDA)
  int count = 0;
  if (cudaGetDeviceCount(&count) == cudaSuccess && count > 0) {
    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    device = prop.name;
    cudaStream_t stream;
    check(cudaStreamCreate(&stream), "cudaStreamCreate");
    cublasHandle_t handle;
    if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
      std::fprintf(stderr, "glia-bench-gemm: cublasCreate failed\n");
      return 1;
    }
    cublasSetStream(handle, stream);
    for (auto& row : rows) run_gpu(row, handle, stream, quick ? 5 : 20);
    cublasDestroy(handle);
    cudaStreamDestroy(stream);
  } else {
    std::printf("cuda: no device present; GPU columns skipped\n");
  }
#else
  std::printf("cuda: glia was built without CUDA; GPU columns skipped\n");
#endif
  for (auto& row : rows) run_cpu(row, quick ? 0.1 : 0.5);

  std::printf("GEMM (float32, row-major), GFLOP/s; GPU: %s\n", device.c_str());
  std::printf("%-26s %6s %6s %6s %9s %9s %9s %8s %10s\n", "case", "M", "N", "K", "cpu", "native",
              "cuBLAS", "nat/cuB", "max rel d");
  for (const auto& r : rows) {
    std::printf("%-26s %6lld %6lld %6lld %9s %9s %9s %8s %10s\n", r.c.name.c_str(),
                static_cast<long long>(r.c.m), static_cast<long long>(r.c.n),
                static_cast<long long>(r.c.k), fmt(r.cpu_gflops).c_str(),
                fmt(r.native_gflops).c_str(), fmt(r.cublas_gflops).c_str(),
                fmt(r.native_gflops / r.cublas_gflops, "%.2f").c_str(),
                fmt(r.max_rel_diff, "%.1e").c_str());
  }

  if (!json_path.empty()) {
    const std::string tmp = json_path + ".tmp";
    {
      std::ofstream out(tmp);
      if (!out) {
        std::fprintf(stderr, "glia-bench-gemm: cannot write %s\n", tmp.c_str());
        return 1;
      }
      out << "{\"benchmark\": \"gemm\", \"gpu\": \"" << device << "\", \"rows\": [\n";
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        auto num = [](double v) { return std::isnan(v) ? std::string("null") : fmt(v, "%.4g"); };
        out << "  {\"case\": \"" << r.c.name << "\", \"m\": " << r.c.m << ", \"n\": " << r.c.n
            << ", \"k\": " << r.c.k << ", \"cpu_gflops\": " << num(r.cpu_gflops)
            << ", \"native_gflops\": " << num(r.native_gflops)
            << ", \"cublas_gflops\": " << num(r.cublas_gflops)
            << ", \"max_rel_diff\": " << num(r.max_rel_diff) << "}"
            << (i + 1 < rows.size() ? ",\n" : "\n");
      }
      out << "]}\n";
    }
    if (std::rename(tmp.c_str(), json_path.c_str()) != 0) {
      std::fprintf(stderr, "glia-bench-gemm: cannot rename %s to %s\n", tmp.c_str(),
                   json_path.c_str());
      return 1;
    }
  }
  return 0;
}
