// The MPI transport; see mpi_communicator.h. Tested in tests/dist/ddp_test.cpp and
// tests/dist/fault_test.sh.
#include "engine/dist/mpi_communicator.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace glia::dist {
namespace {

MPI_Datatype mpi_type(const Tensor& t, const char* what) {
  switch (t.dtype()) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::f64:
      return MPI_DOUBLE;
    case DType::i32:
      return MPI_INT;
    default:
      throw std::invalid_argument(std::string(what) + " of " + t.describe() +
                                  ": MPI carries f32, f64 and i32 tensors");
  }
}

MPI_Op mpi_op(ReduceOp op) {
  return op == ReduceOp::max ? MPI_MAX : MPI_SUM;
}

void check(int err, const char* call) {
  if (err == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(err, text, &length);
  throw std::runtime_error(std::string(call) + " failed: " + std::string(text, length));
}

// Which process of this machine we are: the launcher's variable when it sets one (OpenMPI,
// Slurm, MPICH/Hydra), else our rank among the processes that share memory with us.
int find_local_rank(MPI_Comm comm) {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"}) {
    if (const char* value = std::getenv(name); value != nullptr && *value != '\0') {
      return std::atoi(value);
    }
  }
  MPI_Comm node = MPI_COMM_NULL;
  check(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
        "MPI_Comm_split_type");
  int local = 0;
  MPI_Comm_rank(node, &local);
  MPI_Comm_free(&node);
  return local;
}

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

class MpiRequest : public Request {
 public:
  MpiRequest(MpiCommunicator& comm, MPI_Request request, Tensor keep, std::string what,
             std::uint64_t seq)
      : comm_(comm), request_(request), keep_(std::move(keep)), what_(std::move(what)), seq_(seq) {}
  ~MpiRequest() override {
    // A request dropped unfinished would leave MPI writing into freed memory.
    if (request_ != MPI_REQUEST_NULL) wait();
  }
  bool test() override {
    if (request_ == MPI_REQUEST_NULL) return true;
    int done = 0;
    check(MPI_Test(&request_, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) {
      request_ = MPI_REQUEST_NULL;
      if (keep_.defined()) keep_.bump_version();
    }
    return done != 0;
  }
  void wait() override {
    comm_.wait_for([this] { return test(); }, what_, seq_);
  }

 private:
  MpiCommunicator& comm_;
  MPI_Request request_;
  Tensor keep_;
  std::string what_;
  std::uint64_t seq_;
};

}  // namespace

std::shared_ptr<MpiCommunicator> MpiCommunicator::world() {
  static std::mutex mutex;
  static std::shared_ptr<MpiCommunicator> instance;
  const std::lock_guard lock(mutex);
  if (!instance) instance.reset(new MpiCommunicator());
  return instance;
}

MpiCommunicator::MpiCommunicator() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    // Funneled: only the thread that drives training calls MPI (the loader's workers never do).
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    std::atexit(finalize_at_exit);
  }
  check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
  check(MPI_Comm_dup(MPI_COMM_WORLD, &diag_), "MPI_Comm_dup");
  // The diagnosis talks to ranks that may be dead: errors there are answers, not crashes.
  MPI_Comm_set_errhandler(diag_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  local_rank_ = find_local_rank(comm_);
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  MPI_Comm_free(&diag_);
  MPI_Comm_free(&comm_);
}

std::unique_ptr<Request> MpiCommunicator::all_reduce_async(Tensor& t, ReduceOp op) {
  if (!carries(t.device())) {
    throw std::invalid_argument("all_reduce of " + t.describe() +
                                ": the mpi transport carries host tensors (cpu, sim); use nccl "
                                "for cuda");
  }
  const MPI_Datatype type = mpi_type(t, "all_reduce");
  const std::uint64_t seq = next_seq();
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), static_cast<int>(t.numel()), type, mpi_op(op),
                       comm_, &request),
        "MPI_Iallreduce");
  ++stats_.collectives;
  stats_.bytes_reduced += t.numel() * static_cast<std::int64_t>(element_bytes(t, "all_reduce"));
  return std::make_unique<MpiRequest>(*this, request, t, "all_reduce", seq);
}

void MpiCommunicator::broadcast(Tensor& t, int root) {
  if (!carries(t.device())) {
    throw std::invalid_argument("broadcast of " + t.describe() +
                                ": the mpi transport carries host tensors (cpu, sim)");
  }
  const MPI_Datatype type = mpi_type(t, "broadcast");
  const std::uint64_t seq = next_seq();
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Ibcast(t.raw_data(), static_cast<int>(t.numel()), type, root, comm_, &request),
        "MPI_Ibcast");
  ++stats_.collectives;
  MpiRequest(*this, request, t, "broadcast", seq).wait();
}

