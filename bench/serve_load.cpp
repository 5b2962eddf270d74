// glia-bench-serve: load on glia-serve from concurrent loopback clients. It starts the server
// (--port 0, its own process, so its RSS can be read from /proc), then for each client count
// runs that many client threads for a fixed time, each posting the image again and again, and
// reports throughput, p50/p95/p99 latency, answers by status (200, 503 refused by a full queue,
// others) and the batch sizes the server reached (from its /metrics, the difference over the
// level). A soak then runs at one client count and samples the server's RSS every second; the
// start and the end are the peaks of its first and last 30 s. Markdown on stdout.
//   glia-bench-serve --server glia-serve --checkpoint CKPT --image FILE [--clients 1,4,16,64]
//                    [--seconds 10] [--max-queue 32] [--max-batch 8] [--batch-wait-ms 5]
//                    [--endpoint /predict_multitask] [--query gradcam=1] [--soak-seconds 120]
//                    [--soak-clients 16] [--quick]
// --quick: clients 1,4, 2 s each, a 4 s soak (the ctest smoke run).
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/args.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string server, checkpoint, image, endpoint = "/predict_multitask", query = "gradcam=1";
  std::vector<int> clients{1, 4, 16, 64};
  double seconds = 10, soak_seconds = 120;
  int soak_clients = 16, max_queue = 32, max_batch = 8, batch_wait_ms = 5;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The server process: started with --port 0, its port read from its first line.
struct ServerProcess {
  pid_t pid = -1;
  int port = 0;

  explicit ServerProcess(const Options& o) {
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      // As scripts/serve runs it: OpenMP threads that spin while they wait take the cores from the
      // request threads (4x slower answers on a shared 2-core machine).
      ::setenv("OMP_WAIT_POLICY", "passive", 0);
      const std::string queue = std::to_string(o.max_queue), batch = std::to_string(o.max_batch),
                        wait = std::to_string(o.batch_wait_ms);
      ::execl(o.server.c_str(), o.server.c_str(), "--checkpoint", o.checkpoint.c_str(), "--port",
              "0", "--max-queue", queue.c_str(), "--max-batch", batch.c_str(), "--batch-wait-ms",
              wait.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    for (char ch; ::read(out[0], &ch, 1) == 1 && ch != '\n';) line += ch;
    ::close(out[0]);
    const auto colon = line.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("glia-serve did not start: " + line);
    port = std::stoi(line.substr(colon + 1));
  }
  ~ServerProcess() {
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  // VmRSS in MiB.
  double rss_mib() const {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    }
    return 0.0;
  }
};

// glia_batch_size_bucket{le="N"} counts (cumulative) from /metrics.
std::map<double, long long> batch_buckets(int port) {
  httplib::Client c("127.0.0.1", port);
  const auto r = c.Get("/metrics");
  std::map<double, long long> out;
  if (!r) return out;
  std::istringstream in(r->body);
  const std::string prefix = "glia_batch_size_bucket{le=\"";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) != 0) continue;
    const auto close = line.find('"', prefix.size());
    const std::string le = line.substr(prefix.size(), close - prefix.size());
    const double bound = le == "+Inf" ? 1e9 : std::stod(le);
    out[bound] = std::stoll(line.substr(line.rfind(' ') + 1));
  }
  return out;
}

struct Level {
  int clients = 0;
  double seconds = 0;
  std::vector<double> latencies_ms;  // of 200 answers
  long long ok = 0, busy = 0, other = 0;
  std::map<std::string, long long> other_kinds;  // "HTTP 500", "Read", "Connection", ...
  std::string batches;  // "size: count" of the batches run during the level
};

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const auto at = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(at, v.size() - 1)];
}

Level run_level(const Options& o, int port, const std::string& image, int clients, double seconds) {
  Level level;
  level.clients = clients;
  const auto before = batch_buckets(port);
  std::mutex mutex;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  const std::string path = o.endpoint + (o.query.empty() ? "" : "?" + o.query);
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(300, 0);
      // As browsers do: a new connection per request would overflow the server's accept backlog
      // (cpp-httplib listens with 5) and stall some connections past its keep-alive timeout.
      c.set_keep_alive(true);
      std::vector<double> lat;
      long long ok = 0, busy = 0, other = 0;
      std::map<std::string, long long> kinds;
      while (Clock::now() < end) {
        const auto t0 = Clock::now();
        const auto r = c.Post(path.c_str(), image, "application/octet-stream");
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (r && r->status == 200) {
          ++ok;
          lat.push_back(ms);
        } else if (r && r->status == 503) {
          ++busy;
          // As a client honouring Retry-After would, but sooner: keep the pressure on.
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        } else {
          ++other;
          ++kinds[r ? "HTTP " + std::to_string(r->status) : httplib::to_string(r.error())];
        }
      }
      const std::lock_guard<std::mutex> lock(mutex);
      level.latencies_ms.insert(level.latencies_ms.end(), lat.begin(), lat.end());
      level.ok += ok;
      level.busy += busy;
      level.other += other;
      for (const auto& [kind, n] : kinds) level.other_kinds[kind] += n;
    });
  }
  for (auto& t : threads) t.join();
  level.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const auto after = batch_buckets(port);
  long long below = 0;
  std::ostringstream batches;
  for (const auto& [bound, count] : after) {
    const long long in_bucket = (count - (before.count(bound) ? before.at(bound) : 0)) - below;
    below += in_bucket;
    if (in_bucket > 0 && bound < 1e9) {
      batches << (batches.tellp() > 0 ? ", " : "") << "<=" << bound << ": " << in_bucket;
    }
  }
  level.batches = batches.str();
  return level;
}

