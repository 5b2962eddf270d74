// glia-serve's routes, answers and lifetime; see server.h.
#include "apps/serve/server.h"

#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "apps/serve/metrics.h"
#include "apps/serve/page.h"
#include "apps/serve/request.h"
#include "apps/serve/worker.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "nets/explain/gradcam.h"
#include "nets/infer/inference.h"
#include "nets/model/checkpoint.h"

namespace glia::serve {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// The Grad-CAM overlay's weight, as glia-infer draws it.
constexpr double kGradCamAlpha = 0.4;

// HTTP handler threads (at least; more when the queue limit asks for it). Mostly idle: a
// keep-alive connection holds one while it waits for its next request.
constexpr int kHandlerThreads = 256;

std::string base64(const std::string& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i < bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string png_base64(const std::vector<std::uint8_t>& pixels, int height, int width,
                       int channels) {
  return base64(io::encode_png(pixels, height, width, channels));
}

// A metadata value as JSON: numbers and JSON texts (the metrics) parsed, anything else a string.
json metadata_value(const std::string& text) {
  json parsed = json::parse(text, nullptr, false);
  return parsed.is_discarded() ? json(text) : parsed;
}

// The endpoint label of a path: the served routes, anything else "other" (bounded cardinality).
std::string endpoint_label(const std::string& path) {
  for (const char* known :
       {"/", "/health", "/model/info", "/predict_multitask", "/predict", "/metrics"}) {
    if (path == known) return path;
  }
  return "other";
}

// The prediction request's start, set before routing on the thread that handles it.
thread_local Clock::time_point request_start;

// Answers quote what clients sent (file names, content types, parameters), which need not be
// UTF-8: invalid bytes become U+FFFD instead of an exception from the JSON writer.
std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string error_json(const std::string& message) {
  return dump(json{{"error", message}});
}

// The HTTP library's server with its request processing reachable, so answer_raw() can run a
// request through the same parsing, routes and handlers as a connection does, without a socket.
struct HttpServer : httplib::Server {
  using httplib::Server::process_request;
};

struct Server::Impl {
  ServeOptions options;
  std::unique_ptr<InferenceWorker> worker;
  Metrics metrics;
  json model_info;
  Clock::time_point started = Clock::now();
  HttpServer http;
  std::filesystem::path scratch;
  std::atomic<std::uint64_t> uploads{0};
  std::atomic<bool> stop_requested{false};
  std::atomic<int> in_flight{0};  // prediction requests being handled
  int port = 0;
  int size_multiple = 1;

  explicit Impl(const ServeOptions& given) : options(given) {
    nets::LoadedModel loaded = nets::load_checkpoint(options.checkpoint, Device::cpu());
    const nets::UNetConfig config = loaded.model->config();
    size_multiple = 1 << config.depth;
    const nets::ParameterCounts counts = loaded.model->parameter_counts();
    auto predictor = std::make_unique<nets::Predictor>(loaded.model, options.device);
    const nets::PredictOptions defaults = predictor->options();
    model_info = {{"model", "MultiTaskUNet"},
                  {"checkpoint", options.checkpoint.string()},
                  {"device", options.device.to_string()},
                  {"architecture", json::object()},
                  {"parameters",
                   {{"total", counts.total},
                    {"encoder", counts.encoder},
                    {"decoder", counts.decoder},
                    {"cls_head", counts.cls_head}}},
                  {"metadata", json::object()},
                  {"thresholds",
                   {{"segmentation", defaults.threshold},
                    {"classification", defaults.cls_threshold},
                    {"recommendation",
                     {{"likely", defaults.bands.likely},
                      {"unlikely", defaults.bands.unlikely},
                      {"uncertain_std", defaults.bands.uncertain_std}}}}},
                  {"serving",
                   {{"max_batch", options.max_batch},
                    {"batch_wait_ms", options.batch_wait_ms},
                    {"max_queue", options.max_queue},
                    {"max_upload_bytes", options.max_upload_bytes},
                    {"max_mc_dropout", kMaxMcDropout}}},
                  {"evaluation", nullptr}};
    for (const auto& [key, value] : config.to_metadata()) {
      model_info["architecture"][key] = metadata_value(value);
    }
    for (const auto& [key, value] : loaded.metadata) {
      if (!model_info["architecture"].contains(key)) {
        model_info["metadata"][key] = metadata_value(value);
      }
    }
    if (options.eval_results) model_info["evaluation"] = read_evaluation(*options.eval_results);
    worker = std::make_unique<InferenceWorker>(
        std::move(predictor), options.max_batch, std::chrono::milliseconds(options.batch_wait_ms),
        options.max_queue, [this](int n) { metrics.observe_batch(n); });
    scratch = std::filesystem::temp_directory_path() /
              ("glia-serve-" + std::to_string(::getpid()) + "-" +
               std::to_string(Clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(scratch);
    routes();
  }

  ~Impl() {
    worker->stop();
    std::error_code ignored;
    std::filesystem::remove_all(scratch, ignored);
  }

  // The first checkpoint of a glia-eval results.json: its name, split and metric groups.
  static json read_evaluation(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("--eval-results " + path.string() + " cannot be read");
    json results = json::parse(in, nullptr, false);
    if (results.is_discarded() || !results.contains("checkpoints") ||
        !results["checkpoints"].is_array() || results["checkpoints"].empty()) {
      throw std::runtime_error("--eval-results " + path.string() +
                               " is not a glia-eval results.json (no \"checkpoints\" list)");
    }
    const json& first = results["checkpoints"][0];
    json out = {{"file", path.string()}, {"split", results.value("split", json(nullptr))}};
    for (const char* key : {"name", "groups", "warnings"}) {
      if (first.contains(key)) out[key] = first[key];
    }
    return out;
  }

  static void send_error(httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    res.set_content(error_json(message), "application/json");
  }

  // The upload through glia-infer's own reader: written to a scratch file with the extension
  // that load_input dispatches on, read, removed.
  std::variant<nets::InputImage, HttpError> decode(const ValidRequest& valid) {
    const std::filesystem::path file =
        scratch / ("upload-" + std::to_string(uploads.fetch_add(1)) + valid.extension);
    const std::string shown = valid.filename.empty() ? "the upload" : "'" + valid.filename + "'";
    try {
      io::write_file_atomic(file, valid.bytes);
      nets::InputImage image = nets::load_input(file);
      std::filesystem::remove(file);
      if (image.height % size_multiple != 0 || image.width % size_multiple != 0) {
        return HttpError{400, shown + " is " + std::to_string(image.height) + "x" +
                                  std::to_string(image.width) +
                                  "; the model needs sides that are multiples of " +
                                  std::to_string(size_multiple)};
      }
      return image;
    } catch (const std::exception& e) {
      std::error_code ignored;
      std::filesystem::remove(file, ignored);
      std::string message = e.what();
      for (std::size_t at; (at = message.find(file.string())) != std::string::npos;) {
        message.replace(at, file.string().size(), shown);
      }
      return HttpError{400, "cannot read " + shown + ": " + message};
    }
  }

  static json classification_json(const WorkResult& r) {
    const nets::Prediction& p = r.prediction;
    return {{"predicted_class", p.predicted_class},
            {"predicted_label", p.predicted_class == nets::kTumourClass ? "tumor" : "no_tumor"},
            {"confidence", r.confidence},
            {"tumor_probability", p.tumour_probability}};
  }

  static json uncertainty_json(const WorkResult& r, const ValidRequest& v) {
    const nets::Prediction& p = r.prediction;
    if (!p.probability_mean) return nullptr;
    return {{"mc_dropout_passes", v.options.mc_dropout},
            {"mc_dropout_requested", v.mc_dropout_requested},
            {"probability_mean", *p.probability_mean},
            {"probability_std", *p.probability_std}};
  }

  json answer(Endpoint endpoint, const ValidRequest& v, const nets::InputImage& image,
              const WorkResult& r) const {
    const nets::Prediction& p = r.prediction;
    json out = {{"classification", classification_json(r)}};
    if (endpoint == Endpoint::predict_multitask) {
      json seg = {{"mask_available", p.mask_available},
                  {"tumor_area_pixels", p.tumour_pixels},
                  {"tumor_percentage", p.tumour_percent},
                  {"threshold", v.options.threshold},
                  {"cls_threshold", v.options.cls_threshold},
                  {"mask_base64", nullptr},
                  {"mask_overlay", nullptr}};
      if (p.mask_available) {
        seg["mask_base64"] = png_base64(p.mask, p.height, p.width, 1);
        seg["mask_overlay"] = png_base64(nets::mask_overlay(image, p.mask), p.height, p.width, 3);
      }
      out["segmentation"] = std::move(seg);
      out["input_image"] = png_base64(nets::grey_rgb(image), p.height, p.width, 3);
    }
    out["gradcam_overlay"] = r.cam.empty()
                                 ? json(nullptr)
                                 : json(png_base64(nets::overlay_cam(image.pixels, r.cam, p.height,
                                                                     p.width, kGradCamAlpha),
                                                   p.height, p.width, 3));
    out["recommendation"] = p.recommendation;
    out["disclaimer"] = "decision support only, not a diagnosis";
    out["uncertainty"] = uncertainty_json(r, v);
    out["image"] = {{"height", p.height}, {"width", p.width}, {"filename", v.filename}};
    out["batch_size"] = r.batch_size;
    out["model_latency_ms"] = p.latency_ms;
    return out;
  }

  void busy(httplib::Response& res) const {
    res.set_header("Retry-After", "1");
    send_error(res, 503,
               "the server is busy: " + std::to_string(options.max_queue) +
                   " requests are waiting; retry shortly");
  }

  void predict(Endpoint endpoint, const httplib::Request& req, httplib::Response& res) {
    ++in_flight;
    struct Done {
      std::atomic<int>& count;
      ~Done() { --count; }
    } done{in_flight};
    const std::string path = endpoint == Endpoint::predict ? "/predict" : "/predict_multitask";
    RawRequest raw;
    raw.endpoint = endpoint;
    raw.content_type = req.get_header_value("Content-Type");
    if (req.is_multipart_form_data()) {
      for (const auto& [name, part] : req.files) {
        raw.parts.emplace(name, UploadPart{part.filename, part.content_type, part.content});
      }
    } else {
      raw.body = req.body;
    }
    for (const auto& [key, value] : req.params) raw.query.emplace(key, value);
    auto parsed = parse_request(raw, options.max_upload_bytes);
    if (auto* error = std::get_if<HttpError>(&parsed)) {
      return send_error(res, error->status, error->message);
    }
    const ValidRequest& valid = std::get<ValidRequest>(parsed);
    // Refused before the image is decoded, so an overloaded server spends little on refusals.
    if (worker->queued() >= options.max_queue) return busy(res);
    auto decoded = decode(valid);
    if (auto* error = std::get_if<HttpError>(&decoded)) {
      return send_error(res, error->status, error->message);
    }
    const nets::InputImage& image = std::get<nets::InputImage>(decoded);
    auto future = worker->submit(image, valid.options);
    if (!future) return busy(res);
    WorkResult result;
    try {
      result = future->get();
    } catch (const std::exception& e) {
      return send_error(res, 500, std::string("prediction failed: ") + e.what());
    }
    json out = answer(endpoint, valid, image, result);
    const double ms =
        std::chrono::duration<double, std::milli>(Clock::now() - request_start).count();
    out["latency_ms"] = ms;
    metrics.observe_latency(path, ms);
    res.set_content(dump(out), "application/json");
  }

  void routes() {
    // A thread per connection, beyond the queue limit: connections that wait for a thread sit
    // unanswered in cpp-httplib's own queue, where some were dropped (about 1% at 64 keep-alive
    // clients with 44 threads); with enough threads overload is answered by 503 instead.
    http.new_task_queue =
        [n = std::max(kHandlerThreads, options.max_queue + options.max_batch + 4)] {
          return new httplib::ThreadPool(static_cast<std::size_t>(n));
        };
    // Room for the multipart framing around a file at the limit; the file itself is checked
    // exactly by parse_request.
    http.set_payload_max_length(options.max_upload_bytes + (std::size_t{64} << 10));
    // cpp-httplib's 5 s per read or write dropped about 1% of the connections under 64 clients
    // on two busy cores (a starved client thread stalls its side); a stall this long is a client
    // gone, not a slow one.
    http.set_read_timeout(30, 0);
    http.set_write_timeout(30, 0);
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      request_start = Clock::now();
      if (options.api_key.empty() || req.path == "/" || req.path == "/health") {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      if (!authorised(req.get_header_value("Authorization"), options.api_key)) {
        res.set_header("WWW-Authenticate", "Bearer");
        send_error(res, 401, "missing or wrong API key: send 'Authorization: Bearer <key>'");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 413 &&
          req.get_header_value("Content-Type").starts_with("application/x-www-form-urlencoded")) {
        // The HTTP library caps form bodies at a few kB before any handler runs.
        send_error(res, 415,
                   "a raw upload needs Content-Type image/png, image/jpeg, image/bmp or "
                   "application/octet-stream, not application/x-www-form-urlencoded");
      } else if (res.status == 413) {
        send_error(res, 413,
                   "the upload is larger than the limit of " +
                       std::to_string(options.max_upload_bytes) + " bytes");
      } else if (res.status == 404) {
        send_error(res, 404, "no endpoint " + req.method + " " + req.path);
      } else {
        send_error(res, res.status, std::string("HTTP ") + std::to_string(res.status));
      }
    });
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            send_error(res, 500, std::string("internal error: ") + e.what());
          } catch (...) {
            send_error(res, 500, "internal error");
          }
        });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      metrics.count_request(endpoint_label(req.path), res.status);
    });

    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(kPage), "text/html; charset=utf-8");
    });
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      const double uptime = std::chrono::duration<double>(Clock::now() - started).count();
      res.set_content(json{{"status", "ok"},
                           {"multitask_loaded", true},
                           {"device", options.device.to_string()},
                           {"uptime_s", uptime},
                           {"queue", worker->queued()},
                           {"in_flight", in_flight.load()}}
                          .dump(),
                      "application/json");
    });
    http.Get("/model/info", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(dump(model_info), "application/json");
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics.text(worker->queued(), options.max_queue),
                      "text/plain; version=0.0.4");
    });
    http.Post("/predict_multitask", [this](const httplib::Request& req, httplib::Response& res) {
      predict(Endpoint::predict_multitask, req, res);
    });
    http.Post("/predict", [this](const httplib::Request& req, httplib::Response& res) {
      predict(Endpoint::predict, req, res);
    });
  }
};

Server::Server(const ServeOptions& options) : impl_(std::make_unique<Impl>(options)) {}

Server::~Server() = default;

int Server::bind() {
  Impl& s = *impl_;
  if (s.options.port == 0) {
    s.port = s.http.bind_to_any_port(s.options.host);
  } else {
    s.port = s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1;
  }
  if (s.port <= 0) {
    throw std::runtime_error("cannot listen on " + s.options.host + ":" +
                             std::to_string(s.options.port) +
                             " (address in use, or not an address of this machine)");
  }
  return s.port;
}

void Server::run() {
  if (!impl_->stop_requested) impl_->http.listen_after_bind();
  // Every handler has returned: the worker has nothing left but what they no longer wait for.
  impl_->worker->stop();
}

void Server::stop() {
  impl_->stop_requested = true;
  impl_->http.stop();
}

std::string Server::answer_raw(const std::string& request) {
  // The stream reads the request from its start and appends the answer after it.
  httplib::detail::BufferStream stream;
  stream.write(request.data(), request.size());
  bool connection_closed = false;
  impl_->http.process_request(stream, true, connection_closed, [](httplib::Request&) {});
  return stream.get_buffer().substr(request.size());
}

int Server::port() const {
  return impl_->port;
}

}  // namespace glia::serve
