// The evaluation behind glia-eval; definitions in evaluation.h.
#include "nets/eval/report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "data/input/loader.h"
#include "data/input/sampler.h"
#include "data/input/transforms.h"
#include "io/atomic_file.h"
#include "nets/eval/sample_scores.h"
#include "nets/explain/gradcam.h"
#include "nets/model/checkpoint.h"

namespace glia::nets {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

SegmentationMetrics segmentation_metrics(const std::vector<const SampleRecord*>& members) {
  SegmentationMetrics m;
  std::vector<double> dice, iou, accuracy, boundary, hd95;
  // Volumes keyed by (source, patient): a patient name is unique within its source only.
  std::map<std::pair<std::string, std::string>, OverlapCounts> volumes;
  for (const SampleRecord* r : members) {
    if (!r->result.has_mask) continue;
    ++m.slices;
    dice.push_back(r->result.seg.dice);
    iou.push_back(r->result.seg.iou);
    accuracy.push_back(r->result.pixel_accuracy);
    boundary.push_back(r->result.boundary_f);
    hd95.push_back(r->result.hausdorff95);
    volumes[{r->result.source, r->patient}] += r->result.overlap;
  }
  m.dice = mean_std(dice);
  m.iou = mean_std(iou);
  m.pixel_accuracy = mean_std(accuracy);
  m.boundary_f = mean_std(boundary);
  m.hausdorff95 = mean_std(hd95);
  std::vector<double> patient_dice, patient_iou;
  for (const auto& [key, counts] : volumes) {
    const MaskScores s = counts.scores();
    patient_dice.push_back(s.dice);
    patient_iou.push_back(s.iou);
  }
  m.patients = static_cast<std::int64_t>(volumes.size());
  m.patient_dice = mean_std(patient_dice);
  m.patient_iou = mean_std(patient_iou);
  return m;
}

ClassificationMetrics classification_metrics(const std::vector<const SampleRecord*>& members,
                                             const EvaluationOptions& options) {
  ClassificationMetrics m;
  std::vector<double> scores;
  std::vector<int> labels, predicted;
  for (const SampleRecord* r : members) {
    if (!std::isfinite(r->result.probability)) continue;
    scores.push_back(r->result.probability);
    labels.push_back(r->result.label);
    predicted.push_back(r->result.probability >= options.cls_threshold ? 1 : 0);
  }
  m.count = static_cast<std::int64_t>(scores.size());
  m.counts = confusion(predicted, labels);
  m.accuracy = m.counts.accuracy();
  m.precision = m.counts.precision();
  m.recall = m.counts.recall();
  m.specificity = m.counts.specificity();
  m.f1 = m.counts.f1();
  m.roc_auc = roc_auc(scores, labels);
  m.pr_auc = pr_auc(scores, labels);
  m.ece = expected_calibration_error(scores, labels, options.calibration_bins);
  return m;
}

LocalisationMetrics localisation_metrics(const std::vector<const SampleRecord*>& members) {
  LocalisationMetrics m;
  std::vector<double> energy;
  std::int64_t hits = 0;
  for (const SampleRecord* r : members) {
    if (!r->has_cam) continue;
    ++m.count;
    energy.push_back(r->cam_energy_inside);
    hits += r->cam_peak_inside;
  }
  m.energy_inside = mean_std(energy);
  m.pointing_game = m.count > 0 ? static_cast<double>(hits) / static_cast<double>(m.count) : kNaN;
  return m;
}

json number(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

json to_json(const MeanStd& m) {
  return {{"mean", number(m.mean)}, {"std", number(m.std)}, {"count", m.count}};
}

json to_json(const GroupMetrics& g) {
  const SegmentationMetrics& s = g.seg;
  const ClassificationMetrics& c = g.cls;
  json out = {
      {"samples", g.samples},
      {"segmentation",
       {{"slices", s.slices},
        {"dice", to_json(s.dice)},
        {"iou", to_json(s.iou)},
        {"pixel_accuracy", to_json(s.pixel_accuracy)},
        {"boundary_f", to_json(s.boundary_f)},
        {"hausdorff95", to_json(s.hausdorff95)},
        {"patients", s.patients},
        {"patient_dice", to_json(s.patient_dice)},
        {"patient_iou", to_json(s.patient_iou)}}},
      {"classification",
       {{"count", c.count},
        {"accuracy", number(c.accuracy)},
        {"precision", number(c.precision)},
        {"recall", number(c.recall)},
        {"specificity", number(c.specificity)},
        {"f1", number(c.f1)},
        {"roc_auc", number(c.roc_auc)},
        {"pr_auc", number(c.pr_auc)},
        {"ece", number(c.ece)},
        {"confusion",
         {{"tp", c.counts.tp}, {"fp", c.counts.fp}, {"tn", c.counts.tn}, {"fn", c.counts.fn}}}}}};
  if (g.cam.count > 0) {
    out["gradcam"] = {{"count", g.cam.count},
                      {"energy_inside", to_json(g.cam.energy_inside)},
                      {"pointing_game", number(g.cam.pointing_game)}};
  }
  return out;
}

std::string fixed(double v, int digits = 4) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string mean_pm_std(const MeanStd& m, int digits = 4) {
  if (m.count == 0) return "-";
  return fixed(m.mean, digits) + " +- " + fixed(m.std, digits);
}

// A column label: the checkpoint's last two path components (stage1/best.safetensors), so the
// three stages of one run stay apart.
std::string column_label(const EvaluationResult& r) {
  const fs::path p(r.name);
  const fs::path parent = p.parent_path().filename();
  return parent.empty() ? p.filename().string() : (parent / p.filename()).string();
}

// Grad-CAM of the tumour class (class 1, whatever the prediction: where does the model see a
// tumour) on the samples whose mask holds tumour pixels, scored against that mask. Samples with
// an empty mask are skipped: no CAM can land inside an empty region.
void score_gradcam(MultiTaskUNet& model, data::Loader& loader, const EvaluationOptions& options,
                   std::vector<SampleRecord>& records) {
  std::map<std::size_t, SampleRecord*> by_index;
  for (SampleRecord& r : records) by_index[r.result.index] = &r;
  GradCamOptions cam_options;
  cam_options.target_class = 1;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    const Shape& shape = batch->images.shape();
    const index_t channels = shape[1], height = shape[2], width = shape[3];
    const auto pixels = static_cast<std::size_t>(height * width);
    const std::vector<float> masks = batch->masks.to_vector<float>();
    const std::vector<float> has_mask = batch->has_mask.to_vector<float>();
    std::vector<std::size_t> chosen;
    for (std::size_t i = 0; i < batch->size(); ++i) {
      const auto first = masks.begin() + static_cast<std::ptrdiff_t>(i * pixels);
      if (has_mask[i] > 0.5f && std::any_of(first, first + static_cast<std::ptrdiff_t>(pixels),
                                            [](float v) { return v > 0.5f; })) {
        chosen.push_back(i);
      }
    }
    if (chosen.empty()) continue;
    const auto m = static_cast<index_t>(chosen.size());
    Tensor images({m, channels, height, width}, DType::f32, Device::cpu());
    const std::size_t stride = static_cast<std::size_t>(channels) * pixels;
    for (std::size_t j = 0; j < chosen.size(); ++j) {
      const float* from = batch->images.data<float>() + chosen[j] * stride;
      std::copy(from, from + stride, images.data<float>() + j * stride);
    }
    const GradCamResult cam = grad_cam(model, images, cam_options);
    const std::vector<float> cams = cam.cams.to_vector<float>();
    for (std::size_t j = 0; j < chosen.size(); ++j) {
      std::vector<std::uint8_t> mask(pixels);
      for (std::size_t p = 0; p < pixels; ++p) mask[p] = masks[chosen[j] * pixels + p] > 0.5f;
      const Localisation l =
          localisation(std::span<const float>(cams.data() + j * pixels, pixels), mask,
                       static_cast<int>(height), static_cast<int>(width), options.gradcam_dilation);
      SampleRecord& r = *by_index.at(batch->indices[chosen[j]]);
      r.has_cam = true;
      r.cam_energy_inside = l.energy_inside;
      r.cam_peak_inside = l.peak_inside;
    }
  }
}

}  // namespace

