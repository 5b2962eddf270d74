// glia-serve's API on an ephemeral loopback port, with the fitted fixture model
// (tests/apps/serve_fixture.h): /health and /model/info schemas (parameter counts from the model,
// metadata, --eval-results), /predict_multitask against glia-infer on the same file (probability,
// mask pixels and the mask itself equal), the conditional mask on both sides of cls_threshold,
// /predict equal to the multi-task classification, batched answers equal to single ones, every
// error status (400 bad input and parameters, 401, 404, 413, 415, 503 with Retry-After), clients
// that disconnect, /metrics, graceful stop with a request in flight, and the binary's SIGTERM exit
// status. The request validation is also tested alone (apps/serve/request.h).
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "apps/serve/request.h"
#include "apps/serve/server.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "io/slice.h"
#include "nets/infer/inference.h"
#include "nets/model/checkpoint.h"
#include "tests/apps/serve_fixture.h"

namespace glia::serve {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kInfer = GLIA_INFER_BIN;
const std::string kServe = GLIA_SERVE_BIN;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string unbase64(const std::string& text) {
  static const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned v = 0;
  int bits = 0;
  for (char ch : text) {
    if (ch == '=') break;
    const auto at = alphabet.find(ch);
    if (at == std::string::npos) throw std::runtime_error("not base64");
    v = (v << 6) | static_cast<unsigned>(at);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((v >> bits) & 0xff);
    }
  }
  return out;
}

// A server on an ephemeral loopback port, running on a thread of the test.
class RunningServer {
 public:
  explicit RunningServer(ServeOptions options) : server_(with_any_port(std::move(options))) {
    port_ = server_.bind();
    thread_ = std::thread([this] {
      server_.run();
      done_ = true;
    });
  }
  ~RunningServer() { stop(); }
  // stop() may land before the accept loop starts; repeat it until run() returns.
  void stop() {
    while (!done_) {
      server_.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (thread_.joinable()) thread_.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }
  int port() const { return port_; }

 private:
  static ServeOptions with_any_port(ServeOptions o) {
    o.port = 0;
    return o;
  }
  Server server_;
  int port_ = 0;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("glia_serve_" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fixture_ = new testing::ServeFixture(testing::write_serve_fixture(*dir_ / "fixture"));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete fixture_;
    delete dir_;
  }
  static ServeOptions options() {
    ServeOptions o;
    o.checkpoint = fixture_->checkpoint;
    return o;
  }
  static httplib::Result upload(httplib::Client& c, const std::string& path, const fs::path& file,
                                const httplib::Headers& headers = {}) {
    return c.Post(path.c_str(), headers,
                  httplib::MultipartFormDataItems{
                      {"file", read_bytes(file), file.filename().string(), "image/png"}});
  }
  static json body(const httplib::Result& r) { return json::parse(r->body); }
  // The parts of an answer that do not depend on timing or on the batch.
  static json stable(json answer) {
    for (const char* key : {"latency_ms", "model_latency_ms", "batch_size"}) answer.erase(key);
    return answer;
  }

  static fs::path* dir_;
  static testing::ServeFixture* fixture_;
};
fs::path* ServeTest::dir_ = nullptr;
testing::ServeFixture* ServeTest::fixture_ = nullptr;

TEST_F(ServeTest, HealthAndModelInfo) {
  const fs::path eval = *dir_ / "results.json";
  io::write_file_atomic(eval,
                        R"({"split": "test", "checkpoints": [{"name": "best", "groups": {"overall":
      {"classification": {"accuracy": 0.875}}}, "patients": [1, 2, 3]}]})");
  ServeOptions o = options();
  o.eval_results = eval;
  RunningServer s(o);
  auto c = s.client();
  const auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  const json h = body(health);
  EXPECT_EQ(h["status"], "ok");
  EXPECT_EQ(h["multitask_loaded"], true);
  EXPECT_EQ(h["device"], "cpu");
  EXPECT_GE(h["uptime_s"].get<double>(), 0.0);
  EXPECT_EQ(h["queue"], 0);
  EXPECT_EQ(h["in_flight"], 0);

  const auto info = c.Get("/model/info");
  ASSERT_TRUE(info);
  const json m = body(info);
  const nets::LoadedModel loaded = nets::load_checkpoint(fixture_->checkpoint);
  const nets::ParameterCounts counts = loaded.model->parameter_counts();
  EXPECT_EQ(m["parameters"]["total"], counts.total);
  EXPECT_EQ(m["parameters"]["encoder"], counts.encoder);
  EXPECT_EQ(m["parameters"]["decoder"], counts.decoder);
  EXPECT_EQ(m["parameters"]["cls_head"], counts.cls_head);
  EXPECT_EQ(m["architecture"]["base_filters"], 4);
  EXPECT_EQ(m["architecture"]["depth"], 2);
  EXPECT_EQ(m["metadata"]["stage"], "fixture");
  EXPECT_EQ(m["thresholds"]["classification"], 0.3);
  EXPECT_EQ(m["thresholds"]["segmentation"], 0.5);
  EXPECT_EQ(m["evaluation"]["groups"]["overall"]["classification"]["accuracy"], 0.875);
  EXPECT_EQ(m["evaluation"]["split"], "test");
  EXPECT_FALSE(m["evaluation"].contains("patients"));

  const auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("/predict_multitask"), std::string::npos);
  EXPECT_NE(page->body.find("not a diagnosis"), std::string::npos);
  // Self-contained: nothing is fetched from another host.
  EXPECT_EQ(page->body.find("http://"), std::string::npos);
  EXPECT_EQ(page->body.find("https://"), std::string::npos);
}

