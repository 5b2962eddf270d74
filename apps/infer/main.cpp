// glia-infer: tumour classification and segmentation of image files, .npz slices and NIfTI
// volumes with a trained checkpoint.
//   glia-infer --checkpoint CKPT --input PATH... --out DIR [--device cpu|sim|cuda] [--batch N]
//              [--save-raw FILE] [--threshold 0.5] [--cls-threshold 0.3] [--gradcam]
//              [--mc-dropout N] [--fail-fast] [--cudnn-deterministic true|false]
//              [--cudnn-find true|false] [--precision fp32|tf32|bf16|fp16]
// --precision sets the format of convolutions and GEMMs (engine/precision.h).
// A PATH may be a folder: its image files and .npz slices, sorted by name. Per input it writes
// DIR/<name>.json (tumour probability, predicted class, mask_available, tumour pixel count and
// percentage, recommendation, latency_ms, MC-dropout mean and std), DIR/<name>_mask.png (0/255;
// only when the probability reaches --cls-threshold), DIR/<name>_panel.png and with --gradcam
// DIR/<name>_gradcam.png; --save-raw writes the logits (and gradcam, seg_variance) as
// safetensors. A volume (.nii, .nii.gz) gets DIR/<name>_mask.nii.gz in its own geometry and
// DIR/<name>.json with the slice probabilities and the tumour volume in ml.
// An input that cannot be read gets DIR/<name>.json with its error and the others go on; exit code
// 2 when any failed, with a summary line naming them. --fail-fast stops at the first bad input
// before writing anything, exit code 1, as does any other error (arguments, checkpoint); the usage
// text follows argument errors only.
// Only parses arguments: the work is nets::run_inference (nets/infer/inference.h). Tested end to
// end in tests/apps/infer_test.cpp.
#include <cstdio>
#include <exception>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>

#include "apps/args.h"
#include "nets/infer/inference.h"

namespace {

using glia::apps::parse_integer;
using glia::apps::parse_number;

const char* kUsage =
    "usage: glia-infer --checkpoint CKPT --input PATH... --out DIR [--device cpu|sim|cuda]\n"
    "                  [--batch N] [--save-raw FILE] [--threshold 0.5] [--cls-threshold 0.3]\n"
    "                  [--gradcam] [--mc-dropout N] [--fail-fast]\n"
    "                  [--cudnn-deterministic true|false] [--cudnn-find true|false]\n"
    "                  [--precision fp32|tf32|bf16|fp16]\n";

// The options of a command line; nullopt after --help. The cuDNN flags set the process-wide
// choices (engine/policy.h).
std::optional<glia::nets::InferOptions> parse(int argc, char** argv) {
  glia::nets::InferOptions options;
  glia::CudnnChoices cudnn = glia::cudnn_choices();
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--checkpoint") {
      options.checkpoint = value();
    } else if (arg == "--input") {
      options.inputs.emplace_back(value());
      // Further paths up to the next flag belong to --input too.
      while (i + 1 < argc && argv[i + 1][0] != '-') options.inputs.emplace_back(argv[++i]);
    } else if (arg == "--out") {
      options.out_dir = value();
    } else if (arg == "--device") {
      options.device = glia::Device::parse(value());
    } else if (arg == "--batch") {
      const double b = parse_number(arg, value());
      if (b < 1 || b != static_cast<int>(b)) {
        throw std::invalid_argument("--batch needs a positive integer");
      }
      options.predict.batch = static_cast<int>(b);
    } else if (arg == "--threshold") {
      options.predict.threshold = parse_number(arg, value());
    } else if (arg == "--cls-threshold") {
      options.predict.cls_threshold = parse_number(arg, value());
    } else if (arg == "--gradcam") {
      options.predict.gradcam = true;
    } else if (arg == "--mc-dropout") {
      const double n = parse_number(arg, value());
      if (n < 1 || n != static_cast<int>(n)) {
        throw std::invalid_argument("--mc-dropout needs a positive integer");
      }
      options.predict.mc_dropout = static_cast<int>(n);
    } else if (arg == "--save-raw") {
      options.save_raw = value();
    } else if (arg == "--fail-fast") {
      options.fail_fast = true;
    } else if (glia::apps::parse_cudnn_flag(arg, value, cudnn)) {
      // --cudnn-deterministic or --cudnn-find, applied once the line is parsed
    } else if (arg == "--precision") {
      glia::apps::set_precision_flag(arg, value());
    } else if (arg == "--help" || arg == "-h") {
      return std::nullopt;
    } else {
      throw std::invalid_argument("unknown argument '" + arg + "'");
    }
  }
  if (options.checkpoint.empty()) throw std::invalid_argument("--checkpoint is required");
  if (options.inputs.empty()) throw std::invalid_argument("--input is required");
  if (options.out_dir.empty()) throw std::invalid_argument("--out is required");
  glia::set_cudnn_choices(cudnn);
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<glia::nets::InferOptions> options;
  try {
    options = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "glia-infer: %s\n%s", e.what(), kUsage);
    return 1;
  }
  if (!options) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  try {
    const glia::nets::InferSummary summary = glia::nets::run_inference(*options, std::cout);
    if (summary.failed.empty()) return 0;
    std::string names;
    for (const auto& failure : summary.failed) {
      names += (names.empty() ? "" : ", ") + failure.input.string();
    }
    std::fprintf(stderr, "glia-infer: %zu of %zu inputs failed: %s\n", summary.failed.size(),
                 summary.failed.size() + summary.processed, names.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "glia-infer: %s\n", e.what());
    return 1;
  }
}
