// glia-prep: preprocesses BraTS volumes and Kaggle images into z-scored 256x256 .npz slices, a
// manifest and statistics (data/prep/prep.h), or writes a synthetic dataset in the raw formats
// (`glia-prep synth`, data/prep/phantom.h). Only argument parsing lives here. Tested end to end by
// tests/apps/prep_e2e.sh.
#include <charconv>
#include <cstdint>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "data/prep/phantom.h"
#include "data/prep/prep.h"

namespace {

constexpr const char* kUsage =
    "usage:\n"
    "  glia-prep [--brats DIR] [--kaggle DIR] --out DIR [options]\n"
    "      --brats DIR                 BraTS 2020 layout: one folder per subject with\n"
    "                                  *flair*.nii[.gz] and *seg*.nii[.gz]\n"
    "      --kaggle DIR                folders yes/ and no/ of .jpg/.jpeg/.png images\n"
    "      --out DIR                   writes manifest.csv, stats.json, <split>/<source>/*.npz\n"
    "                                  (an image whose kept head area is an outlier of its\n"
    "                                  source is named in a warning)\n"
    "      --split T,V,S               train,val,test fractions (default 0.7,0.15,0.15)\n"
    "      --seed N                    splits and negative sampling (default 0)\n"
    "      --min-tumor-pixels N        label 1 from N mask pixels at 256x256 (default 10)\n"
    "      --keep all|tumor|balanced   BraTS slices to keep (default all); balanced keeps the\n"
    "                                  tumour slices + --negatives-per-patient N (default 2)\n"
    "      --skip-bad                  warn about and count a bad subject or image, go on\n"
    "      --preview N                 OUT/preview/<source>_<split>.png: N random slices each,\n"
    "                                  original with the kept region outlined (green) beside\n"
    "                                  the prepared slice with the tumour outlined (red);\n"
    "                                  drawn with --seed (default 8; 0: none), and\n"
    "                                  <source>_outliers.png of the images warned about\n"
    "      --quiet                     no progress lines and no statistics table\n"
    "  glia-prep synth --out DIR [options]\n"
    "      --brats-subjects N          BraTS-like subjects under DIR/brats (default 6)\n"
    "      --kaggle-images N           Kaggle-like images under DIR/kaggle (default 20)\n"
    "      --size N                    BraTS-like in-plane size (default 64)\n"
    "      --depth N                   BraTS-like slices (default size*3/8)\n"
    "      --kaggle-size N             Kaggle-like base image size (default 3*size)\n"
    "      --seed N                    (default 1)\n"
    "  glia-prep --help\n";

struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Walks argv; value() consumes the argument after a flag.
class Args {
 public:
  Args(int argc, char** argv, int first) : args_(argv + first, argv + argc) {}
  bool next() { return ++i_ < args_.size(); }
  const std::string& flag() const { return args_[i_]; }
  std::string value() {
    if (i_ + 1 >= args_.size()) throw UsageError(args_[i_] + " needs a value");
    return args_[++i_];
  }
  template <typename T>
  T number() {
    std::string flag = args_[i_], text = value();
    T v{};
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
      throw UsageError(flag + " '" + text + "': expected a non-negative integer");
    }
    return v;
  }

 private:
  std::vector<std::string> args_;
  std::size_t i_ = static_cast<std::size_t>(-1);
};

int run_synth(Args& args) {
  glia::data::SynthOptions opts;
  while (args.next()) {
    const std::string& f = args.flag();
    if (f == "--help" || f == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (f == "--out") {
      opts.out = args.value();
    } else if (f == "--brats-subjects") {
      opts.brats_subjects = args.number<int>();
    } else if (f == "--kaggle-images") {
      opts.kaggle_images = args.number<int>();
    } else if (f == "--size") {
      opts.size = args.number<int>();
    } else if (f == "--depth") {
      opts.depth = args.number<int>();
    } else if (f == "--kaggle-size") {
      opts.kaggle_size = args.number<int>();
    } else if (f == "--seed") {
      opts.seed = args.number<std::uint64_t>();
    } else {
      throw UsageError("unknown option " + f + " for synth");
    }
  }
  if (opts.out.empty()) throw UsageError("synth needs --out DIR");
  glia::data::write_synthetic_dataset(opts);
  std::cout << "wrote " << opts.brats_subjects << " BraTS-like subjects to "
            << (opts.out / "brats").string() << " and " << opts.kaggle_images
            << " Kaggle-like images to " << (opts.out / "kaggle").string() << "\n";
  return 0;
}

int run_prep(Args& args) {
  glia::data::PrepOptions opts;
  opts.preview = 8;  // a user should see what preprocessing did without asking
  bool quiet = false;
  while (args.next()) {
    const std::string& f = args.flag();
    if (f == "--help" || f == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (f == "--brats") {
      opts.brats = args.value();
    } else if (f == "--kaggle") {
      opts.kaggle = args.value();
    } else if (f == "--out") {
      opts.out = args.value();
    } else if (f == "--split") {
      opts.split = glia::data::parse_split_fractions(args.value());
    } else if (f == "--seed") {
      opts.seed = args.number<std::uint64_t>();
    } else if (f == "--min-tumor-pixels") {
      opts.min_tumor_pixels = args.number<int>();
    } else if (f == "--keep") {
      opts.keep = glia::data::parse_keep_policy(args.value());
    } else if (f == "--negatives-per-patient") {
      opts.negatives_per_patient = args.number<int>();
    } else if (f == "--preview") {
      opts.preview = args.number<int>();
    } else if (f == "--skip-bad") {
      opts.skip_bad = true;
    } else if (f == "--quiet") {
      quiet = true;
    } else {
      throw UsageError("unknown option " + f);
    }
  }
  if (opts.brats.empty() && opts.kaggle.empty())
    throw UsageError("give --brats DIR and/or --kaggle DIR");
  if (opts.out.empty()) throw UsageError("--out DIR is required");
  opts.log = [quiet](const std::string& line) {
    if (!quiet || line.starts_with("warning")) std::cerr << line << "\n";
  };
  glia::data::PrepReport report = glia::data::run_prep(opts);
  if (!quiet) std::cout << report.stats.table();
  std::cout << "wrote " << report.slices << " slices, " << (opts.out / "manifest.csv").string()
            << " and " << (opts.out / "stats.json").string() << "\n";
  for (const auto& png : report.previews) std::cout << "preview: " << png.string() << "\n";
  if (!report.skipped.empty()) {
    std::cout << "skipped " << report.skipped.size() << " bad input"
              << (report.skipped.size() == 1 ? "" : "s") << " (--skip-bad)\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc >= 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
      std::cout << kUsage;
      return 0;
    }
    if (argc >= 2 && std::string_view(argv[1]) == "synth") {
      Args args(argc, argv, 2);
      return run_synth(args);
    }
    Args args(argc, argv, 1);
    return run_prep(args);
  } catch (const UsageError& e) {
    std::cerr << "glia-prep: " << e.what() << "\n" << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "glia-prep: error: " << e.what() << "\n";
    return 1;
  }
}
