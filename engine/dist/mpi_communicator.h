// The MPI transport of engine/dist/communicator.h (built with GLIA_HAVE_MPI): non-blocking
// collectives (MPI_Iallreduce, MPI_Ibcast, MPI_Ibarrier, MPI_Iallgatherv) on a duplicate of
// MPI_COMM_WORLD, each waited for by polling MPI_Test against a deadline.
// A deadline that passes starts the diagnosis: this rank sends the number of the collective it is
// stuck in to every other rank (on a second duplicate communicator) and listens for theirs for one
// more timeout; ranks that stay silent are named as not arrived (dead or hung), ranks that answer
// with another number as having diverged. The message goes to stderr and MPI_Abort ends the job,
// so every rank exits within two timeouts of the fault.
// Tested in tests/dist/ddp_test.cpp and tests/dist/fault_test.sh (under mpirun -np 2).
#pragma once

#if !defined(GLIA_HAVE_MPI)
#error "engine/dist/mpi_communicator.h is part of the MPI build only"
#endif

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/dist/communicator.h"

namespace glia::dist {

class MpiCommunicator final : public Communicator {
 public:
  // The process's world (MPI_Init_thread on first use, MPI_Finalize at exit).
  static std::shared_ptr<MpiCommunicator> world();
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string backend() const override { return "mpi"; }
  bool carries(Device device) const override { return !device.is_cuda(); }

  std::unique_ptr<Request> all_reduce_async(Tensor& t, ReduceOp op) override;
  void broadcast(Tensor& t, int root) override;
  void barrier() override;
  void all_reduce_host(std::vector<double>& values, ReduceOp op) override;
  std::vector<double> all_gather_host(const std::vector<double>& values) override;
  [[noreturn]] void abort(const std::string& message) override;

  // Byte broadcast from root (the NCCL unique id).
  void broadcast_bytes(void* data, int bytes, int root);
  // Polls `request` (collective number `seq`, named `what`) until done or the deadline, then
  // diagnoses and aborts; adds the time blocked to the stats. Shared with the NCCL transport,
  // whose `poll` tests a CUDA event instead of an MPI request.
  template <class Poll>
  void wait_for(Poll&& poll, const std::string& what, std::uint64_t seq);
  std::uint64_t next_seq() { return ++seq_; }
  // The diagnosis described above; never returns.
  [[noreturn]] void diagnose_and_abort(const std::string& what, std::uint64_t seq);
  CommStats& mutable_stats() { return stats_; }

 private:
  MpiCommunicator();
  MPI_Comm comm_ = MPI_COMM_NULL;  // the collectives
  MPI_Comm diag_ = MPI_COMM_NULL;  // the diagnosis' point-to-point messages
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::uint64_t seq_ = 0;
};

template <class Poll>
void MpiCommunicator::wait_for(Poll&& poll, const std::string& what, std::uint64_t seq) {
  using clock = std::chrono::steady_clock;
  const clock::time_point start = clock::now();
  const clock::time_point deadline = start + timeout_;
  // Spin briefly (a collective that is nearly done), then poll every 50 us so that a waiting
  // rank leaves the core to the others on an oversubscribed machine.
  for (int polls = 0; !poll(); ++polls) {
    if (clock::now() > deadline) diagnose_and_abort(what, seq);
    if (polls > 64) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  stats_.wait_seconds += std::chrono::duration<double>(clock::now() - start).count();
}

}  // namespace glia::dist
