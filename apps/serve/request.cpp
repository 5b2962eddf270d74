// An upload and its query parameters -> validated bytes and options, or an HTTP error; see
// request.h.
#include "apps/serve/request.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

namespace glia::serve {
namespace {

bool starts_with(const std::string& bytes, std::string_view prefix) {
  return bytes.size() >= prefix.size() &&
         std::string_view(bytes).substr(0, prefix.size()) == prefix;
}

std::string lower(std::string text) {
  for (char& ch : text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return text;
}

// The media type without parameters ("image/png; x=y" -> "image/png").
std::string media_type(const std::string& content_type) {
  std::string type = lower(content_type.substr(0, content_type.find(';')));
  const auto not_space = [](char ch) { return !std::isspace(static_cast<unsigned char>(ch)); };
  type.erase(type.begin(), std::find_if(type.begin(), type.end(), not_space));
  type.erase(std::find_if(type.rbegin(), type.rend(), not_space).base(), type.end());
  return type;
}

// A declared type that names something other than an image or a slice archive.
bool declared_unsupported(const std::string& content_type) {
  static const std::set<std::string> accepted = {"",
                                                 "image/png",
                                                 "image/jpeg",
                                                 "image/jpg",
                                                 "image/bmp",
                                                 "image/x-ms-bmp",
                                                 "image/x-bmp",
                                                 "application/octet-stream",
                                                 "application/zip",
                                                 "application/x-zip-compressed",
                                                 "application/x-npz",
                                                 "multipart/form-data"};
  return !accepted.count(media_type(content_type));
}

std::optional<bool> parse_flag(const std::string& text) {
  const std::string t = lower(text);
  if (t == "1" || t == "true" || t == "yes") return true;
  if (t == "0" || t == "false" || t == "no") return false;
  return std::nullopt;
}

std::optional<double> parse_unit(const std::string& text) {
  double v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end || !(v >= 0.0 && v <= 1.0)) {
    return std::nullopt;
  }
  return v;
}

std::optional<int> parse_count(const std::string& text) {
  long long v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ptr != end || v < 0) return std::nullopt;
  // Out of range of long long is still a count; it is capped below anyway.
  if (ec == std::errc::result_out_of_range) return kMaxMcDropout + 1;
  if (ec != std::errc()) return std::nullopt;
  return static_cast<int>(std::min<long long>(v, kMaxMcDropout + 1));
}

HttpError bad(const std::string& message) {
  return {400, message};
}

}  // namespace

std::variant<std::string, HttpError> sniff_format(const std::string& bytes) {
  if (bytes.empty()) return bad("the upload is empty");
  if (starts_with(bytes, "\x89PNG\r\n\x1a\n")) return std::string(".png");
  if (starts_with(bytes, "\xff\xd8\xff")) return std::string(".jpg");
  if (starts_with(bytes, "BM") && bytes.size() >= 26) return std::string(".bmp");
  if (starts_with(bytes, std::string_view("PK\x03\x04", 4))) return std::string(".npz");
  struct Known {
    std::string_view magic;
    const char* name;
  };
  static const Known unsupported[] = {{"GIF87a", "GIF"},
                                      {"GIF89a", "GIF"},
                                      {std::string_view("II*\0", 4), "TIFF"},
                                      {std::string_view("MM\0*", 4), "TIFF"},
                                      {"%PDF", "PDF"},
                                      {"\x1f\x8b", "gzip (a NIfTI volume? send one slice)"},
                                      {std::string_view("\0\0\0\x0cjP", 6), "JPEG 2000"},
                                      {"DICM", "DICOM"}};
  for (const Known& k : unsupported) {
    if (starts_with(bytes, k.magic)) {
      return HttpError{415, std::string("unsupported file type ") + k.name +
                                "; send PNG, JPEG, BMP or a prepared .npz slice"};
    }
  }
  if (bytes.size() >= 12 && starts_with(bytes, "RIFF") && bytes.compare(8, 4, "WEBP") == 0) {
    return HttpError{415,
                     "unsupported file type WebP; send PNG, JPEG, BMP or a prepared .npz slice"};
  }
  if (bytes.size() >= 132 && bytes.compare(128, 4, "DICM") == 0) {
    return HttpError{415,
                     "unsupported file type DICOM; send PNG, JPEG, BMP or a prepared .npz slice"};
  }
  return bad("the upload is not an image: expected PNG, JPEG, BMP or a prepared .npz slice");
}

