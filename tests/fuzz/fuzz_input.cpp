// Scratch files for the fuzz targets; see fuzz_input.h.
#include "tests/fuzz/fuzz_input.h"

#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <string>

namespace glia::fuzz {

std::filesystem::path write_input(const std::uint8_t* data, std::size_t size,
                                  std::string_view name) {
  // One folder per process, removed at exit (libFuzzer's forked jobs each get their own).
  struct Scratch {
    std::filesystem::path folder;
    Scratch() {
      std::error_code ec;
      const std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec)
                                             ? std::filesystem::path("/dev/shm")
                                             : std::filesystem::temp_directory_path();
      folder = base / ("glia-fuzz-" + std::to_string(::getpid()));
      std::filesystem::create_directories(folder);
    }
    ~Scratch() {
      std::error_code ec;
      std::filesystem::remove_all(folder, ec);
    }
  };
  static const Scratch scratch;
  const std::filesystem::path& folder = scratch.folder;
  const std::filesystem::path path = folder / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out.flush())
    throw std::runtime_error("fuzz: cannot write the scratch file " + path.string());
  return path;
}

}  // namespace glia::fuzz