std::map<std::string, GroupMetrics> aggregate(std::span<const SampleRecord> records,
                                              const EvaluationOptions& options) {
  std::map<std::string, std::vector<const SampleRecord*>> members;
  members["overall"];
  for (const SampleRecord& r : records) {
    members["overall"].push_back(&r);
    members[r.result.source].push_back(&r);
  }
  std::map<std::string, GroupMetrics> groups;
  for (const auto& [name, list] : members) {
    GroupMetrics g;
    g.samples = static_cast<std::int64_t>(list.size());
    g.seg = segmentation_metrics(list);
    g.cls = classification_metrics(list, options);
    g.cam = localisation_metrics(list);
    groups[name] = g;
  }
  return groups;
}

std::optional<std::string> source_gap_warning(const std::map<std::string, GroupMetrics>& groups,
                                              double limit) {
  // The widest gap between any two sources with a finite accuracy.
  const GroupMetrics* low = nullptr;
  const GroupMetrics* high = nullptr;
  std::string low_name, high_name;
  for (const auto& [name, g] : groups) {
    if (name == "overall" || !std::isfinite(g.cls.accuracy)) continue;
    if (!low || g.cls.accuracy < low->cls.accuracy) {
      low = &g;
      low_name = name;
    }
    if (!high || g.cls.accuracy > high->cls.accuracy) {
      high = &g;
      high_name = name;
    }
  }
  if (!low || low == high) return std::nullopt;
  const double gap = high->cls.accuracy - low->cls.accuracy;
  if (!(gap > limit)) return std::nullopt;
  return "classification accuracy differs by " + fixed(100 * gap, 1) + " points between " +
         high_name + " (" + fixed(100 * high->cls.accuracy, 1) + "%) and " + low_name + " (" +
         fixed(100 * low->cls.accuracy, 1) + "%), more than " + fixed(100 * limit, 1) +
         " points: the model may have learnt to tell the sources apart (a dataset shortcut) rather "
         "than tumours";
}

