// The preprocessing pipeline behind glia-prep; see prep.h for the layout and the rules.
#include "data/prep/prep.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <span>
#include <stdexcept>

#include "data/prep/portable_random.h"
#include "data/prep/preprocess.h"
#include "data/prep/preview.h"
#include "io/image.h"
#include "io/image_ops.h"
#include "io/manifest.h"
#include "io/nifti.h"
#include "io/slice.h"

namespace glia::data {
namespace {

namespace fs = std::filesystem;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_nifti_name(const std::string& name) {
  std::string l = lower(name);
  return l.ends_with(".nii") || l.ends_with(".nii.gz");
}

bool is_image_name(const std::string& name) {
  std::string ext = lower(fs::path(name).extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// Regular files of a folder, sorted by name (directory order differs between file systems).
std::vector<fs::path> sorted_entries(const fs::path& dir, bool folders) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (folders ? e.is_directory() : e.is_regular_file()) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void require_folder(const fs::path& dir, const char* what) {
  if (!fs::is_directory(dir)) {
    throw std::runtime_error(std::string(what) + " folder " + dir.string() +
                             " does not exist or is not a folder");
  }
}

// The one file in `dir` whose lower-case name contains `key` and ends in .nii / .nii.gz.
fs::path find_one_nifti(const fs::path& dir, const std::string& key, const std::string& subject) {
  std::vector<fs::path> hits;
  for (const auto& f : sorted_entries(dir, false)) {
    std::string name = f.filename().string();
    if (is_nifti_name(name) && lower(name).find(key) != std::string::npos) hits.push_back(f);
  }
  if (hits.empty()) {
    throw std::runtime_error("BraTS subject " + subject + ": no " + key + " file (*" + key +
                             "*.nii or *" + key + "*.nii.gz) in " + dir.string());
  }
  if (hits.size() > 1) {
    throw std::runtime_error("BraTS subject " + subject + ": " + std::to_string(hits.size()) + " " +
                             key + " files in " + dir.string() + " (" +
                             hits[0].filename().string() + ", " + hits[1].filename().string() +
                             "); keep one");
  }
  return hits[0];
}

double nonzero_fraction(std::span<const float> px) {
  return static_cast<double>(std::count_if(px.begin(), px.end(), [](float v) { return v != 0; })) /
         static_cast<double>(px.size());
}

// Tiles on a source's outlier sheet at most: enough to see what went wrong.
constexpr std::size_t kMaxOutlierTiles = 32;

std::string percent(double f) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f%%", 100.0 * f);
  return text;
}

std::string shape_text(const io::Volume& v) {
  return std::to_string(v.nx) + "x" + std::to_string(v.ny) + "x" + std::to_string(v.nz);
}

// Gives every input (a BraTS subject, a Kaggle file) a distinct file-name stem, also when two
// names sanitise alike or two Kaggle files share a stem.
class StemTable {
 public:
  const std::string& stem(const std::string& source, const std::string& input,
                          const std::string& patient) {
    auto key = std::make_pair(source, input);
    auto it = stems_.find(key);
    if (it != stems_.end()) return it->second;
    std::string base = sanitize_name(patient), candidate = base;
    for (int k = 2; !used_.insert({source, candidate}).second; ++k) {
      candidate = base + "~" + std::to_string(k);
    }
    return stems_.emplace(key, candidate).first->second;
  }

 private:
  std::map<std::pair<std::string, std::string>, std::string> stems_;
  std::set<std::pair<std::string, std::string>> used_;
};

class Pipeline {
 public:
  explicit Pipeline(const PrepOptions& opts) : opts_(opts) {}

  void log(const std::string& line) const {
    if (opts_.log) opts_.log(line);
  }

  // Records a bad subject / image under skip_bad, or rethrows.
  void bad(const std::string& what, const std::exception& e) {
    if (!opts_.skip_bad) throw;
    report_.skipped.push_back(what + ": " + e.what());
    log("warning: skipping " + what + ": " + e.what());
  }

  // `input` names the subject folder or image file the slice comes from, `origin` the file (and
  // slice) to show and to name in warnings, `kept` the share of it kept as the scan.
  void emit(io::Slice slice, const std::string& input, const std::string& split,
            std::int64_t tumor_pixels, double kept, const PreviewOrigin& origin) {
    const std::string stem = stems_.stem(slice.source, input, slice.patient);
    const std::string rel =
        split + "/" + slice.source + "/" + stem + "_" + std::to_string(slice.slice) + ".npz";
    fs::create_directories(opts_.out / split / slice.source);
    io::write_slice(opts_.out / rel, slice);
    report_.stats.add(slice.source, split, slice.label, slice.mask.has_value(), slice.image);
    io::ManifestEntry e;
    e.path = rel;
    e.split = split;
    e.source = slice.source;
    e.patient = slice.patient;
    e.slice = slice.slice;
    e.label = slice.label;
    e.has_mask = slice.mask.has_value();
    e.tumor_pixels = tumor_pixels;
    e.kept_fraction = kept;
    const bool image_file = origin.z < 0;
    report_.stats.add_kept(
        e.source, origin.file.string() + (image_file ? "" : " slice " + std::to_string(origin.z)),
        kept, image_file);
    if (opts_.preview > 0) previews_.push_back({e.source, split, rel, origin});
    entries_.push_back(std::move(e));
  }

  void brats() {
    require_folder(opts_.brats, "BraTS");
    auto subjects = sorted_entries(opts_.brats, true);
    if (subjects.empty()) {
      throw std::runtime_error("BraTS folder " + opts_.brats.string() +
                               " holds no subject folders");
    }
    std::vector<std::string> ids;
    for (const auto& s : subjects) ids.push_back(s.filename().string());
    auto split = split_by_group(ids, opts_.split, opts_.seed);
    for (const auto& dir : subjects) {
      const std::string id = dir.filename().string();
      const std::size_t before = entries_.size();
      try {
        subject(dir, id, split.at(id));
        ++report_.brats_subjects;
      } catch (const std::exception& e) {
        // Inputs are all checked before the first slice is written; a failure after that is
        // an output problem, and skipping would leave half a subject in the manifest.
        if (entries_.size() != before) throw;
        bad("BraTS subject " + id, e);
      }
    }
    log("BraTS: " + std::to_string(report_.brats_subjects) + " subjects, " +
        std::to_string(report_.brats_slices_seen) + " slices with brain");
  }

  void subject(const fs::path& dir, const std::string& id, const std::string& split) {
    const fs::path flair_path = find_one_nifti(dir, "flair", id);
    const fs::path seg_path = find_one_nifti(dir, "seg", id);
    const io::Volume flair = io::read_nifti(flair_path);
    const io::Volume seg = io::read_nifti(seg_path);
    if (seg.nx != flair.nx || seg.ny != flair.ny || seg.nz != flair.nz) {
      throw std::runtime_error("BraTS subject " + id + ": seg " + seg_path.string() +
                               " has shape " + shape_text(seg) + " but FLAIR " +
                               flair_path.string() + " has shape " + shape_text(flair));
    }
    const int h = static_cast<int>(flair.ny), w = static_cast<int>(flair.nx);

    // Pass 1: which slices hold brain, and their resized masks and labels (cheap).
    struct Candidate {
      int z;
      std::vector<std::uint8_t> mask;
      std::int64_t tumor;
    };
    std::vector<Candidate> positives, negatives;
    for (std::int64_t z = 0; z < flair.nz; ++z) {
      if (!slice_has_brain(axial_slice(flair, z))) continue;
      ++report_.brats_slices_seen;
      const std::span<const float> lab = axial_slice(seg, z);
      std::vector<std::uint8_t> mask(lab.size());
      for (std::size_t i = 0; i < lab.size(); ++i) mask[i] = lab[i] > 0.5f ? 1 : 0;
      auto resized = io::resize_nearest(mask, h, w, io::kSliceSize, io::kSliceSize);
      std::int64_t tumor =
          std::count_if(resized.begin(), resized.end(), [](std::uint8_t m) { return m != 0; });
      Candidate c{static_cast<int>(z), std::move(resized), tumor};
      (tumor >= opts_.min_tumor_pixels ? positives : negatives).push_back(std::move(c));
    }

    // The keep policy; balanced draws the negatives from a per-patient stream.
    std::vector<Candidate> kept = std::move(positives);
    if (opts_.keep == KeepPolicy::all) {
      for (auto& c : negatives) kept.push_back(std::move(c));
    } else if (opts_.keep == KeepPolicy::balanced) {
      std::mt19937_64 rng(opts_.seed ^ stable_hash(id));
      shuffle_in_place(negatives, rng);
      const std::size_t n = std::min<std::size_t>(
          negatives.size(), static_cast<std::size_t>(opts_.negatives_per_patient));
      for (std::size_t i = 0; i < n; ++i) kept.push_back(std::move(negatives[i]));
    }
    std::sort(kept.begin(), kept.end(),
              [](const Candidate& a, const Candidate& b) { return a.z < b.z; });

    // Pass 2: normalise and write the kept slices.
    for (auto& c : kept) {
      io::Slice s;
      s.image = prepare_axial_slice(flair, c.z);
      s.mask = std::move(c.mask);
      s.label = c.tumor >= opts_.min_tumor_pixels ? 1 : 0;
      s.source = "brats";
      s.patient = id;
      s.slice = c.z;
      const double kept = nonzero_fraction(axial_slice(flair, c.z));
      emit(std::move(s), id, split, c.tumor, kept, {flair_path, c.z});
    }
  }

  void kaggle() {
    require_folder(opts_.kaggle, "Kaggle");
    std::vector<fs::path> files;
    std::vector<std::string> keys;
    std::vector<int> classes;
    for (auto [folder, label] : {std::pair{"yes", 1}, std::pair{"no", 0}}) {
      const fs::path dir = opts_.kaggle / folder;
      require_folder(dir, "Kaggle class");
      int found = 0;
      for (const auto& f : sorted_entries(dir, false)) {
        if (!is_image_name(f.filename().string())) continue;
        files.push_back(f);
        keys.push_back(std::string(folder) + "/" + f.filename().string());
        classes.push_back(label);
        ++found;
      }
      if (found == 0) {
        throw std::runtime_error("Kaggle class folder " + dir.string() +
                                 " holds no images (.jpg, .jpeg, .png)");
      }
    }
    auto split = split_stratified(keys, classes, opts_.split, opts_.seed);
    for (std::size_t i = 0; i < files.size(); ++i) {
      try {
        io::Slice s;
        PreparedImage prepared = prepare_image(files[i]);
        s.image = std::move(prepared.slice);
        const double kept = prepared.head_fraction;
        s.label = classes[i];
        s.source = "kaggle";
        s.patient = files[i].stem().string();
        s.slice = 0;
        emit(std::move(s), keys[i], split[i], 0, kept, {files[i], -1});
        ++report_.kaggle_images;
      } catch (const std::exception& e) {
        bad("Kaggle image " + files[i].string(), e);
      }
    }
    log("Kaggle: " + std::to_string(report_.kaggle_images) + " images");
  }

  // Names each image whose kept share breaks the rule in data/prep/stats.h and, with previews
  // on, shows the first kMaxOutlierTiles of them on <source>_outliers.png.
  void report_kept_outliers() {
    for (const auto& [source, k] : report_.stats.kept()) {
      if (k.outliers.empty()) continue;
      std::string where = "; see them with --preview N";
      if (opts_.preview > 0) {
        std::set<std::string> names;
        for (const auto& o : k.outliers) names.insert(o.name);
        std::vector<PreviewItem> shown;
        for (const auto& item : previews_) {
          if (item.source == source && item.origin.z < 0 &&
              names.count(item.origin.file.string()) && shown.size() < kMaxOutlierTiles) {
            shown.push_back(item);
          }
        }
        if (!shown.empty()) {
          report_.previews.push_back(write_sheet(opts_.out, source + "_outliers", shown));
          where = "; see " + report_.previews.back().string();
        }
      }
      for (const auto& o : k.outliers) {
        const bool low = o.fraction < k.low;
        log("warning: " + o.name + " keeps " + percent(o.fraction) + " of the image as head (" +
            source + " median " + percent(k.median) + ", expected " + percent(k.low) + " to " +
            percent(k.high) + "): " +
            (low ? "the head region may have lost part of the head"
                 : "the background or a frame may have been kept as head") +
            where);
      }
    }
  }

  PrepReport finish() {
    report_.slices = static_cast<std::int64_t>(entries_.size());
    write_stats_json(opts_.out / "stats.json", report_.stats);
    clear_previews(opts_.out);
    report_.previews = write_previews(opts_.out, previews_, opts_.preview, opts_.seed);
    report_kept_outliers();
    io::write_manifest(opts_.out / "manifest.csv", entries_);
    return std::move(report_);
  }

 private:
  const PrepOptions& opts_;
  PrepReport report_;
  StemTable stems_;
  std::vector<io::ManifestEntry> entries_;
  std::vector<PreviewItem> previews_;
};

}  // namespace

KeepPolicy parse_keep_policy(const std::string& text) {
  if (text == "all") return KeepPolicy::all;
  if (text == "tumor") return KeepPolicy::tumor;
  if (text == "balanced") return KeepPolicy::balanced;
  throw std::invalid_argument("--keep '" + text + "': expected tumor, all or balanced");
}

std::string sanitize_name(const std::string& name) {
  std::string out;
  for (char c : name) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    out += ok ? c : '_';
  }
  // A leading dot would hide the file; an empty name would leave only "_<slice>".
  if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');
  return out;
}

PrepReport run_prep(const PrepOptions& opts) {
  if (opts.brats.empty() && opts.kaggle.empty()) {
    throw std::invalid_argument("glia-prep: give --brats DIR, --kaggle DIR or both");
  }
  if (opts.out.empty()) throw std::invalid_argument("glia-prep: --out DIR is required");
  if (opts.min_tumor_pixels < 1) {
    throw std::invalid_argument("--min-tumor-pixels must be >= 1, got " +
                                std::to_string(opts.min_tumor_pixels));
  }
  if (opts.negatives_per_patient < 0) {
    throw std::invalid_argument("--negatives-per-patient must be >= 0, got " +
                                std::to_string(opts.negatives_per_patient));
  }
  if (opts.preview < 0) {
    throw std::invalid_argument("--preview must be >= 0, got " + std::to_string(opts.preview));
  }
  fs::create_directories(opts.out);
  Pipeline p(opts);
  if (!opts.brats.empty()) p.brats();
  if (!opts.kaggle.empty()) p.kaggle();
  return p.finish();
}

}  // namespace glia::data
