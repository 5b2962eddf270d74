// The evaluation behind glia-eval: a model (or several checkpoints) over one split of a glia-prep
// output folder, scored overall and per source ("overall", "brats", "kaggle"):
//   segmentation (samples with a mask): Dice, IoU, pixel accuracy, boundary F-score, Hausdorff 95
//     as mean and std over slices, the empty rule of nets/eval/metrics.h (empty target and empty
//     prediction score 1); and per patient, Dice and IoU of the patient's masked slices stacked
//     into one volume (2 sum|P∩T| / (sum|P| + sum|T|)), mean and std over patients;
//   classification: confusion counts at the classification threshold, accuracy, precision,
//     recall, specificity, F1, ROC-AUC, PR-AUC, expected calibration error (15 bins);
//   Grad-CAM localisation (optional; samples whose mask holds tumour pixels, CAM of the tumour
//     class): mean fraction of CAM energy inside the dilated mask and the pointing-game hit rate
//     (nets/explain/gradcam.h).
// A source-gap warning is raised when two sources' accuracies differ by more than the limit (10
// points by default): a model that separates the sources rather than the classes has learnt a
// dataset shortcut. Results serialise to JSON and a text table; several results (checkpoints)
// go side by side. Rates with no denominator are NaN, written as null in JSON and "-" in tables.
// Tested in tests/nets/eval/report_test.cpp and end to end in tests/apps (glia-eval).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "data/input/dataset.h"
#include "engine/device.h"
#include "io/safetensors.h"
#include "nets/eval/metrics.h"
#include "nets/model/unet.h"

namespace glia::nets {

struct EvaluationOptions {
  std::string split = "test";  // "train" | "val" | "test"; empty: every split
  Device device = Device::cpu();
  std::size_t batch_size = 8;
  int workers = 0;
  double seg_threshold = 0.5;              // on sigmoid(seg logits)
  double cls_threshold = 0.5;              // on the tumour probability
  double boundary_tolerance = 2.0;         // pixels, boundary F-score
  int calibration_bins = 15;               // expected calibration error
  double source_gap_limit = 0.10;          // accuracy difference that raises the warning
  std::vector<std::string> skull_sources;  // sources whose skull is masked off, as in training
  bool gradcam = false;
  int gradcam_dilation = 5;  // pixels the tumour mask is dilated by before scoring the CAM
};

// One evaluated sample: the model's outputs scored against its targets, plus where it came from.
struct SampleRecord {
  SampleResult result;
  std::string patient;
  int slice = 0;
  bool has_cam = false;  // Grad-CAM localisation scored (gradcam on, tumour pixels in the mask)
  double cam_energy_inside = std::numeric_limits<double>::quiet_NaN();
  bool cam_peak_inside = false;
};

struct SegmentationMetrics {
  std::int64_t slices = 0;  // samples with a mask
  MeanStd dice, iou, pixel_accuracy, boundary_f, hausdorff95;
  std::int64_t patients = 0;  // volumes: (source, patient) pairs with masked slices
  MeanStd patient_dice, patient_iou;
};

struct ClassificationMetrics {
  std::int64_t count = 0;
  BinaryCounts counts;
  double accuracy = 0, precision = 0, recall = 0, specificity = 0, f1 = 0;
  double roc_auc = 0, pr_auc = 0, ece = 0;
};

struct LocalisationMetrics {
  std::int64_t count = 0;
  MeanStd energy_inside;
  double pointing_game = std::numeric_limits<double>::quiet_NaN();  // share of peaks inside
};

struct GroupMetrics {
  std::int64_t samples = 0;
  SegmentationMetrics seg;
  ClassificationMetrics cls;
  LocalisationMetrics cam;
};

struct EvaluationResult {
  std::string name;       // the checkpoint's path, or a caller's label
  io::Metadata metadata;  // the checkpoint's (stage, epoch, ...); empty for a bare model
  std::string split;
  std::map<std::string, GroupMetrics> groups;  // "overall" and one per source
  std::vector<std::string> warnings;
  std::vector<SampleRecord> samples;  // in dataset order
  double seconds = 0;
};

// The metrics of `records`, overall and per source (the options give the thresholds, bins and
// boundary tolerance used; the records already hold the thresholded segmentation scores).
std::map<std::string, GroupMetrics> aggregate(std::span<const SampleRecord> records,
                                              const EvaluationOptions& options);

// The warning when two sources' accuracies differ by more than `limit` (0.10 = 10 points), naming
// both; nullopt otherwise, or with fewer than two sources.
std::optional<std::string> source_gap_warning(const std::map<std::string, GroupMetrics>& groups,
                                              double limit = 0.10);

// Runs the model over every item of `data` (eval mode, no autograd except for Grad-CAM) and
// aggregates. The model's train/eval mode is restored. Throws std::invalid_argument for an empty
// dataset.
EvaluationResult evaluate_model(MultiTaskUNet& model, std::shared_ptr<const data::Dataset> data,
                                const EvaluationOptions& options);

// The `split` rows of DIR/manifest.csv. Throws std::runtime_error naming the file when the
// manifest is missing, or the folder and split when the split has no rows.
std::shared_ptr<const data::ManifestDataset> load_split(const std::filesystem::path& data_dir,
                                                        const std::string& split);

// load_checkpoint (errors name the file) onto options.device, then evaluate_model.
EvaluationResult evaluate_checkpoint(const std::filesystem::path& checkpoint,
                                     std::shared_ptr<const data::Dataset> data,
                                     const EvaluationOptions& options);

// results.json: {"split", "options", "checkpoints": [{name, metadata, split, seconds, groups,
// patients (per-patient volume Dice and IoU), warnings}, ...]}.
std::string results_json(std::span<const EvaluationResult> results,
                         const EvaluationOptions& options);
// The human-readable table: per group, one row per metric and one column per result, then the
// warnings.
std::string format_results(std::span<const EvaluationResult> results);
// Writes OUT/results.json and OUT/results.txt atomically (creating OUT).
void write_results(const std::filesystem::path& out_dir, std::span<const EvaluationResult> results,
                   const EvaluationOptions& options);

}  // namespace glia::nets
