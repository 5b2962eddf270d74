// A two-rank job in which rank 1 fails on purpose, for tests/dist/fault_test.sh: every rank
// all-reduces a tensor a few times, and before the second one rank 1 hangs (sleeps far longer
// than the timeout), dies (SIGKILL) or throws (an exception that reaches main, as a bad input
// would). The other ranks must end with an error naming rank 1 within the timeout, not hang.
// Usage: glia-dist-fault hang|kill|throw TIMEOUT_MS
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

#include "engine/dist/communicator.h"
#include "engine/ops.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: glia-dist-fault hang|kill|throw TIMEOUT_MS\n");
    return 2;
  }
  const std::string mode = argv[1];
  const auto timeout = std::chrono::milliseconds(std::atol(argv[2]));
  auto comm = glia::dist::init_distributed(glia::DeviceType::cpu, timeout).comm;
  try {
    for (int step = 0; step < 3; ++step) {
      if (step == 1 && comm->rank() == 1) {
        if (mode == "hang") sleep(600);
        if (mode == "kill") raise(SIGKILL);
        if (mode == "throw") throw std::runtime_error("rank 1 failed on purpose at step 1");
      }
      glia::Tensor t = glia::ones({16});
      comm->all_reduce(t);
    }
  } catch (const std::exception& e) {
    comm->abort(e.what());
  }
  std::printf("rank %d finished: the fault was not detected\n", comm->rank());
  return 0;
}
