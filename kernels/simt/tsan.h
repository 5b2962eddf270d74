// ThreadSanitizer annotations of the SIMT emulator, no-ops unless built with GLIA_TSAN. Every
// emulated GPU thread runs on a fiber that TSan knows as its own thread; fibers switch without
// synchronising, the emulator's bookkeeping is hidden from TSan, and only the synchronisation a GPU
// has (barriers, __syncwarp and warp collectives, launch begin/end) is announced as
// release/acquire, so a missing barrier is reported as a data race. Tested by the TSan tests in
// tests/simt.
#pragma once

#if defined(GLIA_TSAN)
#include <sanitizer/tsan_interface.h>

extern "C" {
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
}
#endif

namespace glia::simt::detail::tsan {

#if defined(GLIA_TSAN)
inline constexpr bool enabled = true;
inline void* current_fiber() {
  return __tsan_get_current_fiber();
}
inline void* create_fiber() {
  return __tsan_create_fiber(0);
}
// Called immediately before each context switch, in both directions.
inline void switch_to(void* fiber) {
  __tsan_switch_to_fiber(fiber, __tsan_switch_to_fiber_no_sync);
}
inline void release(const void* addr) {
  __tsan_release(const_cast<void*>(addr));
}
inline void acquire(const void* addr) {
  __tsan_acquire(const_cast<void*>(addr));
}
// Memory accesses between begin and end are not recorded (synchronisation still is).
inline void ignore_begin() {
  __tsan_ignore_thread_begin();
}
inline void ignore_end() {
  __tsan_ignore_thread_end();
}
#else
inline constexpr bool enabled = false;
inline void* current_fiber() {
  return nullptr;
}
inline void* create_fiber() {
  return nullptr;
}
inline void switch_to(void*) {}
inline void release(const void*) {}
inline void acquire(const void*) {}
inline void ignore_begin() {}
inline void ignore_end() {}
#endif

}  // namespace glia::simt::detail::tsan