TEST_F(ServeTest, MultitaskAnswerEqualsGliaInferOnTheSameFile) {
  const fs::path out = *dir_ / "infer";
  ASSERT_EQ(std::system((kInfer + " --checkpoint " + fixture_->checkpoint.string() + " --input " +
                         fixture_->tumour.string() + " " + fixture_->no_tumour.string() +
                         " --out " + out.string() + " --gradcam > /dev/null")
                            .c_str()),
            0);
  RunningServer s(options());
  auto c = s.client();
  for (const fs::path& file : {fixture_->tumour, fixture_->no_tumour}) {
    SCOPED_TRACE(file.string());
    const auto r = upload(c, "/predict_multitask", file);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json a = body(r);
    std::ifstream in(out / (file.stem().string() + ".json"));
    const json want = json::parse(in);
    const json& cls = a["classification"];
    EXPECT_EQ(cls["tumor_probability"].get<double>(), want["tumour_probability"].get<double>());
    EXPECT_EQ(cls["predicted_class"], want["predicted_class"]);
    EXPECT_EQ(cls["predicted_label"], want["predicted_class"] == 1 ? "tumor" : "no_tumor");
    const double p = cls["tumor_probability"];
    // The predicted class's softmax: p itself for a tumour, 1 - p up to rounding otherwise.
    EXPECT_NEAR(cls["confidence"].get<double>(), want["predicted_class"] == 1 ? p : 1.0 - p, 1e-12);
    EXPECT_EQ(a["recommendation"], want["recommendation"]);
    const json& seg = a["segmentation"];
    EXPECT_EQ(seg["mask_available"], want["mask_available"]);
    ASSERT_TRUE(a["gradcam_overlay"].is_string());
    EXPECT_TRUE(a["uncertainty"].is_null());
    EXPECT_GT(a["latency_ms"].get<double>(), 0.0);
    // The overlay decodes to a 256 x 256 PNG, as glia-infer's _gradcam.png.
    io::write_file_atomic(*dir_ / "cam.png", unbase64(a["gradcam_overlay"]));
    EXPECT_EQ(io::read_gray(*dir_ / "cam.png").pixels,
              io::read_gray(out / (file.stem().string() + "_gradcam.png")).pixels);
    if (want["mask_available"]) {
      EXPECT_EQ(seg["tumor_area_pixels"], want["tumour_pixels"]);
      EXPECT_EQ(seg["tumor_percentage"].get<double>(), want["tumour_percent"].get<double>());
      io::write_file_atomic(*dir_ / "mask.png", unbase64(seg["mask_base64"]));
      EXPECT_EQ(io::read_gray(*dir_ / "mask.png").pixels,
                io::read_gray(out / (file.stem().string() + "_mask.png")).pixels);
    } else {
      EXPECT_TRUE(seg["mask_base64"].is_null());
      EXPECT_EQ(seg["tumor_area_pixels"], 0);
    }
  }
}

