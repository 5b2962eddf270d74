// glia-serve: the original system's HTTP API and web page over one inference worker.
//   GET  /                   the page (apps/serve/page.html, embedded at build time)
//   GET  /health             {"status", "multitask_loaded", "device", "uptime_s", "queue",
//                            "in_flight"} (waiting for the worker; being handled)
//   GET  /model/info         architecture, parameter counts, checkpoint metadata, thresholds,
//                            the --eval-results metrics
//   POST /predict_multitask  classification, conditional mask, Grad-CAM overlay, recommendation
//   POST /predict            classification only (encoder and head)
//   GET  /metrics            Prometheus text (apps/serve/metrics.h)
// Uploads are validated by apps/serve/request.h and decoded by glia-infer's load_input, so the
// numbers equal glia-infer's on the same file. Errors are JSON {"error": ...}: 400 bad input,
// 401 without the API key (when one is set; / and /health stay open), 413 too large, 415
// unsupported type, 503 with Retry-After when the worker's queue is full. stop() stops accepting,
// lets in-flight requests finish and returns run(). Tested in tests/apps/serve_test.cpp.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "engine/device.h"

namespace glia::serve {

struct ServeOptions {
  std::filesystem::path checkpoint;
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: any free port (see Server::port)
  Device device = Device::cpu();
  int max_batch = 8;
  int batch_wait_ms = 5;
  int max_queue = 64;
  std::size_t max_upload_bytes = std::size_t{20} << 20;
  std::optional<std::filesystem::path> eval_results;  // a glia-eval results.json
  std::string api_key;                                // empty: no authorisation asked
};

class Server {
 public:
  // Loads the checkpoint and starts the worker; errors name the file.
  explicit Server(const ServeOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port (the chosen one for port 0). Errors name the
  // address.
  int bind();
  // Serves until stop(); needs bind() first. Returns after in-flight requests are answered.
  void run();
  // Thread-safe; not async-signal-safe (main calls it from a thread watching for SIGTERM).
  void stop();
  int port() const;
  // Answers one raw HTTP/1.1 request (request line, headers, body) without a socket, through the
  // same parsing, routes and handlers as a connection; returns the raw answer. The fuzz target
  // of the request handling (tests/fuzz/serve.cpp) drives the server through it.
  std::string answer_raw(const std::string& request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The body of an error answer: {"error": message}.
std::string error_json(const std::string& message);

}  // namespace glia::serve
