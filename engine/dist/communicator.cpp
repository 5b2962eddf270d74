// The world of one and the choice of transport; see communicator.h. Tested in
// tests/dist/ddp_test.cpp.
#include "engine/dist/communicator.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#if defined(GLIA_HAVE_MPI)
#include "engine/dist/mpi_communicator.h"
#endif
#if defined(GLIA_HAVE_CUDA)
#include "engine/cuda/runtime.h"
#endif

namespace glia::dist {

#if defined(GLIA_HAVE_NCCL)
// engine/dist/nccl_communicator.cpp
std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<MpiCommunicator> mpi,
                                                     int device);
#endif

namespace {

class LocalRequest : public Request {
 public:
  bool test() override { return true; }
  void wait() override {}
};

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string backend() const override { return "local"; }
  bool carries(Device) const override { return true; }
  std::unique_ptr<Request> all_reduce_async(Tensor& t, ReduceOp) override {
    ++stats_.collectives;
    stats_.bytes_reduced += t.numel() * static_cast<std::int64_t>(element_bytes(t, "all_reduce"));
    return std::make_unique<LocalRequest>();
  }
  void broadcast(Tensor&, int root) override { check_root(root); }
  void barrier() override {}
  void all_reduce_host(std::vector<double>&, ReduceOp) override {}
  std::vector<double> all_gather_host(const std::vector<double>& values) override { return values; }
  [[noreturn]] void abort(const std::string& message) override {
    std::fprintf(stderr, "glia: %s\n", message.c_str());
    std::fflush(stderr);
    std::exit(3);
  }

 private:
  static void check_root(int root) {
    if (root != 0) {
      throw std::invalid_argument("broadcast from rank " + std::to_string(root) +
                                  " in a world of one process");
    }
  }
};

}  // namespace

std::shared_ptr<Communicator> local_communicator() {
  return std::make_shared<LocalCommunicator>();
}

bool mpi_built() {
#if defined(GLIA_HAVE_MPI)
  return true;
#else
  return false;
#endif
}

bool nccl_built() {
#if defined(GLIA_HAVE_NCCL)
  return true;
#else
  return false;
#endif
}

std::size_t element_bytes(const Tensor& t, const char* what) {
  switch (t.dtype()) {
    case DType::f32:
    case DType::i32:
      return 4;
    case DType::f64:
      return 8;
    default:
      throw std::invalid_argument(std::string(what) + " of " + t.describe() +
                                  ": collectives carry f32, f64 and i32 tensors");
  }
}

DistributedSetup init_distributed(DeviceType device, std::chrono::milliseconds timeout) {
#if defined(GLIA_HAVE_MPI)
  std::shared_ptr<MpiCommunicator> mpi = MpiCommunicator::world();
  mpi->set_timeout(timeout);
  if (device != DeviceType::cuda) {
    return {mpi, device == DeviceType::sim ? Device::sim() : Device::cpu()};
  }
#if defined(GLIA_HAVE_NCCL)
  const int gpus = cudart::device_count();
  if (gpus == 0) {
    mpi->abort("--distributed on cuda, but rank " + std::to_string(mpi->rank()) + " sees no GPU");
  }
  const int gpu = mpi->local_rank() % gpus;
  std::shared_ptr<Communicator> nccl = make_nccl_communicator(mpi, gpu);
  nccl->set_timeout(timeout);
  return {nccl, Device::cuda(gpu)};
#else
  throw std::runtime_error(
      "distributed training on cuda needs NCCL: this build has MPI but no NCCL (configure with "
      "GLIA_CUDA=ON and NCCL under the CUDA toolkit), or train on --device cpu");
#endif
#else
  (void)device;
  (void)timeout;
  throw std::runtime_error(
      "this build of glia has no MPI: --distributed needs it (install libopenmpi-dev "
      "openmpi-bin, e.g. with scripts/setup, and reconfigure with -DGLIA_MPI=ON)");
#endif
}

}  // namespace glia::dist