TEST_F(ServeTest, MaskOnlyAtOrAboveTheClassificationThreshold) {
  RunningServer s(options());
  auto c = s.client();
  const json t = body(upload(c, "/predict_multitask", fixture_->tumour));
  const json n = body(upload(c, "/predict_multitask", fixture_->no_tumour));
  const double pt = t["classification"]["tumor_probability"];
  const double pn = n["classification"]["tumor_probability"];
  // The fixture's head puts the two scans on either side of the default threshold 0.3.
  ASSERT_GE(pt, 0.9);
  ASSERT_LT(pn, 0.1);
  EXPECT_TRUE(t["segmentation"]["mask_available"]);
  EXPECT_GT(t["segmentation"]["tumor_area_pixels"].get<int>(), 0);
  EXPECT_TRUE(t["segmentation"]["mask_base64"].is_string());
  EXPECT_TRUE(t["segmentation"]["mask_overlay"].is_string());
  EXPECT_EQ(t["classification"]["predicted_label"], "tumor");
  EXPECT_FALSE(n["segmentation"]["mask_available"]);
  EXPECT_TRUE(n["segmentation"]["mask_base64"].is_null());
  EXPECT_EQ(n["classification"]["predicted_label"], "no_tumor");
  EXPECT_TRUE(n["gradcam_overlay"].is_string());  // the Grad-CAM is shown without a mask too
  EXPECT_EQ(n["recommendation"], nets::recommendation(pn));

  // The threshold is the request's: just above and at the probability.
  const std::string above = "/predict_multitask?cls_threshold=" + std::to_string(pt + 0.01);
  EXPECT_FALSE(body(upload(c, above, fixture_->tumour))["segmentation"]["mask_available"]);
  const json at =
      body(upload(c, "/predict_multitask?cls_threshold=0&gradcam=0", fixture_->no_tumour));
  EXPECT_TRUE(at["segmentation"]["mask_available"]);
  EXPECT_TRUE(at["gradcam_overlay"].is_null());
  // MC dropout: capped, and reported.
  const json mc = body(upload(c, "/predict_multitask?mc_dropout=1000&gradcam=0", fixture_->tumour));
  EXPECT_EQ(mc["uncertainty"]["mc_dropout_passes"], kMaxMcDropout);
  EXPECT_EQ(mc["uncertainty"]["mc_dropout_requested"], kMaxMcDropout + 1);
  EXPECT_GE(mc["uncertainty"]["probability_std"].get<double>(), 0.0);
}

TEST_F(ServeTest, PredictIsTheMultitaskClassification) {
  RunningServer s(options());
  auto c = s.client();
  for (const fs::path& file : {fixture_->tumour, fixture_->no_tumour}) {
    const json full = body(upload(c, "/predict_multitask", file));
    const auto r = upload(c, "/predict", file);
    ASSERT_EQ(r->status, 200) << r->body;
    const json a = body(r);
    EXPECT_EQ(a["classification"], full["classification"]);
    EXPECT_EQ(a["recommendation"], full["recommendation"]);
    EXPECT_FALSE(a.contains("segmentation"));
    EXPECT_TRUE(a["gradcam_overlay"].is_null());
  }
  // The raw body works as well as multipart.
  const auto raw = c.Post("/predict", read_bytes(fixture_->tumour), "image/png");
  ASSERT_EQ(raw->status, 200) << raw->body;
  EXPECT_EQ(body(raw)["classification"],
            body(upload(c, "/predict", fixture_->tumour))["classification"]);
  // Mask options belong to /predict_multitask.
  EXPECT_EQ(upload(c, "/predict?threshold=0.5", fixture_->tumour)->status, 400);
}

