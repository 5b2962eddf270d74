// Collectives between the processes of a data-parallel run (DESIGN.md section 4; PyTorch's
// ProcessGroup). One interface, three transports that share everything above it (the gradient
// reducer, SyncBatchNorm, the trainer's metric reductions):
//   local: a world of one process (no MPI needed): every collective is the identity;
//   mpi:   OpenMPI / MPICH (engine/dist/mpi_communicator.h): host tensors (cpu, sim);
//   nccl:  NCCL on the device's stream (engine/dist/nccl_communicator.cpp): cuda tensors; MPI
//          starts the processes, hands out NCCL's unique id and carries host values.
// Every collective is matched by order: all ranks call the same collectives in the same order.
// Faults: a wait that does not complete within timeout() ends every process with a message on
// stderr that names the rank(s) that did not arrive (see MpiCommunicator), never an endless hang.
// Tested in tests/dist/ddp_test.cpp (under mpirun -np 2) and tests/dist/fault_test.sh.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/tensor.h"

namespace glia::dist {

enum class ReduceOp { sum, max };

// A collective in flight; its tensor's values are the result once it completes.
class Request {
 public:
  virtual ~Request() = default;
  // True once complete; also drives the transport's progress (MPI progresses inside its calls).
  virtual bool test() = 0;
  // Blocks until complete. Past the communicator's timeout it ends the job (see above).
  virtual void wait() = 0;
};

// What a communicator has done, for benchmarks and logs.
struct CommStats {
  std::int64_t collectives = 0;
  std::int64_t bytes_reduced = 0;  // payload bytes of all-reduces (each rank's buffer size)
  double wait_seconds = 0;         // time blocked in wait(): communication not hidden
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The rank among the processes of this machine: which GPU to use.
  virtual int local_rank() const = 0;
  // "local", "mpi" or "nccl".
  virtual std::string backend() const = 0;
  // Whether tensors on `device` can be carried (mpi: cpu and sim; nccl: cuda; local: any).
  virtual bool carries(Device device) const = 0;

  // Element-wise reduction over ranks, in place, of a tensor (f32, f64 or i32) that every rank
  // passes with the same shape and dtype. The tensor must not be touched until the request
  // completes.
  virtual std::unique_ptr<Request> all_reduce_async(Tensor& t, ReduceOp op = ReduceOp::sum) = 0;
  void all_reduce(Tensor& t, ReduceOp op = ReduceOp::sum) { all_reduce_async(t, op)->wait(); }
  // Rank root's values into every rank's tensor (same shape and dtype everywhere).
  virtual void broadcast(Tensor& t, int root) = 0;
  virtual void barrier() = 0;

  // Host values (exact counts and sums for metrics; flags such as a stop request).
  virtual void all_reduce_host(std::vector<double>& values, ReduceOp op) = 0;
  // Every rank's values concatenated in rank order; ranks may pass different lengths.
  virtual std::vector<double> all_gather_host(const std::vector<double>& values) = 0;
  double all_reduce_host(double value, ReduceOp op) {
    std::vector<double> v{value};
    all_reduce_host(v, op);
    return v[0];
  }
  // True on every rank when it is true on any rank.
  bool any(bool flag) { return all_reduce_host(flag ? 1.0 : 0.0, ReduceOp::max) > 0.0; }

  // Ends every process of the job (a fatal error on one rank must not leave the others waiting).
  [[noreturn]] virtual void abort(const std::string& message) = 0;

  std::chrono::milliseconds timeout() const { return timeout_; }
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 protected:
  CommStats stats_;
  std::chrono::milliseconds timeout_{std::chrono::minutes(10)};
};

// A world of one: the single-process run and the reference of every distributed test.
std::shared_ptr<Communicator> local_communicator();

// Whether this build has MPI (GLIA_MPI) and NCCL (GLIA_CUDA with NCCL).
bool mpi_built();
bool nccl_built();

struct DistributedSetup {
  std::shared_ptr<Communicator> comm;
  Device device;  // this rank's device: cuda:(local rank mod GPUs) for cuda, else the one asked
};

// Joins the job the launcher (mpirun, srun) started: MPI for cpu and sim, NCCL for cuda, each
// rank on its own GPU. Started without a launcher, it is a world of one. Throws
// std::runtime_error in a build without MPI (or, for cuda, without NCCL). Call once per process.
DistributedSetup init_distributed(DeviceType device, std::chrono::milliseconds timeout);

// Bytes of one element of the dtypes the transports carry; throws for others.
std::size_t element_bytes(const Tensor& t, const char* what);

}  // namespace glia::dist
