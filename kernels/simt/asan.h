// AddressSanitizer annotations of the SIMT emulator's fiber switches, no-ops unless built with
// ASan. ASan keeps the bounds of the stack it believes is running; a switch to a fiber's stack it
// was not told of makes it mistake the fiber's frames for a wild stack (an exception thrown in a
// kernel then reports a false stack-use-after-scope). Each switch is announced before it (the
// stack being entered) and completed after it (the stack that was left). Tested by the ASan pass
// of scripts/test over tests/simt (the tests whose kernels throw inside a fiber).
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define GLIA_SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GLIA_SIMT_ASAN 1
#endif
#endif

#if defined(GLIA_SIMT_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif

namespace glia::simt::detail::asan {

#if defined(GLIA_SIMT_ASAN)
// Before switching to the stack [bottom, bottom + size); `fake_stack` keeps the leaving side's
// fake frames (null when the leaving fiber never comes back).
inline void start_switch(void** fake_stack, const void* bottom, std::size_t size) {
  __sanitizer_start_switch_fiber(fake_stack, bottom, size);
}
// First thing after a switch lands; reports the bounds of the stack that was left.
inline void finish_switch(void* fake_stack, const void** old_bottom, std::size_t* old_size) {
  __sanitizer_finish_switch_fiber(fake_stack, old_bottom, old_size);
}
#else
inline void start_switch(void**, const void*, std::size_t) {}
inline void finish_switch(void*, const void**, std::size_t*) {}
#endif

}  // namespace glia::simt::detail::asan