TEST_F(ServeTest, BatchedAnswersEqualSingleAnswers) {
  std::vector<fs::path> files;
  for (int i = 0; i < 6; ++i) files.push_back(i % 2 ? fixture_->tumour : fixture_->no_tumour);
  std::vector<json> single;
  {
    RunningServer s(options());
    auto c = s.client();
    for (const auto& f : files) {
      const json a = body(upload(c, "/predict_multitask", f));
      EXPECT_EQ(a["batch_size"], 1);
      single.push_back(stable(a));
    }
  }
  ServeOptions o = options();
  o.max_batch = 8;
  o.batch_wait_ms = 1000;  // long enough for all six to arrive on a busy machine
  RunningServer s(o);
  std::vector<std::future<json>> answers;
  for (const auto& f : files) {
    answers.push_back(std::async(std::launch::async, [&s, f] {
      auto c = s.client();
      return body(upload(c, "/predict_multitask", f));
    }));
  }
  int largest = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const json a = answers[i].get();
    largest = std::max(largest, a["batch_size"].get<int>());
    EXPECT_EQ(stable(a), single[i]) << "request " << i;
  }
  EXPECT_GT(largest, 1) << "no request was batched with another";
}

TEST_F(ServeTest, BadRequestsGetJsonErrors) {
  ServeOptions o = options();
  o.max_upload_bytes = 200000;
  RunningServer s(o);
  auto c = s.client();
  const auto expect_error = [](const httplib::Result& r, int status, const std::string& words) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
    const json e = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(e.is_object() && e.contains("error")) << r->body;
    EXPECT_NE(e["error"].get<std::string>().find(words), std::string::npos) << e["error"];
  };
  expect_error(c.Post("/predict_multitask", "hello, not an image", "application/octet-stream"), 400,
               "not an image");
  std::string truncated = read_bytes(fixture_->tumour);
  truncated.resize(truncated.size() / 2);
  expect_error(c.Post("/predict_multitask", truncated, "image/png"), 400, "cannot read the upload");
  expect_error(c.Post("/predict_multitask", "", "image/png"), 400, "no image");
  expect_error(
      c.Post("/predict_multitask", httplib::MultipartFormDataItems{{"image", "x", "a", ""}}), 400,
      "'file'");
  expect_error(c.Post("/predict_multitask", "GIF89a" + std::string(100, '\0'), "image/gif"), 415,
               "GIF");
  expect_error(c.Post("/predict_multitask", "plain words", "text/plain"), 415, "text/plain");
  expect_error(c.Post("/predict_multitask", read_bytes(fixture_->tumour),
                      "application/x-www-form-urlencoded"),
               415, "Content-Type");
  expect_error(c.Post("/predict_multitask", std::string(300000, 'x'), "image/png"), 413, "limit");
  expect_error(upload(c, "/predict_multitask?threshold=2", fixture_->tumour), 400, "threshold");
  expect_error(upload(c, "/predict_multitask?mc_dropout=-1", fixture_->tumour), 400, "mc_dropout");
  expect_error(upload(c, "/predict_multitask?gradcam=maybe", fixture_->tumour), 400, "gradcam");
  expect_error(upload(c, "/predict_multitask?colour=red", fixture_->tumour), 400, "colour");
  expect_error(c.Get("/nowhere"), 404, "/nowhere");
  // A slice whose sides the model cannot halve twice.
  io::Slice odd;
  odd.height = 30;
  odd.width = 30;
  odd.image.assign(900, 0.5f);
  io::write_slice(*dir_ / "odd.npz", odd);
  expect_error(
      c.Post("/predict_multitask", read_bytes(*dir_ / "odd.npz"), "application/octet-stream"), 400,
      "multiples of 4");
  // Still serving.
  EXPECT_EQ(upload(c, "/predict_multitask", fixture_->tumour)->status, 200);
}

TEST_F(ServeTest, FullQueueAnswers503WithRetryAfter) {
  ServeOptions o = options();
  o.max_queue = 1;
  o.max_batch = 1;
  o.batch_wait_ms = 0;
  RunningServer s(o);
  std::vector<std::future<std::pair<int, std::string>>> answers;
  for (int i = 0; i < 6; ++i) {
    answers.push_back(std::async(std::launch::async, [&s] {
      auto c = s.client();
      const auto r = upload(c, "/predict_multitask?mc_dropout=16", fixture_->tumour);
      return std::make_pair(r ? r->status : -1, r ? r->get_header_value("Retry-After") : "");
    }));
  }
  int ok = 0, busy = 0;
  for (auto& a : answers) {
    const auto [status, retry] = a.get();
    if (status == 200) ++ok;
    if (status == 503) {
      ++busy;
      EXPECT_EQ(retry, "1");
    }
  }
  EXPECT_EQ(ok + busy, 6) << "only 200 and 503 are expected";
  EXPECT_GE(ok, 1);
  EXPECT_GE(busy, 1) << "six concurrent slow requests never filled a queue of one";
}

