// Metric summaries (nets/eval/metrics.h) as JSON for the trainer's metrics.jsonl and summary.json
// files: one object per group ("overall", "brats", ...), undefined values (NaN) as null.
// Tested through tests/nets/train/trainer_test.cpp and the glia-train end-to-end test.
#pragma once

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "nets/eval/metrics.h"

namespace glia::nets {

inline nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

inline nlohmann::json summary_json(const Summary& s) {
  return {{"count", s.count},
          {"masked", s.masked},
          {"dice", number_or_null(s.dice.mean)},
          {"dice_std", number_or_null(s.dice.std)},
          {"iou", number_or_null(s.iou.mean)},
          {"iou_std", number_or_null(s.iou.std)},
          {"accuracy", number_or_null(s.accuracy)},
          {"sensitivity", number_or_null(s.sensitivity)},
          {"specificity", number_or_null(s.specificity)},
          {"roc_auc", number_or_null(s.roc_auc)},
          {"combined", number_or_null(s.combined)}};
}

inline nlohmann::json summaries_json(const std::map<std::string, Summary>& summaries) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, s] : summaries) j[name] = summary_json(s);
  return j;
}

}  // namespace glia::nets
