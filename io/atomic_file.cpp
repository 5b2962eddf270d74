// Atomic writes through a temporary file and rename(2); see atomic_file.h.
#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace glia::io {
namespace {

std::filesystem::path make_temp_path(const std::filesystem::path& target) {
  static std::atomic<unsigned> counter{0};
  std::ostringstream name;
  // The prefix hides the file; the target's name stays at the end so that libraries that choose
  // the encoding by extension (.nii.gz, .png) see the right one.
  name << ".tmp." << ::getpid() << '.' << counter++ << '.' << target.filename().string();
  return target.parent_path() / name.str();
}

// fsync so a crash after the rename cannot expose an empty file under the final name.
void sync_file(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

AtomicFile::AtomicFile(std::filesystem::path target)
    : target_(std::move(target)), temp_(make_temp_path(target_)) {
  if (target_.empty()) throw std::invalid_argument("AtomicFile: empty target path");
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    std::error_code ignored;
    std::filesystem::remove(temp_, ignored);
  }
}

void AtomicFile::commit() {
  if (committed_) return;
  if (!std::filesystem::exists(temp_)) {
    throw std::runtime_error("cannot write " + target_.string() + ": the temporary file " +
                             temp_.string() + " was not created");
  }
  sync_file(temp_);
  std::error_code ec;
  std::filesystem::rename(temp_, target_, ec);
  if (ec) {
    throw std::runtime_error("cannot write " + target_.string() + ": renaming " + temp_.string() +
                             " failed: " + ec.message());
  }
  committed_ = true;
}

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  AtomicFile file(path);
  {
    std::ofstream out(file.temp_path(), std::ios::binary | std::ios::trunc);
    if (!out) {
      throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(errno));
    }
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + path.string() + ": write failed");
  }
  file.commit();
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string() + ": " + std::strerror(errno));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read " + path.string() + ": read failed");
  return std::move(bytes).str();
}

}  // namespace glia::io
