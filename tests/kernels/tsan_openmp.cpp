// Part of the ThreadSanitizer build of the kernel tests only: the cpu reference kernels run on one
// OpenMP thread there. libgomp is not built with TSan, so its barriers are invisible to it and
// every parallel loop of the reference would be reported as a data race.
#include <omp.h>

namespace {

const bool kOneOpenMpThread = [] {
  omp_set_num_threads(1);
  return true;
}();

}  // namespace
