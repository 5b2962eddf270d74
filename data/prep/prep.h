// glia-prep's pipeline: raw BraTS volumes and Kaggle images in, 1x256x256 z-scored `.npz` slices,
// a manifest and statistics out.
//
// Output layout under `out`: manifest.csv (io/manifest.h), stats.json (data/prep/stats.h), and
// slices at <split>/<source>/<patient>_<slice>.npz (io/slice.h), the name reduced to
// [A-Za-z0-9._-] (others become '_'; a name that collides after that gets "~2", "~3", ...).
//
// BraTS (folder of subject folders): a subject's FLAIR is its one `*flair*.nii[.gz]` file and its
// seg the one `*seg*.nii[.gz]` (case-insensitive; the real release names one seg differently).
// Each axial slice z with a non-zero FLAIR voxel is kept: image through prepare_slice (bilinear to
// 256x256, z-score over the non-zero pixels), mask = label > 0 resized with nearest neighbour,
// label = 1 when the resized mask has >= min_tumor_pixels pixels. keep: all slices, only tumour
// slices, or balanced = tumour slices + negatives_per_patient negatives drawn per patient.
// Kaggle (folder with yes/ and no/): every .jpg/.jpeg/.png (any case) is one slice, label from
// the folder, patient = file stem, no mask. Other files are ignored.
// Kept share (manifest column kept_fraction, summarised in stats.json): of an image file the
// fraction of its pixels in head_region, of a BraTS slice the fraction of non-zero FLAIR pixels,
// both at the original size. An image file whose share is an outlier of its source (the rule is in
// data/prep/stats.h) is named in a warning on the log; BraTS slices are not checked, since the top
// and bottom slices of a head are small by anatomy.
// With preview > 0, contact sheets go to preview/ (data/prep/preview.h), drawn with `seed`, and
// the flagged images (up to 32) of a source to preview/<source>_outliers.png; sheets an earlier
// run left there are removed first.
// Splits (data/prep/split.h): BraTS by patient, Kaggle stratified by class, both from `seed`;
// negatives are drawn from std::mt19937_64(seed ^ stable_hash(patient)) so they do not depend on
// the other patients. Same inputs + options -> byte-identical outputs. Errors name the file or
// folder: a missing or empty input folder, a subject without FLAIR or seg (or with two), a seg
// whose shape differs from its FLAIR (both files named), an unreadable volume or image. With
// skip_bad a bad subject or image is reported as a warning and counted instead; folder-level errors
// stay errors. Tested in tests/data/prep/prep_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "data/prep/split.h"
#include "data/prep/stats.h"

namespace glia::data {

enum class KeepPolicy { all, tumor, balanced };

// "all" | "tumor" | "balanced"; throws std::invalid_argument naming the value.
KeepPolicy parse_keep_policy(const std::string& text);

struct PrepOptions {
  std::filesystem::path brats;   // empty: no BraTS input
  std::filesystem::path kaggle;  // empty: no Kaggle input
  std::filesystem::path out;
  SplitFractions split;
  std::uint64_t seed = 0;
  int min_tumor_pixels = 10;
  KeepPolicy keep = KeepPolicy::all;
  int negatives_per_patient = 2;  // for KeepPolicy::balanced
  bool skip_bad = false;
  // Contact sheets of up to `preview` random slices per (source, split) (data/prep/preview.h);
  // 0: none.
  int preview = 0;
  // Progress and warnings, one line each (the app prints them); may be empty.
  std::function<void(const std::string&)> log;
};

struct PrepReport {
  std::int64_t slices = 0;             // rows in the manifest
  int brats_subjects = 0;              // subjects read
  std::int64_t brats_slices_seen = 0;  // slices with brain, before the keep policy
  int kaggle_images = 0;               // images read
  std::vector<std::string> skipped;    // "what: why" for each bad subject / image (skip_bad)
  DatasetStats stats;
  std::vector<std::filesystem::path> previews;  // contact sheets written
};

// File-system-safe form of a patient name (see above); never empty.
std::string sanitize_name(const std::string& name);

// Runs the pipeline and writes the outputs; the manifest is written last.
PrepReport run_prep(const PrepOptions& opts);

}  // namespace glia::data