std::variant<ValidRequest, HttpError> parse_request(const RawRequest& request,
                                                    std::size_t max_upload_bytes) {
  if (media_type(request.content_type) == "application/x-www-form-urlencoded") {
    // The HTTP library parses such a body as form fields, so the bytes do not survive.
    return HttpError{415,
                     "a raw upload needs Content-Type image/png, image/jpeg, image/bmp or "
                     "application/octet-stream, not application/x-www-form-urlencoded "
                     "(curl --data-binary sends that one: add -H 'Content-Type: "
                     "application/octet-stream', or use -F file=@scan.png)"};
  }
  const bool multitask = request.endpoint == Endpoint::predict_multitask;
  ValidRequest out;
  out.options.gradcam = multitask;
  out.options.segment = multitask;
  out.options.batch = 1;
  static const std::set<std::string> multitask_keys = {"gradcam", "threshold", "cls_threshold",
                                                       "mc_dropout"};
  static const std::set<std::string> predict_keys = {"gradcam", "mc_dropout"};
  const auto& keys = multitask ? multitask_keys : predict_keys;
  for (auto it = request.query.begin(); it != request.query.end();
       it = request.query.upper_bound(it->first)) {
    const std::string& key = it->first;
    const std::string endpoint = multitask ? "/predict_multitask" : "/predict";
    if (!keys.count(key)) {
      return bad("unknown query parameter '" + key + "' for " + endpoint);
    }
    if (request.query.count(key) > 1) return bad("query parameter '" + key + "' given twice");
    const std::string& value = it->second;
    if (key == "gradcam") {
      const auto flag = parse_flag(value);
      if (!flag) return bad("gradcam must be 0 or 1, got '" + value + "'");
      out.options.gradcam = *flag;
    } else if (key == "threshold" || key == "cls_threshold") {
      const auto v = parse_unit(value);
      if (!v) return bad(key + " must be a number in [0, 1], got '" + value + "'");
      (key == "threshold" ? out.options.threshold : out.options.cls_threshold) = *v;
    } else {
      const auto n = parse_count(value);
      if (!n) return bad("mc_dropout must be an integer >= 0, got '" + value + "'");
      out.mc_dropout_requested = *n;
      out.options.mc_dropout = std::min(*n, kMaxMcDropout);
    }
  }

  const std::string* bytes = &request.body;
  std::string declared = request.content_type;
  const bool multipart = media_type(request.content_type) == "multipart/form-data";
  if (multipart) {
    const auto count = request.parts.count("file");
    if (count == 0) return bad("no multipart field 'file' in the request");
    if (count > 1) return bad("multipart field 'file' given twice; send one image per request");
    const UploadPart& part = request.parts.find("file")->second;
    bytes = &part.content;
    declared = part.content_type;
    out.filename = part.filename;
  }
  if (bytes->empty()) {
    return bad(multipart ? "multipart field 'file' is empty"
                         : "no image: send it as multipart field 'file' or as the request body");
  }
  if (bytes->size() > max_upload_bytes) {
    return HttpError{413, "the upload has " + std::to_string(bytes->size()) +
                              " bytes; the limit is " + std::to_string(max_upload_bytes)};
  }
  auto format = sniff_format(*bytes);
  if (auto* error = std::get_if<HttpError>(&format)) {
    // A declared type other than an image names the problem better than the bytes do.
    if (error->status == 400 && declared_unsupported(declared)) {
      return HttpError{415, "unsupported content type '" + media_type(declared) +
                                "'; send PNG, JPEG, BMP or a prepared .npz slice"};
    }
    return *error;
  }
  out.extension = std::get<std::string>(format);
  out.bytes = *bytes;
  return out;
}

bool authorised(const std::string& authorization_header, const std::string& api_key) {
  static constexpr std::string_view kBearer = "Bearer ";
  if (api_key.empty() || !authorization_header.starts_with(kBearer)) return false;
  const std::string_view given = std::string_view(authorization_header).substr(kBearer.size());
  // Constant time in the key's content: every byte is compared whatever the first difference.
  unsigned diff = given.size() == api_key.size() ? 0u : 1u;
  for (std::size_t i = 0; i < api_key.size(); ++i) {
    diff |= static_cast<unsigned char>(api_key[i]) ^
            static_cast<unsigned char>(i < given.size() ? given[i] : 0);
  }
  return diff == 0;
}

}  // namespace glia::serve
