// glia-infer's work: reading inputs, predicting and writing the per-input files; see
// predictor.h.
#include <cctype>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <utility>

#include "engine/ops.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "io/preprocess.h"
#include "io/safetensors.h"
#include "io/slice.h"
#include "nets/predictor.h"

namespace glia::nets {
namespace {

bool is_npz(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == ".npz";
}

}  // namespace

InputImage load_input(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path)) {
    throw std::runtime_error("input " + path.string() + " does not exist or is not a file");
  }
  if (is_npz(path)) {
    io::Slice slice = io::read_slice(path);
    return {std::move(slice.image), slice.height, slice.width};
  }
  return {io::prepare_image_file(path), io::kSliceSize, io::kSliceSize};
}

void run_inference(const InferOptions& options, std::ostream& log) {
  if (options.inputs.empty()) throw std::invalid_argument("no inputs given");
  if (options.out_dir.empty()) throw std::invalid_argument("no output folder given");
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
    }
    raw = std::move(batch);
  }

  for (std::size_t i = 0; i < predictions.size(); ++i) {
    const Prediction& p = predictions[i];
    const std::string name = output_name(options.inputs[i]);
    io::write_png_gray(options.out_dir / (name + "_mask.png"), p.mask, p.height, p.width);
    const nlohmann::json report = {{"input", options.inputs[i].string()},
                                   {"checkpoint", options.checkpoint.string()},
                                   {"tumour_probability", p.tumour_probability},
                                   {"predicted_class", p.predicted_class},
                                   {"threshold", options.predict.threshold},
                                   {"tumour_pixels", p.tumour_pixels},
                                   {"tumour_percent", p.tumour_percent},
                                   {"height", p.height},
                                   {"width", p.width},
                                   {"mask", name + "_mask.png"}};
    io::write_file_atomic(options.out_dir / (name + ".json"), report.dump(2) + "\n");
    char line[256];
    std::snprintf(line, sizeof line,
                  "%s: tumour probability %.4f (class %d), %lld tumour pixels (%.2f%%)\n",
                  options.inputs[i].string().c_str(), p.tumour_probability, p.predicted_class,
                  static_cast<long long>(p.tumour_pixels), p.tumour_percent);
    log << line;
  }
  if (options.save_raw) {
    io::save_safetensors(*options.save_raw,
                         {{"seg_logits", raw.seg_logits}, {"cls_logits", raw.cls_logits}},
                         {{"checkpoint", options.checkpoint.string()},
                          {"inputs", std::to_string(options.inputs.size())}});
  }
}

}  // namespace glia::nets
