// What every oneDNN call of kernels/dnnl shares: the cpu engine and the argument list of one
// primitive call, which wraps our plain buffers as oneDNN memory and inserts the reorders to and
// from the layouts the primitive chose (none when they already match). The blocked copies live in
// buffers kept per thread and reused from call to call (grown, never shrunk): a fresh allocation
// of that size is a fresh mmap whose page faults cost more than the reorder itself. Used by
// kernels/dnnl/*.cpp;
// tested through them in tests/kernels/conv_test.cpp (CpuDnnlConv).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <unordered_map>
#include <utility>
#include <vector>

namespace glia::kernels::dnnl {

// The process's cpu engine, created on first use.
const ::dnnl::engine& cpu_engine();

class Args {
 public:
  // The arguments of a second call that goes on after this one (already run): it takes the
  // buffers after this call's, so a blocked copy this call made stays valid for the second.
  Args next() const {
    Args a;
    a.next_buffer_ = next_buffer_;
    return a;
  }

  // A buffer the primitive reads: `plain` describes it as we hold it, `wanted` as the primitive
  // wants it; reordered into a temporary before the call when they differ.
  // Returns the memory the primitive reads.
  ::dnnl::memory input(int arg, const ::dnnl::memory::desc& plain,
                       const ::dnnl::memory::desc& wanted, const float* data);
  // Memory already in the primitive's layout.
  void add(int arg, const ::dnnl::memory& memory) { args_.emplace(arg, memory); }
  // A buffer the primitive writes: written in `wanted`'s layout and reordered into `data` after
  // the call when the layouts differ.
  void output(int arg, const ::dnnl::memory::desc& plain, const ::dnnl::memory::desc& wanted,
              float* data);
  // Runs the reorders in, the primitive, the reorders out, and waits for them.
  void run(const ::dnnl::primitive& primitive);

 private:
  // Memory in `desc`'s layout over this call's next reusable buffer.
  ::dnnl::memory scratch(const ::dnnl::memory::desc& desc);

  std::unordered_map<int, ::dnnl::memory> args_;
  int next_buffer_ = 0;
  std::vector<std::pair<::dnnl::memory, ::dnnl::memory>> before_, after_;  // (from, to)
};

}  // namespace glia::kernels::dnnl
