// glia-infer's work: reading inputs, predicting and writing the per-input files; see
// inference.h.
#include "nets/infer/inference.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <utility>

#include "data/prep/preprocess.h"
#include "engine/ops.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "io/slice.h"
#include "nets/explain/gradcam.h"

namespace glia::nets {
namespace {

bool is_npz(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == ".npz";
}

bool is_input_file(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == ".npz" || ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

// The grey input as RGB: overlay_cam with no weight on the colour map.
std::vector<std::uint8_t> grey_rgb(const InputImage& image) {
  const std::vector<float> none(image.pixels.size(), 0.0f);
  return overlay_cam(image.pixels, none, image.height, image.width, 0.0);
}

// input | Grad-CAM overlay (when given) | the mask blended half-way to red on the grey input (the
// input alone without a mask), side by side.
std::vector<std::uint8_t> panel(const InputImage& image, const std::vector<std::uint8_t>* cam_rgb,
                                const Prediction& p, int& panel_width) {
  const std::vector<std::uint8_t> grey = grey_rgb(image);
  std::vector<std::uint8_t> masked = grey;
  for (std::size_t j = 0; j < p.mask.size(); ++j) {
    if (!p.mask[j]) continue;
    masked[3 * j] = static_cast<std::uint8_t>((masked[3 * j] + 255 + 1) / 2);
    masked[3 * j + 1] = static_cast<std::uint8_t>(masked[3 * j + 1] / 2);
    masked[3 * j + 2] = static_cast<std::uint8_t>(masked[3 * j + 2] / 2);
  }
  std::vector<const std::vector<std::uint8_t>*> parts{&grey};
  if (cam_rgb) parts.push_back(cam_rgb);
  parts.push_back(&masked);
  const std::size_t row = static_cast<std::size_t>(image.width) * 3;
  panel_width = image.width * static_cast<int>(parts.size());
  std::vector<std::uint8_t> out;
  out.reserve(row * parts.size() * static_cast<std::size_t>(image.height));
  for (int y = 0; y < image.height; ++y) {
    for (const auto* part : parts) {
      const auto begin = part->begin() + static_cast<std::ptrdiff_t>(row * y);
      out.insert(out.end(), begin, begin + static_cast<std::ptrdiff_t>(row));
    }
  }
  return out;
}

}  // namespace

std::vector<std::filesystem::path> expand_inputs(const std::vector<std::filesystem::path>& paths) {
  std::vector<std::filesystem::path> out;
  for (const auto& path : paths) {
    if (!std::filesystem::is_directory(path)) {
      out.push_back(path);
      continue;
    }
    std::vector<std::filesystem::path> found;
    for (const auto& entry : std::filesystem::directory_iterator(path)) {
      if (entry.is_regular_file() && is_input_file(entry.path())) found.push_back(entry.path());
    }
    if (found.empty()) {
      throw std::invalid_argument("input folder " + path.string() +
                                  " holds no image files (.png .jpg .jpeg .bmp) or .npz slices");
    }
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
      return a.filename().string() < b.filename().string();
    });
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

InputImage load_input(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path)) {
    throw std::runtime_error("input " + path.string() + " does not exist or is not a file");
  }
  if (is_npz(path)) {
    io::Slice slice = io::read_slice(path);
    return {std::move(slice.image), slice.height, slice.width};
  }
  return {data::prepare_image_file(path), io::kSliceSize, io::kSliceSize};
}

