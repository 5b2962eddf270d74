// glia-eval: scores checkpoints on one split of a glia-prep output folder (nets/eval/report.h).
//   glia-eval --checkpoint CKPT --data DIR [--split test] [--out DIR] [--device cpu|sim|cuda]
//             [--batch N] [--workers N] [--threshold 0.5] [--cls-threshold 0.5]
//             [--tolerance PX] [--skull-mask SOURCES] [--compare CKPT...] [--gradcam]
//             [--gradcam-dilation PX]
// Prints the table and writes OUT/results.json and OUT/results.txt. --compare adds checkpoints
// (e.g. the three training stages) as further columns of the same table and entries of the JSON.
// Only parses arguments: the work is in nets/eval/report.h. Tested end to end in tests/apps.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "apps/args.h"
#include "engine/device.h"
#include "nets/eval/report.h"

namespace {

using glia::apps::parse_integer;
using glia::apps::parse_number;

namespace fs = std::filesystem;

const char* kUsage =
    "usage: glia-eval --checkpoint CKPT --data DIR [--split test] [--out DIR]\n"
    "                 [--device cpu|sim|cuda] [--batch N] [--workers N] [--threshold 0.5]\n"
    "                 [--cls-threshold 0.5] [--tolerance PX] [--skull-mask SOURCES]\n"
    "                 [--compare CKPT...] [--gradcam] [--gradcam-dilation PX]\n"
    "DIR is a glia-prep output folder (manifest.csv). --threshold applies to the segmentation\n"
    "probability, --cls-threshold to the tumour probability; --tolerance is the boundary\n"
    "F-score's, in pixels (default 2). --skull-mask masks the skull off the listed sources\n"
    "(comma-separated, e.g. kaggle) as the training configuration did. --compare adds\n"
    "checkpoints to the same table. Writes OUT/results.json and OUT/results.txt (OUT defaults\n"
    "to runs/eval). Empty target and empty prediction score Dice = IoU = 1.\n";

double parse_probability(const std::string& flag, const std::string& text) {
  const double v = parse_number(flag, text);
  if (!(v >= 0.0 && v <= 1.0)) {
    throw std::invalid_argument(flag + " must lie in [0, 1], got '" + text + "'");
  }
  return v;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? comma : comma - start);
    if (!item.empty()) items.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    glia::nets::EvaluationOptions options;
    std::vector<fs::path> checkpoints;
    fs::path data_dir, out_dir = "runs/eval";
    std::string device_text;
    bool checkpoint_given = false;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--checkpoint") {
        if (checkpoint_given) throw std::invalid_argument("--checkpoint given twice");
        checkpoints.insert(checkpoints.begin(), value());
        checkpoint_given = true;
      } else if (arg == "--compare") {
        const std::size_t before = checkpoints.size();
        while (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
          checkpoints.emplace_back(argv[++i]);
        }
        if (checkpoints.size() == before) {
          throw std::invalid_argument("--compare needs at least one checkpoint");
        }
      } else if (arg == "--data") {
        data_dir = value();
      } else if (arg == "--split") {
        options.split = value();
      } else if (arg == "--out") {
        out_dir = value();
      } else if (arg == "--device") {
        device_text = value();
      } else if (arg == "--batch") {
        options.batch_size = static_cast<std::size_t>(parse_integer(arg, value(), 1));
      } else if (arg == "--workers") {
        options.workers = static_cast<int>(parse_integer(arg, value(), 0));
      } else if (arg == "--threshold") {
        options.seg_threshold = parse_probability(arg, value());
      } else if (arg == "--cls-threshold") {
        options.cls_threshold = parse_probability(arg, value());
      } else if (arg == "--tolerance") {
        options.boundary_tolerance = parse_number(arg, value());
        if (options.boundary_tolerance < 0) {
          throw std::invalid_argument("--tolerance must not be negative");
        }
      } else if (arg == "--skull-mask") {
        options.skull_sources = split_list(value());
      } else if (arg == "--gradcam") {
        options.gradcam = true;
      } else if (arg == "--gradcam-dilation") {
        options.gradcam_dilation = static_cast<int>(parse_integer(arg, value(), 0));
      } else if (arg == "--help" || arg == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      } else {
        throw std::invalid_argument("unknown argument '" + arg + "' (see --help)");
      }
    }
    if (!checkpoint_given) throw std::invalid_argument("--checkpoint is required (see --help)");
    if (data_dir.empty()) throw std::invalid_argument("--data is required (see --help)");
    if (options.split != "train" && options.split != "val" && options.split != "test") {
      throw std::invalid_argument("--split must be train, val or test, got '" + options.split +
                                  "'");
    }
    options.device = device_text.empty()
                         ? (glia::cuda_available() ? glia::Device::cuda() : glia::Device::cpu())
                         : glia::Device::parse(device_text);

    const auto data = glia::nets::load_split(data_dir, options.split);
    std::cout << "glia-eval: " << data->size() << " " << options.split << " samples from "
              << data_dir.string() << ", " << checkpoints.size() << " checkpoint"
              << (checkpoints.size() == 1 ? "" : "s") << ", device " << options.device.to_string()
              << "\n";
    std::vector<glia::nets::EvaluationResult> results;
    for (const fs::path& checkpoint : checkpoints) {
      results.push_back(glia::nets::evaluate_checkpoint(checkpoint, data, options));
      std::cout << "  " << checkpoint.string() << ": " << results.back().seconds << " s\n";
    }
    glia::nets::write_results(out_dir, results, options);
    std::cout << "\n"
              << glia::nets::format_results(results) << "\nwrote "
              << (out_dir / "results.json").string() << " and "
              << (out_dir / "results.txt").string() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "glia-eval: %s\n", e.what());
    return 1;
  }
}
