// glia-info: what this build of glia can run on, and a self-check of each device. For every
// device present it computes loss = sum(tanh(A B)) for random A (64x48) and B (48x40), runs the
// backward pass, and compares the loss and both gradients with a float64 cpu reference.
// Usage: glia-info [--device cpu|sim|cuda]... (default: every device present). Exit code 1 when a
// device disagrees with the reference. Tested end to end by tests/apps (glia-info runs there).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "engine/random.h"

namespace {

struct Result {
  double loss = 0.0;
  std::vector<double> grad_a, grad_b;
};

std::vector<double> as_doubles(const glia::Tensor& t) {
  const glia::Tensor host = t.to(glia::Device::cpu()).to(glia::DType::f64);
  return host.to_vector<double>();
}

// loss = sum(tanh(A B)) and its gradients, computed on `device` in `dtype`.
Result run(const glia::Tensor& a_host, const glia::Tensor& b_host, glia::Device device,
           glia::DType dtype) {
  glia::Tensor a = a_host.to(dtype).to(device).detach().set_requires_grad(true);
  glia::Tensor b = b_host.to(dtype).to(device).detach().set_requires_grad(true);
  const glia::Tensor loss = glia::sum(glia::tanh(glia::matmul(a, b)));
  loss.backward();
  return Result{as_doubles(loss)[0], as_doubles(a.grad()), as_doubles(b.grad())};
}

// Largest |got - ref| / (1 + |ref|) over the loss and both gradients.
double worst_error(const Result& got, const Result& ref) {
  double worst = std::fabs(got.loss - ref.loss) / (1.0 + std::fabs(ref.loss));
  auto scan = [&worst](const std::vector<double>& g, const std::vector<double>& r) {
    for (std::size_t i = 0; i < g.size(); ++i) {
      const double e = std::fabs(g[i] - r[i]) / (1.0 + std::fabs(r[i]));
      if (!(e <= worst)) worst = e;  // NaN propagates as the worst
    }
  };
  scan(got.grad_a, ref.grad_a);
  scan(got.grad_b, ref.grad_b);
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<glia::Device> devices;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--device" && i + 1 < argc) {
        devices.push_back(glia::Device::parse(argv[++i]));
      } else {
        std::fprintf(stderr, "usage: glia-info [--device cpu|sim|cuda[:N]]...\n");
        return 2;
      }
    }
#if defined(GLIA_HAVE_CUDA)
    std::printf("glia: built with CUDA; %d GPU(s) present\n", glia::cuda_device_count());
#else
    std::printf("glia: built without CUDA (devices cpu and sim)\n");
#endif
    if (devices.empty()) {
      devices = {glia::Device::cpu(), glia::Device::sim()};
      if (glia::cuda_available()) devices.push_back(glia::Device::cuda());
    }

    glia::Generator gen(2024);
    const glia::Tensor a = glia::randn({64, 48}, {}, &gen);
    const glia::Tensor b = glia::randn({48, 40}, {}, &gen);
    const Result ref = run(a, b, glia::Device::cpu(), glia::DType::f64);
    std::printf("self-check: loss = sum(tanh(A B)), A 64x48, B 48x40, against cpu float64\n");

    // float32 against float64 over a 48-term dot product and a 2560-term sum.
    constexpr double kTolerance = 1e-4;
    bool ok = true;
    for (const glia::Device& device : devices) {
      glia::check_device_usable(device);
      const auto t0 = std::chrono::steady_clock::now();
      const Result got = run(a, b, device, glia::DType::f32);
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      const double err = worst_error(got, ref);
      const bool pass = err <= kTolerance;
      ok = ok && pass;
      std::printf("  %-7s loss %.6f  worst relative error %.2e  %8.1f ms  %s\n",
                  device.to_string().c_str(), got.loss, err, ms, pass ? "ok" : "MISMATCH");
    }
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "glia-info: %s\n", e.what());
    return 1;
  }
}
