// The shared cpu engine and the argument list with its reorders; see context.h.
#include "kernels/dnnl/context.h"

namespace glia::kernels::dnnl {

const ::dnnl::engine& cpu_engine() {
  static const ::dnnl::engine engine(::dnnl::engine::kind::cpu, 0);
  return engine;
}

void Args::input(int arg, const ::dnnl::memory::desc& plain, const ::dnnl::memory::desc& wanted,
                 const float* data) {
  // oneDNN's memory takes a mutable handle; inputs are only read.
  ::dnnl::memory user(plain, cpu_engine(), const_cast<float*>(data));
  if (plain == wanted) {
    args_.emplace(arg, user);
    return;
  }
  ::dnnl::memory blocked(wanted, cpu_engine());
  before_.emplace_back(user, blocked);
  args_.emplace(arg, blocked);
}

void Args::output(int arg, const ::dnnl::memory::desc& plain, const ::dnnl::memory::desc& wanted,
                  float* data) {
  ::dnnl::memory user(plain, cpu_engine(), data);
  if (plain == wanted) {
    args_.emplace(arg, user);
    return;
  }
  ::dnnl::memory blocked(wanted, cpu_engine());
  after_.emplace_back(blocked, user);
  args_.emplace(arg, blocked);
}

void Args::run(const ::dnnl::primitive& primitive) {
  ::dnnl::stream stream(cpu_engine());
  for (auto& [from, to] : before_) ::dnnl::reorder(from, to).execute(stream, from, to);
  primitive.execute(stream, args_);
  for (auto& [from, to] : after_) ::dnnl::reorder(from, to).execute(stream, from, to);
  stream.wait();
}

}  // namespace glia::kernels::dnnl
