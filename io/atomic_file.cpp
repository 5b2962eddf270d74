// Atomic writes through a temporary file and rename(2); see atomic_file.h.
#include "io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

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

// fsync so a crash after the rename cannot expose an empty file under the final name. Some file
// systems report a full disk only here, so a failure is an error.
void sync_file(const std::filesystem::path& path, const std::filesystem::path& target) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) {  // EINVAL: a special file that cannot be synced
    throw std::runtime_error("cannot write " + target.string() + ": " + std::strerror(err));
  }
}

// GLIA_ATOMIC_WRITE_DELAY_MS: a pause between a complete temporary file and its rename, so that
// the crash test (tests/apps/train_crash.sh) lands its kills inside checkpoint writes. Unset: none.
std::chrono::milliseconds write_delay() {
  static const std::chrono::milliseconds delay = [] {
    const char* text = std::getenv("GLIA_ATOMIC_WRITE_DELAY_MS");
    return std::chrono::milliseconds(text != nullptr ? std::atoi(text) : 0);
  }();
  return delay;
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
  sync_file(temp_, target_);
  if (write_delay().count() > 0) std::this_thread::sleep_for(write_delay());
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
    errno = 0;
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      // errno holds the cause of the failed write(2), e.g. a full disk.
      throw std::runtime_error("cannot write " + path.string() + ": " +
                               (errno != 0 ? std::strerror(errno) : "write failed"));
    }
  }
  file.commit();
}

void remove_stale_temporaries(const std::filesystem::path& folder) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(".tmp.")) continue;
    const std::size_t end = name.find('.', 5);
    if (end == std::string::npos) continue;
    pid_t pid = 0;
    try {
      pid = static_cast<pid_t>(std::stol(name.substr(5, end - 5)));
    } catch (const std::exception&) {
      continue;
    }
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      std::filesystem::remove(entry.path(), ignored);
    }
  }
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