EvaluationResult evaluate_model(MultiTaskUNet& model, std::shared_ptr<const data::Dataset> data,
                                const EvaluationOptions& options) {
  if (!data || data->size() == 0) throw std::invalid_argument("evaluate_model: no samples");
  if (options.batch_size == 0) throw std::invalid_argument("evaluate_model: batch size 0");
  const auto started = std::chrono::steady_clock::now();
  data::SamplerConfig sampler;
  sampler.mode = data::SamplerMode::sequential;
  data::LoaderConfig loader_config;
  loader_config.batch_size = options.batch_size;
  loader_config.workers = options.workers;
  data::AugmentConfig augment;
  augment.skull_sources = options.skull_sources;
  data::Loader loader(data, data::Sampler(*data, sampler), data::val_transforms(augment),
                      loader_config);

  EvalOptions eval;
  eval.device = options.device;
  eval.seg_threshold = options.seg_threshold;
  eval.boundary_metrics = true;
  eval.boundary_tolerance = options.boundary_tolerance;
  std::vector<SampleResult> results = score_samples(model, loader, eval);

  EvaluationResult out;
  out.split = options.split;
  out.samples.reserve(results.size());
  const auto* manifest = dynamic_cast<const data::ManifestDataset*>(data.get());
  for (SampleResult& r : results) {
    SampleRecord record;
    if (manifest) {
      record.patient = manifest->entry(r.index).patient;
      record.slice = manifest->entry(r.index).slice;
    } else {
      const data::Sample s = data->load(r.index);
      record.patient = s.patient;
      record.slice = s.slice;
    }
    record.result = std::move(r);
    out.samples.push_back(std::move(record));
  }
  if (options.gradcam) score_gradcam(model, loader, options, out.samples);
  out.groups = aggregate(out.samples, options);
  if (auto w = source_gap_warning(out.groups, options.source_gap_limit)) {
    out.warnings.push_back(*w);
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return out;
}

std::shared_ptr<const data::ManifestDataset> load_split(const fs::path& data_dir,
                                                        const std::string& split) {
  const fs::path csv = data_dir / "manifest.csv";
  if (!fs::is_regular_file(csv)) {
    throw std::runtime_error(csv.string() +
                             ": no manifest (is the folder a glia-prep output folder?)");
  }
  auto data = std::make_shared<data::ManifestDataset>(csv, split);
  if (data->size() == 0) {
    throw std::runtime_error(csv.string() + ": the split '" + split + "' has no rows");
  }
  return data;
}

EvaluationResult evaluate_checkpoint(const fs::path& checkpoint,
                                     std::shared_ptr<const data::Dataset> data,
                                     const EvaluationOptions& options) {
  LoadedModel loaded = load_checkpoint(checkpoint, options.device);
  EvaluationResult r = evaluate_model(*loaded.model, std::move(data), options);
  r.name = checkpoint.string();
  // The training state is an internal blob; stage, epoch and metrics say what was evaluated.
  loaded.metadata.erase("trainer_state");
  r.metadata = std::move(loaded.metadata);
  return r;
}

std::string results_json(std::span<const EvaluationResult> results,
                         const EvaluationOptions& options) {
  json checkpoints = json::array();
  for (const EvaluationResult& r : results) {
    json groups = json::object();
    for (const auto& [name, g] : r.groups) groups[name] = to_json(g);
    // Per-patient volume scores, for looking up the patients that pull the mean down.
    std::map<std::pair<std::string, std::string>, std::pair<OverlapCounts, int>> volumes;
    for (const SampleRecord& s : r.samples) {
      if (!s.result.has_mask) continue;
      auto& [counts, slices] = volumes[{s.result.source, s.patient}];
      counts += s.result.overlap;
      ++slices;
    }
    json patients = json::array();
    for (const auto& [key, volume] : volumes) {
      const MaskScores scores = volume.first.scores();
      patients.push_back({{"source", key.first},
                          {"patient", key.second},
                          {"slices", volume.second},
                          {"dice", number(scores.dice)},
                          {"iou", number(scores.iou)}});
    }
    checkpoints.push_back({{"name", r.name},
                           {"metadata", r.metadata},
                           {"split", r.split},
                           {"seconds", r.seconds},
                           {"groups", groups},
                           {"patients", patients},
                           {"warnings", r.warnings}});
  }
  const json out = {{"split", options.split},
                    {"options",
                     {{"seg_threshold", options.seg_threshold},
                      {"cls_threshold", options.cls_threshold},
                      {"boundary_tolerance", options.boundary_tolerance},
                      {"calibration_bins", options.calibration_bins},
                      {"source_gap_limit", options.source_gap_limit},
                      {"skull_sources", options.skull_sources},
                      {"gradcam", options.gradcam},
                      {"gradcam_dilation", options.gradcam_dilation}}},
                    {"checkpoints", checkpoints}};
  return out.dump(2) + "\n";
}

std::string format_results(std::span<const EvaluationResult> results) {
  std::vector<std::string> labels;
  std::size_t width = 12;
  for (const EvaluationResult& r : results) labels.push_back(column_label(r));
  // Checkpoints whose short labels collide (run1/stage1/best, run2/stage1/best) get their paths.
  const std::vector<std::string> short_labels = labels;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (std::count(short_labels.begin(), short_labels.end(), short_labels[i]) > 1) {
      labels[i] = results[i].name;
    }
  }
  for (const std::string& l : labels) width = std::max(width, l.size() + 2);
  std::set<std::string> group_names;
  bool any_cam = false;
  for (const EvaluationResult& r : results) {
    for (const auto& [name, g] : r.groups) {
      group_names.insert(name);
      any_cam = any_cam || g.cam.count > 0;
    }
  }
  // "overall" first, then the sources in name order.
  std::vector<std::string> order{"overall"};
  for (const std::string& n : group_names) {
    if (n != "overall") order.push_back(n);
  }

  std::ostringstream out;
  auto pad = [](std::string s, std::size_t w) {
    if (s.size() < w) s.insert(0, w - s.size(), ' ');
    return s;
  };
  constexpr std::size_t kName = 24;
  using Cell = std::string (*)(const GroupMetrics&);
  struct Row {
    const char* name;
    Cell cell;
  };
  static const Row kRows[] = {
      {"samples", [](const GroupMetrics& g) { return std::to_string(g.samples); }},
      {"seg slices", [](const GroupMetrics& g) { return std::to_string(g.seg.slices); }},
      {"dice (slice)", [](const GroupMetrics& g) { return mean_pm_std(g.seg.dice); }},
      {"iou (slice)", [](const GroupMetrics& g) { return mean_pm_std(g.seg.iou); }},
      {"pixel accuracy", [](const GroupMetrics& g) { return mean_pm_std(g.seg.pixel_accuracy); }},
      {"boundary F", [](const GroupMetrics& g) { return mean_pm_std(g.seg.boundary_f); }},
      {"hausdorff95 (px)", [](const GroupMetrics& g) { return mean_pm_std(g.seg.hausdorff95, 2); }},
      // Hausdorff 95 is undefined (skipped) where exactly one of the two masks is empty.
      {"hausdorff95 slices",
       [](const GroupMetrics& g) { return std::to_string(g.seg.hausdorff95.count); }},
      {"patients", [](const GroupMetrics& g) { return std::to_string(g.seg.patients); }},
      {"dice (patient)", [](const GroupMetrics& g) { return mean_pm_std(g.seg.patient_dice); }},
      {"iou (patient)", [](const GroupMetrics& g) { return mean_pm_std(g.seg.patient_iou); }},
      {"accuracy", [](const GroupMetrics& g) { return fixed(g.cls.accuracy); }},
      {"precision", [](const GroupMetrics& g) { return fixed(g.cls.precision); }},
      {"recall (sensitivity)", [](const GroupMetrics& g) { return fixed(g.cls.recall); }},
      {"specificity", [](const GroupMetrics& g) { return fixed(g.cls.specificity); }},
      {"f1", [](const GroupMetrics& g) { return fixed(g.cls.f1); }},
      {"roc auc", [](const GroupMetrics& g) { return fixed(g.cls.roc_auc); }},
      {"pr auc", [](const GroupMetrics& g) { return fixed(g.cls.pr_auc); }},
      {"ece (15 bins)", [](const GroupMetrics& g) { return fixed(g.cls.ece); }},
      {"confusion tp/fp/tn/fn",
       [](const GroupMetrics& g) {
         return std::to_string(g.cls.counts.tp) + "/" + std::to_string(g.cls.counts.fp) + "/" +
                std::to_string(g.cls.counts.tn) + "/" + std::to_string(g.cls.counts.fn);
       }},
  };
  static const Row kCamRows[] = {
      {"gradcam samples", [](const GroupMetrics& g) { return std::to_string(g.cam.count); }},
      {"cam energy inside", [](const GroupMetrics& g) { return mean_pm_std(g.cam.energy_inside); }},
      {"pointing game", [](const GroupMetrics& g) { return fixed(g.cam.pointing_game); }},
  };
  for (const std::string& group : order) {
    out << "== " << group << " ==\n" << std::string(kName, ' ');
    for (const std::string& l : labels) out << pad(l, width);
    out << "\n";
    auto print = [&](const Row& row) {
      std::string name = row.name;
      name.resize(kName, ' ');
      out << name;
      for (const EvaluationResult& r : results) {
        const auto it = r.groups.find(group);
        out << pad(it == r.groups.end() ? "-" : row.cell(it->second), width);
      }
      out << "\n";
    };
    for (const Row& row : kRows) print(row);
    if (any_cam) {
      for (const Row& row : kCamRows) print(row);
    }
    out << "\n";
  }
  for (std::size_t i = 0; i < results.size(); ++i) {
    for (const std::string& w : results[i].warnings) {
      out << "warning (" << labels[i] << "): " << w << "\n";
    }
  }
  return out.str();
}

void write_results(const fs::path& out_dir, std::span<const EvaluationResult> results,
                   const EvaluationOptions& options) {
  fs::create_directories(out_dir);
  io::write_file_atomic(out_dir / "results.json", results_json(results, options));
  io::write_file_atomic(out_dir / "results.txt", format_results(results));
}

}  // namespace glia::nets