void MpiCommunicator::broadcast_bytes(void* data, int bytes, int root) {
  const std::uint64_t seq = next_seq();
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Ibcast(data, bytes, MPI_BYTE, root, comm_, &request), "MPI_Ibcast");
  ++stats_.collectives;
  MpiRequest(*this, request, Tensor(), "broadcast", seq).wait();
}

void MpiCommunicator::barrier() {
  const std::uint64_t seq = next_seq();
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Ibarrier(comm_, &request), "MPI_Ibarrier");
  ++stats_.collectives;
  MpiRequest(*this, request, Tensor(), "barrier", seq).wait();
}

void MpiCommunicator::all_reduce_host(std::vector<double>& values, ReduceOp op) {
  const std::uint64_t seq = next_seq();
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Iallreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE,
                       mpi_op(op), comm_, &request),
        "MPI_Iallreduce");
  ++stats_.collectives;
  MpiRequest(*this, request, Tensor(), "all_reduce", seq).wait();
}

std::vector<double> MpiCommunicator::all_gather_host(const std::vector<double>& values) {
  std::vector<int> counts(static_cast<std::size_t>(size_));
  int mine = static_cast<int>(values.size());
  {
    const std::uint64_t seq = next_seq();
    MPI_Request request = MPI_REQUEST_NULL;
    check(MPI_Iallgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_, &request),
          "MPI_Iallgather");
    MpiRequest(*this, request, Tensor(), "all_gather", seq).wait();
  }
  std::vector<int> offsets(counts.size(), 0);
  std::size_t total = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    offsets[r] = static_cast<int>(total);
    total += static_cast<std::size_t>(counts[r]);
  }
  std::vector<double> all(total);
  const std::uint64_t seq = next_seq();
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Iallgatherv(values.data(), mine, MPI_DOUBLE, all.data(), counts.data(), offsets.data(),
                        MPI_DOUBLE, comm_, &request),
        "MPI_Iallgatherv");
  stats_.collectives += 2;
  MpiRequest(*this, request, Tensor(), "all_gather", seq).wait();
  return all;
}

void MpiCommunicator::abort(const std::string& message) {
  std::fprintf(stderr, "glia: rank %d of %d: %s; aborting all ranks\n", rank_, size_,
               message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 3);
  std::abort();  // MPI_Abort does not return; this satisfies [[noreturn]]
}

void MpiCommunicator::diagnose_and_abort(const std::string& what, std::uint64_t seq) {
  constexpr int kTag = 7;
  const auto n = static_cast<std::size_t>(size_);
  std::vector<unsigned long long> theirs(n, 0);
  const unsigned long long mine = seq;
  std::vector<MPI_Request> sends(n, MPI_REQUEST_NULL), receives(n, MPI_REQUEST_NULL);
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    const auto i = static_cast<std::size_t>(r);
    MPI_Isend(&mine, 1, MPI_UNSIGNED_LONG_LONG, r, kTag, diag_, &sends[i]);
    MPI_Irecv(&theirs[i], 1, MPI_UNSIGNED_LONG_LONG, r, kTag, diag_, &receives[i]);
  }
  // Live ranks stuck in the same collective time out within one timeout of us and answer.
  std::vector<bool> answered(n, false);
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    bool all = true;
    for (int r = 0; r < size_; ++r) {
      const auto i = static_cast<std::size_t>(r);
      if (r == rank_ || answered[i]) continue;
      int done = 0;
      if (MPI_Test(&receives[i], &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done) {
        answered[i] = true;
      } else {
        all = false;
      }
    }
    if (all || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::string missing, diverged;
  for (int r = 0; r < size_; ++r) {
    const auto i = static_cast<std::size_t>(r);
    if (r == rank_) continue;
    if (!answered[i]) {
      missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    } else if (theirs[i] != mine) {
      diverged += (diverged.empty() ? "" : ", ") +
                  ("rank " + std::to_string(r) + " is in #" + std::to_string(theirs[i]));
    }
  }
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.1f", std::chrono::duration<double>(timeout_).count());
  std::string why;
  if (!missing.empty()) {
    why = "rank " + missing + " did not arrive (no answer within a further " +
          std::string(seconds) + " s: dead or hung)";
  }
  if (!diverged.empty()) {
    why += (why.empty() ? "" : "; ") + ("ranks diverged: " + diverged);
  }
  if (why.empty()) why = "every rank answered: the transport itself stalled";
  MpiCommunicator::abort(what + " #" + std::to_string(seq) +
                         " did not complete within the timeout of " + std::string(seconds) +
                         " s: " + why);
}

}  // namespace glia::dist