void print_level(const Level& l) {
  std::string other = std::to_string(l.other);
  for (const auto& [kind, n] : l.other_kinds) {
    other += (other.find('(') == std::string::npos ? " (" : ", ") + kind + ": " + std::to_string(n);
  }
  if (!l.other_kinds.empty()) other += ")";
  std::printf("| %d | %lld | %.2f | %.0f | %.0f | %.0f | %lld | %s | %s |\n", l.clients, l.ok,
              static_cast<double>(l.ok) / l.seconds, percentile(l.latencies_ms, 0.50),
              percentile(l.latencies_ms, 0.95), percentile(l.latencies_ms, 0.99), l.busy,
              other.c_str(), l.batches.c_str());
  std::fflush(stdout);
}

Options parse(int argc, char** argv) {
  Options o;
  for (glia::bench::Args args(argc, argv); args.next();) {
    if (args.is("--server")) {
      o.server = args.value();
    } else if (args.is("--checkpoint")) {
      o.checkpoint = args.value();
    } else if (args.is("--image")) {
      o.image = args.value();
    } else if (args.is("--endpoint")) {
      o.endpoint = args.value();
    } else if (args.is("--query")) {
      o.query = args.value();
    } else if (args.is("--clients")) {
      o.clients.clear();
      std::istringstream in(args.value());
      for (std::string n; std::getline(in, n, ',');) {
        o.clients.push_back(static_cast<int>(glia::apps::parse_integer(args.flag(), n, 1)));
      }
    } else if (args.is("--seconds")) {
      o.seconds = args.number();
    } else if (args.is("--soak-seconds")) {
      o.soak_seconds = args.number();
    } else if (args.is("--soak-clients")) {
      o.soak_clients = args.integer(1);
    } else if (args.is("--max-queue")) {
      o.max_queue = args.integer(1);
    } else if (args.is("--max-batch")) {
      o.max_batch = args.integer(1);
    } else if (args.is("--batch-wait-ms")) {
      o.batch_wait_ms = args.integer(0);
    } else if (args.is("--quick")) {
      o.clients = {1, 4};
      o.seconds = 2;
      o.soak_seconds = 4;
      o.soak_clients = 4;
    } else {
      args.unknown(
          "glia-bench-serve --server BIN --checkpoint FILE --image FILE [--endpoint E] [--query Q] "
          "[--clients N,N...] [--seconds S] [--soak-seconds S] [--soak-clients N] "
          "[--max-queue N] [--max-batch N] [--batch-wait-ms MS] [--quick]");
    }
  }
  if (o.server.empty() || o.checkpoint.empty() || o.image.empty()) {
    throw std::invalid_argument("--server, --checkpoint and --image are required");
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    const std::string image = read_bytes(o.image);
    ServerProcess server(o);
    // Warm-up: the first requests allocate the server's buffers.
    run_level(o, server.port, image, 2, 1.0);
    std::printf(
        "glia-serve load: %s%s?%s, image %s (%zu bytes), max-batch %d, batch-wait %d ms, "
        "max-queue %d, %.0f s per level\n\n",
        o.endpoint.c_str(), "", o.query.c_str(), o.image.c_str(), image.size(), o.max_batch,
        o.batch_wait_ms, o.max_queue, o.seconds);
    std::printf(
        "| clients | answers 200 | throughput (req/s) | p50 (ms) | p95 (ms) | p99 (ms) | "
        "503 | other errors | batches run (size: count) |\n");
    std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (const int clients : o.clients) {
      print_level(run_level(o, server.port, image, clients, o.seconds));
    }
    if (o.soak_seconds > 0) {
      const double rss_start = server.rss_mib();
      // One sample a second: the RSS of a batching server swings with each batch's
      // temporaries, so the start and end are each the peak of a 30 s window.
      std::vector<double> samples{rss_start};
      std::mutex samples_mutex;
      Level soak;
      std::atomic<bool> soaking{true};
      std::thread sampler([&] {
        while (soaking) {
          for (int i = 0; i < 10 && soaking; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
          const double rss = server.rss_mib();
          const std::lock_guard<std::mutex> lock(samples_mutex);
          samples.push_back(rss);
        }
      });
      soak = run_level(o, server.port, image, o.soak_clients, o.soak_seconds);
      soaking = false;
      sampler.join();
      const std::size_t window = std::min<std::size_t>(30, samples.size());
      const double peak_start = *std::max_element(samples.begin(), samples.begin() + window);
      const double peak_end = *std::max_element(samples.end() - window, samples.end());
      std::printf("\nsoak: %d clients for %.0f s\n\n", o.soak_clients, soak.seconds);
      std::printf(
          "| clients | answers 200 | throughput (req/s) | p50 (ms) | p95 (ms) | p99 (ms) | "
          "503 | other errors | batches run (size: count) |\n");
      std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
      print_level(soak);
      std::printf(
          "\nserver RSS (MiB, sampled every second): peak of the first %zu s %.1f, peak of "
          "the last %zu s %.1f (%+.1f%%); min %.1f, max %.1f over the soak; every 10 s:",
          window, peak_start, window, peak_end, 100.0 * (peak_end - peak_start) / peak_start,
          *std::min_element(samples.begin(), samples.end()),
          *std::max_element(samples.begin(), samples.end()));
      for (std::size_t i = 0; i < samples.size(); i += 10) std::printf(" %.1f", samples[i]);
      std::printf("\n");
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "glia-bench-serve: " << e.what() << "\n";
    return 1;
  }
}