void run_inference(const InferOptions& given, std::ostream& log) {
  if (given.inputs.empty()) throw std::invalid_argument("no inputs given");
  if (given.out_dir.empty()) throw std::invalid_argument("no output folder given");
  InferOptions options = given;
  options.inputs = expand_inputs(given.inputs);
  std::map<std::string, std::filesystem::path> names;
  for (const auto& input : options.inputs) {
    auto [it, fresh] = names.emplace(output_name(input), input);
    if (!fresh) {
      throw std::invalid_argument("inputs " + it->second.string() + " and " + input.string() +
                                  " would both write " + it->first + ".json");
    }
  }
  Predictor predictor =
      Predictor::from_checkpoint(options.checkpoint, options.device, options.predict);
  const int channels = predictor.model().config().in_channels;
  if (channels != 1) {
    throw std::invalid_argument(options.checkpoint.string() + ": the model takes " +
                                std::to_string(channels) +
                                " input channels; image and slice inputs have 1");
  }

  // Every input is read before anything is written, so a bad one fails the run up front.
  std::vector<InputImage> images;
  images.reserve(options.inputs.size());
  for (const auto& input : options.inputs) images.push_back(load_input(input));

  // Inputs of one size run together; sizes keep their first-seen order.
  std::vector<std::pair<int, int>> sizes;
  std::map<std::pair<int, int>, std::vector<std::size_t>> by_size;
  for (std::size_t i = 0; i < images.size(); ++i) {
    const std::pair<int, int> hw{images[i].height, images[i].width};
    if (!by_size.count(hw)) sizes.push_back(hw);
    by_size[hw].push_back(i);
  }
  if (options.save_raw && sizes.size() > 1) {
    throw std::invalid_argument(
        "--save-raw needs inputs of one size; " +
        options.inputs[by_size[sizes[1]].front()].string() + " is " +
        std::to_string(sizes[1].first) + "x" + std::to_string(sizes[1].second) + ", " +
        options.inputs.front().string() + " is " + std::to_string(sizes[0].first) + "x" +
        std::to_string(sizes[0].second));
  }

  std::filesystem::create_directories(options.out_dir);
  std::vector<Prediction> predictions(images.size());
  std::vector<std::vector<float>> cams(images.size());
  PredictionBatch raw;
  for (const auto& hw : sizes) {
    const std::vector<std::size_t>& members = by_size[hw];
    const std::size_t plane = static_cast<std::size_t>(hw.first) * hw.second;
    std::vector<float> pixels;
    pixels.reserve(members.size() * plane);
    for (std::size_t i : members) {
      pixels.insert(pixels.end(), images[i].pixels.begin(), images[i].pixels.end());
    }
    PredictionBatch batch = predictor.predict(
        from_vector(pixels, {static_cast<index_t>(members.size()), 1, hw.first, hw.second}));
    for (std::size_t k = 0; k < members.size(); ++k) {
      predictions[members[k]] = std::move(batch.predictions[k]);
      if (batch.gradcam.defined()) {
        const float* cam = batch.gradcam.data<float>() + k * plane;
        cams[members[k]].assign(cam, cam + plane);
      }
    }
    raw = std::move(batch);
  }

  for (std::size_t i = 0; i < predictions.size(); ++i) {
    const Prediction& p = predictions[i];
    const std::string name = output_name(options.inputs[i]);
    nlohmann::json report = {{"input", options.inputs[i].string()},
                             {"checkpoint", options.checkpoint.string()},
                             {"tumour_probability", p.tumour_probability},
                             {"predicted_class", p.predicted_class},
                             {"threshold", options.predict.threshold},
                             {"cls_threshold", options.predict.cls_threshold},
                             {"mask_available", p.mask_available},
                             {"tumour_pixels", nullptr},
                             {"tumour_percent", nullptr},
                             {"height", p.height},
                             {"width", p.width},
                             {"mask", nullptr},
                             {"recommendation", p.recommendation},
                             {"recommendation_note", "decision support only, not a diagnosis"},
                             {"latency_ms", p.latency_ms},
                             {"panel", name + "_panel.png"}};
    if (p.mask_available) {
      io::write_png_gray(options.out_dir / (name + "_mask.png"), p.mask, p.height, p.width);
      report["mask"] = name + "_mask.png";
      report["tumour_pixels"] = p.tumour_pixels;
      report["tumour_percent"] = p.tumour_percent;
    } else {
      // A mask left by an earlier run must not pass for this one's.
      std::filesystem::remove(options.out_dir / (name + "_mask.png"));
    }
    if (p.probability_mean) {
      report["mc_dropout"] = {{"passes", options.predict.mc_dropout},
                              {"probability_mean", *p.probability_mean},
                              {"probability_std", *p.probability_std}};
    }
    std::vector<std::uint8_t> cam_rgb;
    if (options.predict.gradcam) {
      cam_rgb = overlay_cam(images[i].pixels, cams[i], p.height, p.width, options.gradcam_alpha);
      io::write_png_rgb(options.out_dir / (name + "_gradcam.png"), cam_rgb, p.height, p.width);
      report["gradcam"] = name + "_gradcam.png";
    }
    int panel_width = 0;
    const std::vector<std::uint8_t> side_by_side =
        panel(images[i], options.predict.gradcam ? &cam_rgb : nullptr, p, panel_width);
    io::write_png_rgb(options.out_dir / (name + "_panel.png"), side_by_side, p.height, panel_width);
    io::write_file_atomic(options.out_dir / (name + ".json"), report.dump(2) + "\n");
    char line[320];
    if (p.mask_available) {
      std::snprintf(line, sizeof line,
                    "%s: tumour probability %.4f (class %d), %lld tumour pixels (%.2f%%); %s\n",
                    options.inputs[i].string().c_str(), p.tumour_probability, p.predicted_class,
                    static_cast<long long>(p.tumour_pixels), p.tumour_percent,
                    p.recommendation.c_str());
    } else {
      std::snprintf(line, sizeof line,
                    "%s: tumour probability %.4f (class %d), below %.2f: no mask; %s\n",
                    options.inputs[i].string().c_str(), p.tumour_probability, p.predicted_class,
                    options.predict.cls_threshold, p.recommendation.c_str());
    }
    log << line;
  }
  if (options.save_raw) {
    std::map<std::string, Tensor> tensors{{"seg_logits", raw.seg_logits},
                                          {"cls_logits", raw.cls_logits}};
    if (raw.gradcam.defined()) tensors.emplace("gradcam", raw.gradcam);
    if (raw.seg_variance.defined()) tensors.emplace("seg_variance", raw.seg_variance);
    io::save_safetensors(*options.save_raw, tensors,
                         {{"checkpoint", options.checkpoint.string()},
                          {"inputs", std::to_string(options.inputs.size())}});
  }
}

std::string output_name(const std::filesystem::path& input) {
  return input.stem().string();
}

}  // namespace glia::nets
