# Fails when a file under kernels/cuda breaks one of two rules (comments are ignored):
# - shared memory is declared with a raw `__shared__` instead of GLIA_STATIC_SHARED /
#   GLIA_DYNAMIC_SHARED (kernels/cuda/portable.cuh, which alone may spell it): on the sim device a
#   raw static array is neither poisoned at block start nor counted against the 48 KiB limit, so a
#   kernel that reads it before writing it, or declares too much of it, would pass its sim tests;
# - a `__global__` declaration lacks `__launch_bounds__` on its line: without it ptxas may give
#   the kernel more registers than its block allows, and the emulator cannot check the launch
#   against it (GLIA_LAUNCH_BOUNDS).
# Run by ctest as cpu:kernels.source_rules:
#   cmake -DKERNEL_DIR=<source>/kernels/cuda -P kernel_source_rules.cmake
# and prints each offending file:line.
if(NOT IS_DIRECTORY "${KERNEL_DIR}")
  message(FATAL_ERROR "kernel_source_rules.cmake: KERNEL_DIR='${KERNEL_DIR}' is not a directory")
endif()
file(GLOB_RECURSE sources RELATIVE "${KERNEL_DIR}" "${KERNEL_DIR}/*")
set(offences "")
set(unbounded "")
foreach(source IN LISTS sources)
  if(source STREQUAL "portable.cuh")
    continue()
  endif()
  file(READ "${KERNEL_DIR}/${source}" text)
  # One list element per line: the characters that CMake's lists treat specially are masked.
  string(REPLACE ";" "<semicolon>" text "${text}")
  string(REPLACE "[" "<open>" text "${text}")
  string(REPLACE "]" "<close>" text "${text}")
  string(REPLACE "\n" ";" lines "${text}")
  set(number 0)
  foreach(line IN LISTS lines)
    math(EXPR number "${number} + 1")
    string(REGEX REPLACE "//.*$" "" code "${line}")
    string(STRIP "${code}" code)
    # The line as written, for the message.
    string(REPLACE "<semicolon>" ";" shown "${code}")
    string(REPLACE "<open>" "[" shown "${shown}")
    string(REPLACE "<close>" "]" shown "${shown}")
    if(code MATCHES "(^|[^A-Za-z0-9_])__shared__([^A-Za-z0-9_]|$)")
      string(APPEND offences "\n  kernels/cuda/${source}:${number}: ${shown}")
    endif()
    if(code MATCHES "(^|[^A-Za-z0-9_])__global__([^A-Za-z0-9_]|$)"
       AND NOT code MATCHES "__launch_bounds__")
      string(APPEND unbounded "\n  kernels/cuda/${source}:${number}: ${shown}")
    endif()
  endforeach()
endforeach()
set(message "")
if(offences)
  string(APPEND message "raw __shared__ declarations in kernels/cuda; declare static shared arrays "
         "with GLIA_STATIC_SHARED(type, name) and dynamic shared memory with "
         "GLIA_DYNAMIC_SHARED(type, name) (kernels/cuda/portable.cuh), so the emulator poisons "
         "and counts them:${offences}\n")
endif()
if(unbounded)
  string(APPEND message "kernels without __launch_bounds__ in kernels/cuda; declare each as "
         "`__global__ void __launch_bounds__(threads) name(...)` and register it with "
         "GLIA_LAUNCH_BOUNDS(name, threads) (kernels/cuda/portable.cuh):${unbounded}")
endif()
if(message)
  message(FATAL_ERROR "${message}")
endif()
list(LENGTH sources count)
message(STATUS "no raw __shared__ and no kernel without __launch_bounds__ in the ${count} files "
               "of ${KERNEL_DIR}")
