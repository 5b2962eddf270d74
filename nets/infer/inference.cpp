// glia-infer's work: reading inputs, predicting and writing the per-input files; see
// inference.h.
#include "nets/infer/inference.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <utility>

#include "data/prep/preprocess.h"
#include "engine/ops.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "io/image_ops.h"
#include "io/nifti.h"
#include "io/safetensors.h"
#include "io/slice.h"
#include "nets/explain/gradcam.h"

namespace glia::nets {
namespace {

std::string lower_name(const std::filesystem::path& path) {
  std::string name = path.filename().string();
  for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return name;
}

bool is_volume(const std::filesystem::path& path) {
  const std::string name = lower_name(path);
  return name.ends_with(".nii") || name.ends_with(".nii.gz");
}

bool is_npz(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == ".npz";
}

bool is_input_file(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == ".npz" || ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" ||
         is_volume(path);
}

// input | Grad-CAM overlay (when given) | the mask blended half-way to red on the grey input (the
// input alone without a mask), side by side.
std::vector<std::uint8_t> panel(const InputImage& image, const std::vector<std::uint8_t>* cam_rgb,
                                const Prediction& p, int& panel_width) {
  const std::vector<std::uint8_t> grey = grey_rgb(image);
  const std::vector<std::uint8_t> masked = mask_overlay(image, p.mask);
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

// The output names of the inputs must differ: two inputs would write one <name>.json.
void check_unique_names(const std::vector<std::filesystem::path>& inputs) {
  std::map<std::string, std::filesystem::path> names;
  for (const auto& input : inputs) {
    auto [it, fresh] = names.emplace(output_name(input), input);
    if (!fresh) {
      throw std::invalid_argument("inputs " + it->second.string() + " and " + input.string() +
                                  " would both write " + it->first + ".json");
    }
  }
}

// Inputs of one size run together; sizes keep their first-seen order.
struct SizeGroups {
  std::vector<std::pair<int, int>> sizes;
  std::map<std::pair<int, int>, std::vector<std::size_t>> members;
};

SizeGroups group_by_size(const std::vector<InputImage>& images) {
  SizeGroups g;
  for (std::size_t i = 0; i < images.size(); ++i) {
    const std::pair<int, int> hw{images[i].height, images[i].width};
    if (!g.members.count(hw)) g.sizes.push_back(hw);
    g.members[hw].push_back(i);
  }
  return g;
}

// `inputs`: the input of each model input.
void check_one_size_for_raw(const SizeGroups& g, const std::vector<std::filesystem::path>& inputs) {
  if (g.sizes.size() <= 1) return;
  const std::pair<int, int>& first = g.sizes[0];
  const std::pair<int, int>& second = g.sizes[1];
  throw std::invalid_argument("--save-raw needs inputs of one size; " +
                              inputs[g.members.at(second).front()].string() + " is " +
                              std::to_string(second.first) + "x" + std::to_string(second.second) +
                              ", " + inputs.front().string() + " is " +
                              std::to_string(first.first) + "x" + std::to_string(first.second));
}

// Every input's prediction and Grad-CAM in input order, and the last size group's raw batch
// (the only one when raw outputs are saved).
struct Predicted {
  std::vector<Prediction> predictions;
  std::vector<std::vector<float>> cams;
  PredictionBatch raw;
};

Predicted predict_all(Predictor& predictor, const std::vector<InputImage>& images,
                      const SizeGroups& groups) {
  Predicted out;
  out.predictions.resize(images.size());
  out.cams.resize(images.size());
  for (const auto& hw : groups.sizes) {
    const std::vector<std::size_t>& members = groups.members.at(hw);
    const std::size_t plane = static_cast<std::size_t>(hw.first) * hw.second;
    std::vector<float> pixels;
    pixels.reserve(members.size() * plane);
    for (std::size_t i : members) {
      pixels.insert(pixels.end(), images[i].pixels.begin(), images[i].pixels.end());
    }
    PredictionBatch batch = predictor.predict(
        from_vector(pixels, {static_cast<index_t>(members.size()), 1, hw.first, hw.second}));
    for (std::size_t k = 0; k < members.size(); ++k) {
      out.predictions[members[k]] = std::move(batch.predictions[k]);
      if (batch.gradcam.defined()) {
        const float* cam = batch.gradcam.data<float>() + k * plane;
        out.cams[members[k]].assign(cam, cam + plane);
      }
    }
    out.raw = std::move(batch);
  }
  return out;
}

// DIR/<name>.json before the files it names are known: those are filled in as written.
nlohmann::json report_of(const std::filesystem::path& input, const Prediction& p,
                         const InferOptions& options, const std::string& name) {
  nlohmann::json report = {{"input", input.string()},
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
  if (p.probability_mean) {
    report["mc_dropout"] = {{"passes", options.predict.mc_dropout},
                            {"probability_mean", *p.probability_mean},
                            {"probability_std", *p.probability_std}};
  }
  return report;
}

// One input's mask, Grad-CAM overlay, panel and report.
void write_outputs(const std::filesystem::path& input, const InputImage& image, const Prediction& p,
                   const std::vector<float>& cam, const InferOptions& options) {
  const std::string name = output_name(input);
  const std::filesystem::path& dir = options.out_dir;
  nlohmann::json report = report_of(input, p, options, name);
  if (p.mask_available) {
    io::write_png_gray(dir / (name + "_mask.png"), p.mask, p.height, p.width);
    report["mask"] = name + "_mask.png";
    report["tumour_pixels"] = p.tumour_pixels;
    report["tumour_percent"] = p.tumour_percent;
  } else {
    // A mask left by an earlier run must not pass for this one's.
    std::filesystem::remove(dir / (name + "_mask.png"));
  }
  std::vector<std::uint8_t> cam_rgb;
  if (options.predict.gradcam) {
    cam_rgb = overlay_cam(image.pixels, cam, p.height, p.width, options.gradcam_alpha);
    io::write_png_rgb(dir / (name + "_gradcam.png"), cam_rgb, p.height, p.width);
    report["gradcam"] = name + "_gradcam.png";
  }
  int panel_width = 0;
  const std::vector<std::uint8_t> side_by_side =
      panel(image, options.predict.gradcam ? &cam_rgb : nullptr, p, panel_width);
  io::write_png_rgb(dir / (name + "_panel.png"), side_by_side, p.height, panel_width);
  io::write_file_atomic(dir / (name + ".json"), report.dump(2) + "\n");
}

std::string log_line(const std::filesystem::path& input, const Prediction& p,
                     const InferOptions& options) {
  char line[320];
  if (p.mask_available) {
    std::snprintf(line, sizeof line,
                  "%s: tumour probability %.4f (class %d), %lld tumour pixels (%.2f%%); %s\n",
                  input.string().c_str(), p.tumour_probability, p.predicted_class,
                  static_cast<long long>(p.tumour_pixels), p.tumour_percent,
                  p.recommendation.c_str());
  } else {
    std::snprintf(line, sizeof line,
                  "%s: tumour probability %.4f (class %d), below %.2f: no mask; %s\n",
                  input.string().c_str(), p.tumour_probability, p.predicted_class,
                  options.predict.cls_threshold, p.recommendation.c_str());
  }
  return line;
}

void save_raw(const std::filesystem::path& path, const PredictionBatch& raw,
              const InferOptions& options, std::size_t inputs) {
  std::map<std::string, Tensor> tensors{{"seg_logits", raw.seg_logits},
                                        {"cls_logits", raw.cls_logits}};
  if (raw.gradcam.defined()) tensors.emplace("gradcam", raw.gradcam);
  if (raw.seg_variance.defined()) tensors.emplace("seg_variance", raw.seg_variance);
  io::save_safetensors(
      path, tensors,
      {{"checkpoint", options.checkpoint.string()}, {"inputs", std::to_string(inputs)}});
}

// The outputs one input can leave behind; a failed input removes them, so that a report or mask
// from an earlier run does not pass for this one's.
void remove_outputs(const std::string& name, const std::filesystem::path& dir) {
  for (const char* suffix : {"_mask.png", "_mask.nii.gz", "_gradcam.png", "_panel.png"}) {
    std::filesystem::remove(dir / (name + suffix));
  }
}

// DIR/<name>.json of an input that could not be read: the input and why.
void write_failure(const InputFailure& failure, const std::filesystem::path& dir) {
  const std::string name = output_name(failure.input);
  remove_outputs(name, dir);
  const nlohmann::json report = {{"input", failure.input.string()}, {"error", failure.error}};
  io::write_file_atomic(dir / (name + ".json"), report.dump(2) + "\n");
}

// The inputs that could be read, in input order, with their model inputs in one flat list (an
// image gives one, a volume one per slice with brain), and those that could not be read.
struct Loaded {
  std::vector<std::filesystem::path> inputs;
  std::vector<std::optional<InputVolume>> volumes;  // per read input; its images moved out
  std::vector<std::size_t> first{0};                // input i's images: [first[i], first[i + 1])
  std::vector<InputImage> images;
  std::vector<std::filesystem::path> image_inputs;  // the input of each image
  std::vector<InputFailure> failed;

  void add(const std::filesystem::path& input, std::vector<InputImage> read,
           std::optional<InputVolume> volume) {
    inputs.push_back(input);
    volumes.push_back(std::move(volume));
    for (InputImage& image : read) {
      images.push_back(std::move(image));
      image_inputs.push_back(input);
    }
    first.push_back(images.size());
  }
};

// Every input is read before anything is written, so that with fail_fast the first bad one stops
// the run before any output; otherwise a bad input is recorded and the others go on.
Loaded load_all(const std::vector<std::filesystem::path>& inputs, bool fail_fast) {
  Loaded out;
  for (const auto& input : inputs) {
    try {
      if (is_volume(input)) {
        InputVolume volume = load_volume(input);
        std::vector<InputImage> slices = std::move(volume.images);
        volume.images.clear();
        out.add(input, std::move(slices), std::move(volume));
      } else {
        std::vector<InputImage> one;
        one.push_back(load_input(input));
        out.add(input, std::move(one), std::nullopt);
      }
    } catch (const std::exception& e) {
      if (fail_fast) throw;
      out.failed.push_back({input, e.what()});
    }
  }
  return out;
}

// A volume's mask in its own geometry: each slice's mask resized back to nx x ny (nearest
// neighbour), 0 where the slice holds no brain or its probability is below cls_threshold.
io::Volume volume_mask(const InputVolume& volume, std::span<const Prediction> predictions) {
  io::Volume mask = volume.header;
  const auto plane = static_cast<std::size_t>(mask.nx * mask.ny);
  mask.data.assign(plane * static_cast<std::size_t>(mask.nz), 0.0f);
  for (std::size_t k = 0; k < predictions.size(); ++k) {
    const Prediction& p = predictions[k];
    if (!p.mask_available) continue;
    const std::vector<std::uint8_t> resized = io::resize_nearest(
        p.mask, p.height, p.width, static_cast<int>(mask.ny), static_cast<int>(mask.nx));
    float* out = mask.data.data() + static_cast<std::size_t>(volume.slices[k]) * plane;
    for (std::size_t j = 0; j < plane; ++j) out[j] = resized[j] != 0 ? 1.0f : 0.0f;
  }
  return mask;
}

// A volume input's DIR/<name>_mask.nii.gz and DIR/<name>.json; returns its log line.
std::string write_volume_outputs(const std::filesystem::path& input, const InputVolume& volume,
                                 std::span<const Prediction> predictions,
                                 const InferOptions& options) {
  const std::string name = output_name(input);
  const io::Volume mask = volume_mask(volume, predictions);
  const auto voxels = static_cast<std::int64_t>(
      std::count_if(mask.data.begin(), mask.data.end(), [](float v) { return v != 0.0f; }));
  const double voxel_mm3 = mask.voxel_volume_mm3();
  const double volume_ml = static_cast<double>(voxels) * voxel_mm3 / 1000.0;

  nlohmann::json probabilities = nlohmann::json::array();
  for (std::int64_t z = 0; z < mask.nz; ++z) probabilities.push_back(nullptr);
  std::optional<double> max_probability;
  double latency_ms = 0.0;
  for (std::size_t k = 0; k < predictions.size(); ++k) {
    const double p = predictions[k].tumour_probability;
    probabilities[static_cast<std::size_t>(volume.slices[k])] = p;
    max_probability = std::max(max_probability.value_or(p), p);
    latency_ms += predictions[k].latency_ms;
  }
  remove_outputs(name, options.out_dir);
  io::write_nifti(options.out_dir / (name + "_mask.nii.gz"), mask, io::NiftiDType::u8);
  nlohmann::json report = {
      {"input", input.string()},
      {"checkpoint", options.checkpoint.string()},
      {"threshold", options.predict.threshold},
      {"cls_threshold", options.predict.cls_threshold},
      {"dims", {mask.nx, mask.ny, mask.nz}},
      {"pixdim", {mask.dx, mask.dy, mask.dz}},
      {"voxel_volume_mm3", voxel_mm3},
      {"slices", mask.nz},
      {"slices_with_brain", predictions.size()},
      {"slice_probabilities", probabilities},
      {"max_tumour_probability", max_probability ? nlohmann::json(*max_probability) : nullptr},
      {"tumour_voxels", voxels},
      {"tumour_volume_ml", volume_ml},
      {"mask", name + "_mask.nii.gz"},
      {"recommendation", recommendation(max_probability.value_or(0.0), {}, options.predict.bands)},
      {"recommendation_note", "decision support only, not a diagnosis"},
      {"latency_ms", latency_ms}};
  io::write_file_atomic(options.out_dir / (name + ".json"), report.dump(2) + "\n");

  char line[320];
  std::snprintf(line, sizeof line,
                "%s: %lld slices (%zu with brain), max tumour probability %.4f, %lld tumour "
                "voxels (%.2f ml)\n",
                input.string().c_str(), static_cast<long long>(mask.nz), predictions.size(),
                max_probability.value_or(0.0), static_cast<long long>(voxels), volume_ml);
  return line;
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

InputVolume load_volume(const std::filesystem::path& path) {
  InputVolume out;
  out.header = io::read_nifti(path);
  const io::Volume& v = out.header;
  for (std::int64_t z = 0; z < v.nz; ++z) {
    if (!data::slice_has_brain(data::axial_slice(v, z))) continue;
    out.slices.push_back(z);
    out.images.push_back({data::prepare_axial_slice(v, z), io::kSliceSize, io::kSliceSize});
  }
  out.header.data.clear();
  out.header.data.shrink_to_fit();
  return out;
}

std::vector<std::uint8_t> grey_rgb(const InputImage& image) {
  // overlay_cam with no weight on the colour map.
  const std::vector<float> none(image.pixels.size(), 0.0f);
  return overlay_cam(image.pixels, none, image.height, image.width, 0.0);
}

std::vector<std::uint8_t> mask_overlay(const InputImage& image,
                                       std::span<const std::uint8_t> mask) {
  std::vector<std::uint8_t> masked = grey_rgb(image);
  if (!mask.empty()) {
    io::check_image_size(mask.size(), image.height, image.width, 1, "mask overlay");
  }
  for (std::size_t j = 0; j < mask.size(); ++j) {
    if (!mask[j]) continue;
    masked[3 * j] = static_cast<std::uint8_t>((masked[3 * j] + 255 + 1) / 2);
    masked[3 * j + 1] = static_cast<std::uint8_t>(masked[3 * j + 1] / 2);
    masked[3 * j + 2] = static_cast<std::uint8_t>(masked[3 * j + 2] / 2);
  }
  return masked;
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

InferSummary run_inference(const InferOptions& given, std::ostream& log) {
  if (given.inputs.empty()) throw std::invalid_argument("no inputs given");
  if (given.out_dir.empty()) throw std::invalid_argument("no output folder given");
  InferOptions options = given;
  options.inputs = expand_inputs(given.inputs);
  check_unique_names(options.inputs);
  Predictor predictor =
      Predictor::from_checkpoint(options.checkpoint, options.device, options.predict);
  const int channels = predictor.model().config().in_channels;
  if (channels != 1) {
    throw std::invalid_argument(options.checkpoint.string() + ": the model takes " +
                                std::to_string(channels) +
                                " input channels; image and slice inputs have 1");
  }

  Loaded loaded = load_all(options.inputs, options.fail_fast);
  const SizeGroups groups = group_by_size(loaded.images);
  if (options.save_raw) check_one_size_for_raw(groups, loaded.image_inputs);

  std::filesystem::create_directories(options.out_dir);
  for (const InputFailure& failure : loaded.failed) {
    write_failure(failure, options.out_dir);
    log << failure.input.string() << ": failed: " << failure.error << "\n";
  }
  Predicted predicted;
  if (!loaded.images.empty()) predicted = predict_all(predictor, loaded.images, groups);
  for (std::size_t i = 0; i < loaded.inputs.size(); ++i) {
    const std::size_t first = loaded.first[i];
    if (loaded.volumes[i]) {
      const std::span<const Prediction> slices(predicted.predictions.data() + first,
                                               loaded.first[i + 1] - first);
      log << write_volume_outputs(loaded.inputs[i], *loaded.volumes[i], slices, options);
      continue;
    }
    write_outputs(loaded.inputs[i], loaded.images[first], predicted.predictions[first],
                  predicted.cams[first], options);
    log << log_line(loaded.inputs[i], predicted.predictions[first], options);
  }
  if (options.save_raw && !loaded.images.empty()) {
    save_raw(*options.save_raw, predicted.raw, options, loaded.inputs.size());
  }
  return {loaded.inputs.size(), std::move(loaded.failed)};
}

std::string output_name(const std::filesystem::path& input) {
  // Both extensions of "x.nii.gz" go.
  if (lower_name(input).ends_with(".nii.gz")) return input.stem().stem().string();
  return input.stem().string();
}

}  // namespace glia::nets
