// The shared cpu engine and the argument list with its reorders; see context.h.
#include "kernels/dnnl/context.h"

#include <cstdlib>
#include <memory>
#include <new>

namespace glia::kernels::dnnl {
namespace {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// One reusable, 64-byte aligned buffer.
struct Buffer {
  std::unique_ptr<void, FreeDeleter> data;
  std::size_t bytes = 0;

  void* reserve(std::size_t want) {
    if (want > bytes) {
      const std::size_t rounded = (want + 63) / 64 * 64;
      data.reset();
      data.reset(std::aligned_alloc(64, rounded));
      if (!data) throw std::bad_alloc();
      bytes = rounded;
    }
    return data.get();
  }
};

// A primitive call on one thread uses buffers 0, 1, ... of that thread; calls on a thread never
// overlap, so the next call may reuse them.
thread_local std::vector<Buffer> t_buffers;

}  // namespace

const ::dnnl::engine& cpu_engine() {
  static const ::dnnl::engine engine(::dnnl::engine::kind::cpu, 0);
  return engine;
}

::dnnl::memory Args::input(int arg, const ::dnnl::memory::desc& plain,
                           const ::dnnl::memory::desc& wanted, const float* data) {
  // oneDNN's memory takes a mutable handle; inputs are only read.
  ::dnnl::memory user(plain, cpu_engine(), const_cast<float*>(data));
  if (plain == wanted) {
    args_.emplace(arg, user);
    return user;
  }
  ::dnnl::memory blocked = scratch(wanted);
  before_.emplace_back(user, blocked);
  args_.emplace(arg, blocked);
  return blocked;
}

void Args::output(int arg, const ::dnnl::memory::desc& plain, const ::dnnl::memory::desc& wanted,
                  float* data) {
  ::dnnl::memory user(plain, cpu_engine(), data);
  if (plain == wanted) {
    args_.emplace(arg, user);
    return;
  }
  ::dnnl::memory blocked = scratch(wanted);
  after_.emplace_back(blocked, user);
  args_.emplace(arg, blocked);
}

::dnnl::memory Args::scratch(const ::dnnl::memory::desc& desc) {
  const std::size_t slot = static_cast<std::size_t>(next_buffer_++);
  if (t_buffers.size() <= slot) t_buffers.resize(slot + 1);
  return ::dnnl::memory(desc, cpu_engine(), t_buffers[slot].reserve(desc.get_size()));
}

void Args::run(const ::dnnl::primitive& primitive) {
  ::dnnl::stream stream(cpu_engine());
  for (auto& [from, to] : before_) ::dnnl::reorder(from, to).execute(stream, from, to);
  primitive.execute(stream, args_);
  for (auto& [from, to] : after_) ::dnnl::reorder(from, to).execute(stream, from, to);
  stream.wait();
}

}  // namespace glia::kernels::dnnl
