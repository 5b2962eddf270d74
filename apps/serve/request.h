// glia-serve's request handling without sockets: an upload (a multipart field "file" or the raw
// body) and its query parameters become validated image bytes with the prediction options, or an
// HTTP error (status and a message naming the problem). Pure functions of their arguments, so a
// fuzzer can drive them; the server (apps/serve/server.h) decodes the bytes with glia-infer's own
// load_input. Statuses: 400 missing, empty or unrecognised upload and bad parameters, 413 larger
// than the limit, 415 a type that is declared or recognised but not served (GIF, TIFF, PDF, ...)
// and a raw body sent as a form (application/x-www-form-urlencoded, whose bytes the HTTP library
// does not keep).
// Tested in tests/apps/serve_test.cpp.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <variant>

#include "nets/infer/predictor.h"

namespace glia::serve {

// The most MC-dropout passes one request gets; more are capped to it.
inline constexpr int kMaxMcDropout = 32;

enum class Endpoint { predict_multitask, predict };

// One multipart part, as the HTTP library hands it over.
struct UploadPart {
  std::string filename;
  std::string content_type;
  std::string content;
};

// The parts of a request that decide what is predicted.
struct RawRequest {
  Endpoint endpoint = Endpoint::predict_multitask;
  std::string content_type;  // of the request
  std::string body;          // the raw body (empty for multipart, whose parts are in `parts`)
  std::multimap<std::string, UploadPart> parts;
  std::multimap<std::string, std::string> query;
};

struct HttpError {
  int status = 400;
  std::string message;
};

// What the model runs on: the bytes, the file extension that load_input dispatches on (".png",
// ".jpg", ".bmp", ".npz"), the options, and the MC passes asked for before the cap.
struct ValidRequest {
  std::string bytes;
  std::string extension;
  std::string filename;  // the part's file name; empty for a raw body
  nets::PredictOptions options;
  int mc_dropout_requested = 0;
};

// The format of an upload by its leading bytes: ".png", ".jpg", ".bmp" or ".npz" (a zip
// archive); an HttpError 415 for a recognised format that is not served, 400 for anything else.
std::variant<std::string, HttpError> sniff_format(const std::string& bytes);

// Validates `request` against `max_upload_bytes`. Query parameters: gradcam (0/1/true/false,
// default 1 on /predict_multitask, 0 on /predict), threshold (default 0.5) and cls_threshold
// (default 0.3) in [0, 1], mc_dropout (an integer >= 0, capped at kMaxMcDropout); /predict takes
// mc_dropout and gradcam only. An unknown or repeated parameter is an error naming it.
std::variant<ValidRequest, HttpError> parse_request(const RawRequest& request,
                                                    std::size_t max_upload_bytes);

// The Authorization header's check: "Bearer <key>" with the key compared in constant time.
bool authorised(const std::string& authorization_header, const std::string& api_key);

}  // namespace glia::serve
