// glia-serve: the brain-tumour model behind an HTTP API and a web page.
//   glia-serve --checkpoint CKPT [--host 127.0.0.1] [--port 8000] [--device cpu|sim|cuda]
//              [--max-batch 8] [--batch-wait-ms 5] [--max-queue 64] [--max-upload-mb 20]
//              [--eval-results FILE] [--api-key-file FILE]
//              [--cudnn-deterministic true|false] [--cudnn-find true|false]
//              [--precision fp32|tf32|bf16|fp16]
// --precision sets the format of convolutions and GEMMs (engine/precision.h).
// Binds to loopback unless --host says otherwise; --port 0 takes any free port. Prints
// "glia-serve: listening on http://HOST:PORT/" once it accepts requests. SIGTERM or SIGINT stops
// accepting, finishes the requests in flight and exits 0. Only parses arguments: the server is
// apps/serve/server.h. Tested end to end in tests/apps/serve_test.cpp and serve_browser_test.py.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "apps/args.h"
#include "apps/serve/server.h"

namespace {

using glia::apps::parse_integer;
using glia::apps::parse_number;

const char* kUsage =
    "usage: glia-serve --checkpoint CKPT [--host 127.0.0.1] [--port 8000] [--device cpu|sim|cuda]\n"
    "                  [--max-batch 8] [--batch-wait-ms 5] [--max-queue 64] [--max-upload-mb 20]\n"
    "                  [--eval-results FILE] [--api-key-file FILE]\n"
    "                  [--cudnn-deterministic true|false] [--cudnn-find true|false]\n"
    "                  [--precision fp32|tf32|bf16|fp16]\n";

// The key is the file's first line, without surrounding white space.
std::string read_api_key(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("--api-key-file " + path + " cannot be read");
  std::string key;
  std::getline(in, key);
  const auto first = key.find_first_not_of(" \t\r\n");
  const auto last = key.find_last_not_of(" \t\r\n");
  key = first == std::string::npos ? "" : key.substr(first, last - first + 1);
  if (key.empty()) throw std::runtime_error("--api-key-file " + path + " holds no key");
  return key;
}

// The options of a command line; nullopt after --help. The cuDNN flags set the process-wide
// choices (engine/policy.h).
std::optional<glia::serve::ServeOptions> parse(int argc, char** argv) {
  glia::serve::ServeOptions options;
  glia::CudnnChoices cudnn = glia::cudnn_choices();
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--checkpoint") {
      options.checkpoint = value();
    } else if (arg == "--host") {
      options.host = value();
    } else if (arg == "--port") {
      options.port = static_cast<int>(parse_integer(arg, value(), 0));
      if (options.port > 65535) throw std::invalid_argument("--port must be at most 65535");
    } else if (arg == "--device") {
      options.device = glia::Device::parse(value());
    } else if (arg == "--max-batch") {
      options.max_batch = static_cast<int>(parse_integer(arg, value(), 1));
    } else if (arg == "--batch-wait-ms") {
      options.batch_wait_ms = static_cast<int>(parse_integer(arg, value(), 0));
    } else if (arg == "--max-queue") {
      options.max_queue = static_cast<int>(parse_integer(arg, value(), 1));
    } else if (arg == "--max-upload-mb") {
      const double mb = parse_number(arg, value());
      if (!(mb > 0)) throw std::invalid_argument("--max-upload-mb must be positive");
      options.max_upload_bytes = static_cast<std::size_t>(mb * 1024 * 1024);
    } else if (arg == "--eval-results") {
      options.eval_results = value();
    } else if (arg == "--api-key-file") {
      options.api_key = read_api_key(value());
    } else if (glia::apps::parse_cudnn_flag(arg, value, cudnn)) {
      // --cudnn-deterministic or --cudnn-find, applied once the line is parsed
    } else if (arg == "--precision") {
      glia::apps::set_precision_flag(arg, value());
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return std::nullopt;
    } else {
      throw std::invalid_argument("unknown argument " + arg);
    }
  }
  if (options.checkpoint.empty()) throw std::invalid_argument("--checkpoint is required");
  glia::set_cudnn_choices(cudnn);
  return options;
}

volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_signal(int signal) {
  g_signal = signal;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<glia::serve::ServeOptions> options;
  try {
    options = parse(argc, argv);
    if (!options) return 0;
  } catch (const std::exception& e) {
    std::cerr << "glia-serve: " << e.what() << "\n" << kUsage;
    return 1;
  }
  try {
    glia::serve::Server server(*options);
    const int port = server.bind();
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    // The handler only records the signal; this thread turns it into stop(), repeatedly until
    // run() returns, since a stop() that lands before the accept loop has started would be lost.
    std::atomic<bool> finished{false};
    std::thread watcher([&server, &finished] {
      while (g_signal == 0 && !finished) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (finished) return;
      std::cerr << "glia-serve: stopping; finishing the requests in flight\n";
      while (!finished) {
        server.stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
    std::cout << "glia-serve: listening on http://" << options->host << ":" << port << "/"
              << std::endl;
    server.run();
    finished = true;
    watcher.join();
    std::cerr << "glia-serve: stopped\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "glia-serve: " << e.what() << "\n";
    return 1;
  }
}
