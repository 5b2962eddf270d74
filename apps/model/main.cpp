// glia-model: checkpoints of freshly initialised models and architecture summaries.
//   glia-model --init --seed S [--in-channels N --base-filters B --depth D --out-channels N
//              --cls-hidden N --num-classes N --cls-dropout P] --out FILE.safetensors
//   glia-model --summary [CKPT] [architecture options]
// --summary prints the per-component parameter counts of the checkpoint's architecture, or of
// the one the options give (the defaults: B=32, D=3). Only parses arguments; the work is
// nets::write_initial_checkpoint and nets::MultiTaskUNet. Tested in tests/apps.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

#include "apps/args.h"
#include "nets/model/checkpoint.h"

namespace {

using glia::apps::parse_integer;
using glia::apps::parse_number;

const char* kUsage =
    "usage: glia-model --init --seed S [architecture options] --out FILE.safetensors\n"
    "       glia-model --summary [CKPT] [architecture options]\n"
    "architecture options: --in-channels N --base-filters B --depth D --out-channels N\n"
    "                      --cls-hidden N --num-classes N --cls-dropout P\n";

void print_summary(const glia::nets::MultiTaskUNet& model, const std::string& source) {
  const glia::nets::UNetConfig& c = model.config();
  const glia::nets::ParameterCounts n = model.parameter_counts();
  std::printf(
      "model %s: in_channels %d, base_filters %d, depth %d, out_channels %d, "
      "cls_hidden %d, num_classes %d, cls_dropout %g\n",
      source.c_str(), c.in_channels, c.base_filters, c.depth, c.out_channels, c.cls_hidden,
      c.num_classes, c.cls_dropout);
  std::printf("  encoder   %12lld\n", static_cast<long long>(n.encoder));
  std::printf("  decoder   %12lld\n", static_cast<long long>(n.decoder));
  std::printf("  cls_head  %12lld\n", static_cast<long long>(n.cls_head));
  std::printf("  total     %12lld parameters\n", static_cast<long long>(n.total));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bool init = false, summary = false;
    std::optional<std::uint64_t> seed;
    std::optional<std::filesystem::path> out, checkpoint;
    glia::nets::UNetConfig config;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      auto int_value = [&]() { return static_cast<int>(parse_integer(arg, value())); };
      if (arg == "--init") {
        init = true;
      } else if (arg == "--summary") {
        summary = true;
        if (i + 1 < argc && argv[i + 1][0] != '-') checkpoint = argv[++i];
      } else if (arg == "--seed") {
        const long long s = parse_integer(arg, value());
        if (s < 0) throw std::invalid_argument("--seed must not be negative");
        seed = static_cast<std::uint64_t>(s);
      } else if (arg == "--out") {
        out = value();
      } else if (arg == "--in-channels") {
        config.in_channels = int_value();
      } else if (arg == "--base-filters") {
        config.base_filters = int_value();
      } else if (arg == "--depth") {
        config.depth = int_value();
      } else if (arg == "--out-channels") {
        config.out_channels = int_value();
      } else if (arg == "--cls-hidden") {
        config.cls_hidden = int_value();
      } else if (arg == "--num-classes") {
        config.num_classes = int_value();
      } else if (arg == "--cls-dropout") {
        config.cls_dropout = parse_number(arg, value());
      } else if (arg == "--help" || arg == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      } else {
        throw std::invalid_argument("unknown argument '" + arg + "'");
      }
    }
    if (init == summary) throw std::invalid_argument("give exactly one of --init and --summary");
    config.validate();
    if (init) {
      if (!seed) throw std::invalid_argument("--init needs --seed");
      if (!out) throw std::invalid_argument("--init needs --out FILE.safetensors");
      print_summary(*glia::nets::write_initial_checkpoint(*out, config, *seed), out->string());
      return 0;
    }
    if (checkpoint) {
      print_summary(*glia::nets::load_checkpoint(*checkpoint).model, checkpoint->string());
    } else {
      print_summary(glia::nets::MultiTaskUNet(config), "(architecture options)");
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "glia-model: %s\n%s", e.what(), kUsage);
    return 1;
  }
}
