// Per-sample scores of a model over a loader; see sample_scores.h.
#include "nets/eval/sample_scores.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "engine/grad_mode.h"
#include "engine/ops.h"
#include "engine/upload.h"

namespace glia::nets {

std::vector<SampleResult> score_samples(MultiTaskUNet& model, data::Loader& loader,
                                        const EvalOptions& options) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  // sigmoid(x) >= t  <=>  x >= log(t / (1 - t)): threshold the logits, no sigmoid needed.
  const double t = options.seg_threshold;
  const float logit_threshold = t <= 0.0   ? -INFINITY
                                : t >= 1.0 ? INFINITY
                                           : static_cast<float>(std::log(t / (1.0 - t)));
  std::vector<SampleResult> results;
  loader.start_epoch(0);
  // The next batch's images are queued on the copy stream before the current batch's forward, so
  // on a GPU the copy overlaps it (engine/upload.h).
  std::optional<data::Batch> batch = loader.next();
  PendingUpload upload = batch ? upload_async({batch->images}, options.device) : PendingUpload{};
  while (batch) {
    std::optional<data::Batch> next = loader.next();
    PendingUpload next_upload =
        next ? upload_async({next->images}, options.device) : PendingUpload{};
    const std::size_t n = batch->size();
    const MultiTaskOutput out = model.forward(upload.take()[0], options.do_seg, options.do_cls);
    std::vector<float> cls;
    if (options.do_cls) cls = out.cls_logits.to_vector<float>();
    std::vector<float> seg;
    if (options.do_seg) seg = out.seg_logits.to_vector<float>();
    const std::vector<float> masks = batch->masks.to_vector<float>();
    const std::vector<float> has_mask = batch->has_mask.to_vector<float>();
    const std::vector<std::int32_t> labels = batch->labels.to_vector<std::int32_t>();
    const std::size_t pixels = n ? masks.size() / n : 0;
    const std::size_t classes = options.do_cls ? cls.size() / n : 0;
    for (std::size_t i = 0; i < n; ++i) {
      SampleResult r;
      r.source = batch->sources[i];
      r.index = batch->indices[i];
      r.label = labels[i];
      r.probability =
          options.do_cls ? tumour_probability({cls.data() + i * classes, classes}) : NAN;
      r.has_mask = has_mask[i] > 0.5f && options.do_seg;
      if (r.has_mask) {
        std::vector<std::uint8_t> pred(pixels), target(pixels);
        for (std::size_t p = 0; p < pixels; ++p) {
          pred[p] = seg[i * pixels + p] >= logit_threshold;
          target[p] = masks[i * pixels + p] > 0.5f;
        }
        r.overlap = overlap_counts(pred, target);
        r.seg = r.overlap.scores();
        r.pixel_accuracy = pixel_accuracy(pred, target);
        if (options.boundary_metrics) {
          const auto height = static_cast<int>(batch->masks.shape()[2]);
          const auto width = static_cast<int>(batch->masks.shape()[3]);
          r.boundary_f = boundary_f_score(pred, target, height, width, options.boundary_tolerance);
          r.hausdorff95 = hausdorff95(pred, target, height, width);
        }
      }
      results.push_back(std::move(r));
    }
    batch = std::move(next);
    upload = std::move(next_upload);
  }
  model.train(was_training);
  return results;
}

namespace {

// Every field of a SampleResult but the source, as doubles (counts are exact below 2^53).
constexpr std::size_t kFields = 12;

void pack(const SampleResult& r, std::vector<double>& out) {
  out.insert(
      out.end(),
      {static_cast<double>(r.index), static_cast<double>(r.label), r.probability,
       r.has_mask ? 1.0 : 0.0, r.seg.dice, r.seg.iou, static_cast<double>(r.overlap.intersection),
       static_cast<double>(r.overlap.predicted), static_cast<double>(r.overlap.target),
       r.pixel_accuracy, r.boundary_f, r.hausdorff95});
}

SampleResult unpack(const double* v, const data::Dataset& dataset) {
  SampleResult r;
  r.index = static_cast<std::size_t>(v[0]);
  r.source = dataset.source(r.index);
  r.label = static_cast<int>(v[1]);
  r.probability = v[2];
  r.has_mask = v[3] != 0.0;
  r.seg = {v[4], v[5]};
  r.overlap = {static_cast<std::int64_t>(v[6]), static_cast<std::int64_t>(v[7]),
               static_cast<std::int64_t>(v[8])};
  r.pixel_accuracy = v[9];
  r.boundary_f = v[10];
  r.hausdorff95 = v[11];
  return r;
}

}  // namespace

std::vector<SampleResult> gather_results(const std::vector<SampleResult>& mine,
                                         dist::Communicator& comm, const data::Dataset& dataset) {
  std::vector<double> packed;
  packed.reserve(mine.size() * kFields);
  for (const SampleResult& r : mine) pack(r, packed);
  const std::vector<double> all = comm.all_gather_host(packed);
  std::vector<SampleResult> results;
  results.reserve(all.size() / kFields);
  for (std::size_t i = 0; i + kFields <= all.size(); i += kFields) {
    results.push_back(unpack(all.data() + i, dataset));
  }
  std::stable_sort(results.begin(), results.end(),
                   [](const SampleResult& a, const SampleResult& b) { return a.index < b.index; });
  return results;
}

}  // namespace glia::nets