TEST_F(ServeTest, ApiKeyGuardsEverythingButHealthAndThePage) {
  ServeOptions o = options();
  o.api_key = "s3cret-key";
  RunningServer s(o);
  auto c = s.client();
  EXPECT_EQ(c.Get("/health")->status, 200);
  EXPECT_EQ(c.Get("/")->status, 200);
  EXPECT_EQ(c.Get("/model/info")->status, 401);
  EXPECT_EQ(c.Get("/metrics")->status, 401);
  const auto none = upload(c, "/predict_multitask", fixture_->tumour);
  EXPECT_EQ(none->status, 401);
  EXPECT_TRUE(json::parse(none->body).contains("error"));
  EXPECT_EQ(
      upload(c, "/predict", fixture_->tumour, {{"Authorization", "Bearer s3cret-kez"}})->status,
      401);
  EXPECT_EQ(upload(c, "/predict", fixture_->tumour, {{"Authorization", "Bearer s3cret"}})->status,
            401);
  EXPECT_EQ(
      upload(c, "/predict", fixture_->tumour, {{"Authorization", "Bearer s3cret-key"}})->status,
      200);
  EXPECT_EQ(c.Get("/model/info", {{"Authorization", "Bearer s3cret-key"}})->status, 200);
}

// Opens a TCP connection to the server, sends `text` and closes it without reading.
void send_and_hang_up(int port, const std::string& text) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::send(fd, text.data(), text.size(), MSG_NOSIGNAL), static_cast<ssize_t>(text.size()));
  ::close(fd);
}

TEST_F(ServeTest, ClientsThatHangUpCostNothing) {
  RunningServer s(options());
  const std::string png = read_bytes(fixture_->tumour);
  // Mid-upload: the body is cut short.
  send_and_hang_up(s.port(),
                   "POST /predict_multitask HTTP/1.1\r\nHost: x\r\nContent-Type: "
                   "image/png\r\nContent-Length: 100000\r\n\r\n" +
                       png.substr(0, 500));
  // After the whole request, before the answer.
  send_and_hang_up(s.port(),
                   "POST /predict_multitask HTTP/1.1\r\nHost: x\r\nContent-Type: "
                   "image/png\r\nContent-Length: " +
                       std::to_string(png.size()) + "\r\n\r\n" + png);
  auto c = s.client();
  const auto r = upload(c, "/predict_multitask", fixture_->tumour);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(body(c.Get("/health"))["status"], "ok");
}

