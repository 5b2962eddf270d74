// Fuzz target: glia-serve's request handling, from raw HTTP bytes to the JSON answer. Each input
// is one HTTP/1.1 request (request line, headers, body) that goes, without a socket, through
// Server::answer_raw: the HTTP library's parsing (request line, query, headers, multipart),
// the API-key check, apps/serve/request.h's validation, glia-infer's load_input, the inference
// worker and a tiny untrained model (base filters 2, depth 1) with Grad-CAM, then the answer's
// PNG and JSON encoding. A Content-Length header is set to the body's true length, so mutations
// explore what the body holds rather than framing the HTTP library rejects at once. Every answer
// must be an HTTP status line; a status of 500 (an exception escaped a handler) is a finding too.
// The HTTP library itself is Debian's compiled libcpp-httplib, so only glia's side is
// instrumented. Run by scripts/fuzz; seeds and regressions replayed by replay_test.cpp.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include "apps/serve/server.h"
#include "nets/model/checkpoint.h"
#include "nets/model/unet.h"

namespace {

glia::serve::Server& server() {
  static const std::unique_ptr<glia::serve::Server> instance = [] {
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / "glia-fuzz-serve-model";
    std::filesystem::create_directories(dir);
    glia::nets::UNetConfig config;
    config.base_filters = 2;
    config.depth = 1;
    config.cls_hidden = 4;
    glia::serve::ServeOptions options;
    options.checkpoint = dir / "tiny.safetensors";
    glia::nets::write_initial_checkpoint(options.checkpoint, config, 0);
    options.port = 0;
    options.max_batch = 1;
    options.batch_wait_ms = 0;
    options.max_upload_bytes = std::size_t{1} << 20;
    options.api_key = "fuzz-key";
    return std::make_unique<glia::serve::Server>(options);
  }();
  return *instance;
}

// The request with its Content-Length headers replaced by the body's length.
std::string framed(std::string_view input) {
  const std::size_t end = input.find("\r\n\r\n");
  if (end == std::string_view::npos) return std::string(input);
  const std::string_view head = input.substr(0, end);
  const std::string_view body = input.substr(end + 4);
  std::string out;
  std::size_t at = 0;
  while (at <= head.size()) {
    std::size_t next = head.find("\r\n", at);
    if (next == std::string_view::npos) next = head.size();
    const std::string_view line = head.substr(at, next - at);
    std::string lower(line.substr(0, 15));
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower != "content-length:") {
      out.append(line);
      out.append("\r\n");
    }
    at = next + 2;
  }
  out.append("Content-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  out.append(body);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string request = framed(std::string_view(reinterpret_cast<const char*>(data), size));
  const std::string answer = server().answer_raw(request);
  if (answer.empty()) return 0;  // the library closed the connection without an answer
  if (!answer.starts_with("HTTP/1.1 ") || answer.starts_with("HTTP/1.1 500")) {
    std::cerr << "fuzz serve: unexpected answer:\n" << answer.substr(0, 2000) << "\n";
    std::abort();
  }
  return 0;
}
