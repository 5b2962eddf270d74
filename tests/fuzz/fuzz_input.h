// Shared by the fuzz targets of tests/fuzz: most readers under test take a path, so each input is
// written to a scratch file first (in /dev/shm when it exists, so no disk is touched), and every
// target runs its reader through accept_or_reject(), under which a std::exception is the reader's
// correct answer to bad bytes while anything else (a crash, a sanitizer report, an out-of-memory
// std::bad_alloc, a non-standard exception) is a finding.
// Used by every tests/fuzz/<target>.cpp, under libFuzzer and under replay_test.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <new>
#include <string_view>

namespace glia::fuzz {

// Writes the input to `<scratch folder>/<name>` (one folder per process) and returns its path.
std::filesystem::path write_input(const std::uint8_t* data, std::size_t size,
                                  std::string_view name);

// Runs `read`; true when it returned, false when it rejected the input with a std::exception.
// std::bad_alloc propagates: a reader must refuse a size before allocating it.
template <class F>
bool accept_or_reject(F&& read) {
  try {
    read();
    return true;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace glia::fuzz
