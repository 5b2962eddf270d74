// The NCCL transport of engine/dist/communicator.h (built with GLIA_HAVE_NCCL): cuda tensors are
// reduced by NCCL on the device's stream (engine/cuda/runtime.h), so a collective runs in order
// with the kernels that produced its input; a request is a CUDA event recorded after it, polled
// against the same deadline as MPI's. MPI (the world communicator) starts the processes, hands
// out NCCL's unique id, carries the host values (metrics, stop flags) and, on a timeout, runs
// the diagnosis that names the missing rank (ncclCommAbort first, so no kernel is left waiting).
// Compiled in every CUDA build with MPI; run by tests/dist/ddp_test.cpp's Cuda tests where a GPU
// is present.
#include <nccl.h>

#include <stdexcept>
#include <string>

#include "engine/cuda/runtime.h"
#include "engine/dist/mpi_communicator.h"

namespace glia::dist {
namespace {

void check_nccl(ncclResult_t result, const char* call) {
  if (result == ncclSuccess) return;
  throw std::runtime_error(std::string(call) + " failed: " + ncclGetErrorString(result));
}

ncclDataType_t nccl_type(const Tensor& t, const char* what) {
  switch (t.dtype()) {
    case DType::f32:
      return ncclFloat32;
    case DType::f64:
      return ncclFloat64;
    case DType::i32:
      return ncclInt32;
    default:
      throw std::invalid_argument(std::string(what) + " of " + t.describe() +
                                  ": NCCL carries f32, f64 and i32 tensors here");
  }
}

class NcclCommunicator;

class NcclRequest : public Request {
 public:
  NcclRequest(NcclCommunicator& comm, cudaEvent_t event, Tensor keep, std::uint64_t seq,
              const char* what)
      : comm_(comm), event_(event), keep_(std::move(keep)), seq_(seq), what_(what) {}
  ~NcclRequest() override;
  bool test() override;
  void wait() override;

 private:
  NcclCommunicator& comm_;
  cudaEvent_t event_;
  Tensor keep_;
  std::uint64_t seq_;
  const char* what_;
  bool done_ = false;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<MpiCommunicator> mpi, int device)
      : mpi_(std::move(mpi)), device_(device) {
    ncclUniqueId id{};
    if (mpi_->rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    mpi_->broadcast_bytes(&id, sizeof id, 0);
    const cudart::DeviceGuard guard(device_);
    check_nccl(ncclCommInitRank(&comm_, mpi_->size(), id, mpi_->rank()), "ncclCommInitRank");
  }
  ~NcclCommunicator() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
  }

  int rank() const override { return mpi_->rank(); }
  int size() const override { return mpi_->size(); }
  int local_rank() const override { return mpi_->local_rank(); }
  std::string backend() const override { return "nccl"; }
  bool carries(Device device) const override { return device.is_cuda() && device.index == device_; }

  std::unique_ptr<Request> all_reduce_async(Tensor& t, ReduceOp op) override {
    check_device(t, "all_reduce");
    const cudart::DeviceGuard guard(device_);
    cudaStream_t stream = cudart::stream(device_);
    check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<std::size_t>(t.numel()),
                             nccl_type(t, "all_reduce"), op == ReduceOp::max ? ncclMax : ncclSum,
                             comm_, stream),
               "ncclAllReduce");
    ++stats_.collectives;
    stats_.bytes_reduced += t.numel() * static_cast<std::int64_t>(element_bytes(t, "all_reduce"));
    return std::make_unique<NcclRequest>(*this, record(stream), t, mpi_->next_seq(), "all_reduce");
  }

  void broadcast(Tensor& t, int root) override {
    check_device(t, "broadcast");
    const cudart::DeviceGuard guard(device_);
    cudaStream_t stream = cudart::stream(device_);
    check_nccl(ncclBroadcast(t.raw_data(), t.raw_data(), static_cast<std::size_t>(t.numel()),
                             nccl_type(t, "broadcast"), root, comm_, stream),
               "ncclBroadcast");
    ++stats_.collectives;
    NcclRequest(*this, record(stream), t, mpi_->next_seq(), "broadcast").wait();
  }

  // Host values and barriers go through MPI, under this communicator's timeout.
  void barrier() override {
    mpi_->set_timeout(timeout_);
    mpi_->barrier();
  }
  void all_reduce_host(std::vector<double>& values, ReduceOp op) override {
    mpi_->set_timeout(timeout_);
    mpi_->all_reduce_host(values, op);
  }
  std::vector<double> all_gather_host(const std::vector<double>& values) override {
    mpi_->set_timeout(timeout_);
    return mpi_->all_gather_host(values);
  }
  [[noreturn]] void abort(const std::string& message) override {
    ncclCommAbort(comm_);
    comm_ = nullptr;
    mpi_->abort(message);
  }

  // Polls an event like MPI polls a request, with MPI's deadline and diagnosis.
  void wait_event(cudaEvent_t event, std::uint64_t seq, const char* what) {
    mpi_->set_timeout(timeout_);
    const double before = mpi_->stats().wait_seconds;
    mpi_->wait_for(
        [&] {
          const cudaError_t status = cudaEventQuery(event);
          if (status == cudaErrorNotReady) return false;
          GLIA_CUDA_CHECK(status);
          return true;
        },
        what, seq);
    stats_.wait_seconds += mpi_->stats().wait_seconds - before;
  }

 private:
  void check_device(const Tensor& t, const char* what) const {
    if (!carries(t.device())) {
      throw std::invalid_argument(
          std::string(what) + " of " + t.describe() +
          ": this rank's nccl communicator carries tensors on cuda:" + std::to_string(device_));
    }
  }
  static cudaEvent_t record(cudaStream_t stream) {
    cudaEvent_t event = nullptr;
    GLIA_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    GLIA_CUDA_CHECK(cudaEventRecord(event, stream));
    return event;
  }

  std::shared_ptr<MpiCommunicator> mpi_;
  int device_;
  ncclComm_t comm_ = nullptr;
};

NcclRequest::~NcclRequest() {
  if (!done_) wait();
  cudaEventDestroy(event_);
}

bool NcclRequest::test() {
  if (done_) return true;
  const cudaError_t status = cudaEventQuery(event_);
  if (status == cudaErrorNotReady) return false;
  GLIA_CUDA_CHECK(status);
  done_ = true;
  keep_.bump_version();
  return true;
}

void NcclRequest::wait() {
  if (done_) return;
  comm_.wait_event(event_, seq_, what_);
  done_ = true;
  keep_.bump_version();
}

}  // namespace

std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<MpiCommunicator> mpi,
                                                     int device) {
  return std::make_shared<NcclCommunicator>(std::move(mpi), device);
}

}  // namespace glia::dist
