// Atomic file writes: every output of glia (slices, images, volumes, checkpoints, reports) is
// written to a temporary name in the destination folder and renamed over the target only once it
// is complete, so an interrupted run never leaves a half-written file behind.
// Tested in tests/io/atomic_file_test.cpp.
#pragma once

#include <filesystem>
#include <string_view>

namespace glia::io {

// A temporary path beside `target` (same folder, so the rename cannot cross file systems), named
// `.tmp.<pid>.<n>.<target name>` so it keeps the target's extension, for libraries that write by
// file name. commit() renames it over the target; if commit() is never
// reached (an exception, an early return) the destructor removes the temporary file.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const std::filesystem::path& temp_path() const { return temp_; }
  const std::filesystem::path& target() const { return target_; }
  // Flushes the temporary file to disk and renames it over the target. Throws (naming both paths)
  // when the temporary file is missing or the rename fails.
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  bool committed_ = false;
};

// Writes `bytes` to `path` atomically. Throws std::runtime_error naming the path on failure.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// Removes the temporary files that writers killed before commit() left in `folder` (those named
// for a process that no longer runs). Errors are ignored: the files are only clutter.
void remove_stale_temporaries(const std::filesystem::path& folder);

// Reads a whole file. Throws std::runtime_error naming the path when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace glia::io