TEST_F(ServeTest, MetricsCountRequestsLatencyAndBatches) {
  RunningServer s(options());
  auto c = s.client();
  upload(c, "/predict_multitask", fixture_->tumour);
  upload(c, "/predict_multitask", fixture_->no_tumour);
  c.Post("/predict", "junk", "application/octet-stream");
  // A request is counted once its answer is written, which the client may see first: poll.
  std::string m;
  for (int i = 0; i < 500; ++i) {
    const auto r = c.Get("/metrics");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    m = r->body;
    if (m.find("glia_requests_total{endpoint=\"/predict\",status=\"400\"} 1") !=
        std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const std::string line :
       {"glia_requests_total{endpoint=\"/predict_multitask\",status=\"200\"} 2",
        "glia_requests_total{endpoint=\"/predict\",status=\"400\"} 1",
        "glia_request_latency_ms_count{endpoint=\"/predict_multitask\"} 2",
        "glia_request_latency_ms_bucket{endpoint=\"/predict_multitask\",le=\"+Inf\"} 2",
        "glia_batch_size_bucket{le=\"1\"} 2", "glia_batch_size_count 2", "glia_queue_depth 0",
        "# TYPE glia_request_latency_ms histogram"}) {
    EXPECT_NE(m.find(line + "\n"), std::string::npos) << line << "\n" << m;
  }
}

// Polls /health until a prediction request is being handled.
void wait_until_in_flight(int port) {
  httplib::Client c("127.0.0.1", port);
  for (int i = 0; i < 3000; ++i) {
    const auto r = c.Get("/health");
    if (r && json::parse(r->body)["in_flight"].get<int>() > 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL() << "no request reached the server within 30 s";
}

TEST_F(ServeTest, StopFinishesTheRequestInFlight) {
  auto s = std::make_unique<RunningServer>(options());
  const int port = s->port();
  auto in_flight = std::async(std::launch::async, [&s] {
    auto c = s->client();
    const auto r = upload(c, "/predict_multitask?mc_dropout=32", fixture_->tumour);
    return r ? r->status : -1;
  });
  wait_until_in_flight(port);
  s->stop();
  EXPECT_EQ(in_flight.get(), 200);
  httplib::Client late("127.0.0.1", port);
  EXPECT_FALSE(late.Get("/health")) << "the server still accepts after stop()";
}

TEST_F(ServeTest, SigtermExitsZeroAfterAnsweringTheRequestInFlight) {
  const fs::path log = *dir_ / "serve.log";
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::setenv("OMP_WAIT_POLICY", "passive", 0);  // as scripts/serve runs it
    ::execl(kServe.c_str(), kServe.c_str(), "--checkpoint", fixture_->checkpoint.c_str(), "--port",
            "0", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  for (char ch; ::read(out[0], &ch, 1) == 1 && ch != '\n';) line += ch;
  const auto colon = line.rfind(':');
  ASSERT_NE(colon, std::string::npos) << line;
  const int port = std::stoi(line.substr(colon + 1));
  auto in_flight = std::async(std::launch::async, [port] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    const auto r = upload(c, "/predict_multitask?mc_dropout=32", fixture_->tumour);
    return r ? r->status : -1;
  });
  wait_until_in_flight(port);
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  EXPECT_EQ(in_flight.get(), 200);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::close(out[0]);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// The request validation alone, without sockets.
TEST(ServeRequestTest, FormatsByTheirLeadingBytes) {
  const auto format = [](const std::string& bytes) {
    const auto r = sniff_format(bytes);
    if (const auto* e = std::get_if<HttpError>(&r)) return std::to_string(e->status);
    return std::get<std::string>(r);
  };
  EXPECT_EQ(format("\x89PNG\r\n\x1a\nrest"), ".png");
  EXPECT_EQ(format("\xff\xd8\xff\xe0rest"), ".jpg");
  EXPECT_EQ(format("BM" + std::string(40, '\0')), ".bmp");
  EXPECT_EQ(format(std::string("PK\x03\x04", 4) + "zip"), ".npz");
  EXPECT_EQ(format("GIF89a..."), "415");
  EXPECT_EQ(format(std::string("II*\0", 4) + "tiff"), "415");
  EXPECT_EQ(format("%PDF-1.4"), "415");
  EXPECT_EQ(format("\x1f\x8b\x08"), "415");
  EXPECT_EQ(format("hello"), "400");
  EXPECT_EQ(format(""), "400");
  EXPECT_EQ(format("BM"), "400");
}

TEST(ServeRequestTest, ParametersAndUploads) {
  RawRequest r;
  r.content_type = "image/png";
  r.body = "\x89PNG\r\n\x1a\n....";
  auto parse = [&](std::size_t limit = 1000) { return parse_request(r, limit); };
  auto ok = std::get<ValidRequest>(parse());
  EXPECT_EQ(ok.extension, ".png");
  EXPECT_TRUE(ok.options.gradcam);
  EXPECT_TRUE(ok.options.segment);
  EXPECT_EQ(ok.options.threshold, 0.5);
  EXPECT_EQ(ok.options.cls_threshold, 0.3);
  EXPECT_EQ(ok.options.mc_dropout, 0);
  r.query = {{"gradcam", "false"},
             {"threshold", "0.25"},
             {"cls_threshold", "1"},
             {"mc_dropout", "99999999999999999999999"}};
  ok = std::get<ValidRequest>(parse());
  EXPECT_FALSE(ok.options.gradcam);
  EXPECT_EQ(ok.options.threshold, 0.25);
  EXPECT_EQ(ok.options.cls_threshold, 1.0);
  EXPECT_EQ(ok.options.mc_dropout, kMaxMcDropout);
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"threshold", "nan"},
                                                        {"threshold", "0.5x"},
                                                        {"cls_threshold", "-0.1"},
                                                        {"mc_dropout", "2.5"},
                                                        {"gradcam", ""},
                                                        {"other", "1"}}) {
    r.query = {{key, value}};
    const auto result = parse();
    const auto* e = std::get_if<HttpError>(&result);
    ASSERT_NE(e, nullptr) << key << "=" << value;
    EXPECT_EQ(e->status, 400);
    EXPECT_NE(e->message.find(key), std::string::npos) << e->message;
  }
  r.query = {{"threshold", "0.5"}, {"threshold", "0.6"}};
  EXPECT_NE(std::get<HttpError>(parse()).message.find("twice"), std::string::npos);
  r.query.clear();
  EXPECT_EQ(std::get<HttpError>(parse(5)).status, 413);
  r.endpoint = Endpoint::predict;
  ok = std::get<ValidRequest>(parse());
  EXPECT_FALSE(ok.options.segment);
  EXPECT_FALSE(ok.options.gradcam);
  r.query = {{"cls_threshold", "0.5"}};
  EXPECT_EQ(std::get<HttpError>(parse()).status, 400);
  // Multipart: the field 'file' and its own declared type.
  r = RawRequest{};
  r.content_type = "multipart/form-data; boundary=x";
  r.parts.emplace("file", UploadPart{"scan.txt", "text/plain", "just text"});
  EXPECT_EQ(std::get<HttpError>(parse()).status, 415);
  r.parts.clear();
  r.parts.emplace("file", UploadPart{"s.npz", "", std::string("PK\x03\x04", 4) + "z"});
  ok = std::get<ValidRequest>(parse());
  EXPECT_EQ(ok.extension, ".npz");
  EXPECT_EQ(ok.filename, "s.npz");
  r.parts.emplace("file", UploadPart{"t.npz", "", "PK"});
  EXPECT_NE(std::get<HttpError>(parse()).message.find("twice"), std::string::npos);
}

TEST_F(ServeTest, RawRequestsGetTheAnswersOfAConnection) {
  RunningServer s(options());
  Server direct(options());
  const std::string png = read_bytes(fixture_->tumour);
  const std::string raw =
      "POST /predict?gradcam=0 HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: image/png\r\nContent-Length: " +
      std::to_string(png.size()) + "\r\n\r\n" + png;
  const std::string answer = direct.answer_raw(raw);
  ASSERT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer.substr(0, 200);
  const std::size_t head_end = answer.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  auto c = s.client();
  const auto over_socket = c.Post("/predict?gradcam=0", png, "image/png");
  ASSERT_TRUE(over_socket);
  EXPECT_EQ(stable(json::parse(answer.substr(head_end + 4))), stable(body(over_socket)));
  EXPECT_TRUE(direct.answer_raw("GET /nowhere HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
  EXPECT_TRUE(direct.answer_raw("not http at all").starts_with("HTTP/1.1 400"));
  // What a client sends is quoted in errors; bytes that are not UTF-8 must not break the JSON.
  const std::string odd = direct.answer_raw(
      "POST /predict HTTP/1.1\r\nAuthorization: x\r\nContent-Type: multipart/\x98orm-data; "
      "boundary=b\r\nContent-Length: 1\r\n\r\nx");
  EXPECT_TRUE(odd.starts_with("HTTP/1.1 4")) << odd.substr(0, 200);
  const json odd_body = json::parse(odd.substr(odd.find("\r\n\r\n") + 4));
  EXPECT_TRUE(odd_body.contains("error"));
}

TEST(ServeRequestTest, BearerKeyMustMatchExactly) {
  EXPECT_TRUE(authorised("Bearer abc", "abc"));
  EXPECT_FALSE(authorised("Bearer abd", "abc"));
  EXPECT_FALSE(authorised("Bearer ab", "abc"));
  EXPECT_FALSE(authorised("Bearer abcd", "abc"));
  EXPECT_FALSE(authorised("abc", "abc"));
  EXPECT_FALSE(authorised("Bearer ", ""));
}

}  // namespace
}  // namespace glia::serve
