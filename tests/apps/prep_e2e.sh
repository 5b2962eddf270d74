#!/bin/sh
# End-to-end run of glia-prep: generate a small phantom set with `glia-prep synth`, preprocess it,
# and check the outputs exist and agree (manifest rows = .npz files), that the default contact
# sheets are written and --preview 0 writes none, that --help works and that an unknown flag fails
# naming it. Usage: prep_e2e.sh GLIA_PREP SCRATCH_DIR
set -eu
prep="$1"
dir="$2"
rm -rf "$dir"
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT

fail() { echo "prep_e2e: $*" >&2; exit 1; }

"$prep" --help | grep -q "glia-prep synth" || fail "--help does not print the usage"
if "$prep" --out "$dir/x" --brats "$dir" --frobnicate 2>"$dir/err.txt"; then
  fail "an unknown flag was accepted"
fi
grep -q -- "--frobnicate" "$dir/err.txt" || fail "the unknown flag is not named: $(cat "$dir/err.txt")"

"$prep" synth --out "$dir/raw" --brats-subjects 4 --kaggle-images 10 --size 32 --seed 5
[ -f "$dir/raw/brats/BraTS20_Training_001/BraTS20_Training_001_flair.nii.gz" ] ||
  fail "synth wrote no BraTS-like FLAIR"
[ -f "$dir/raw/brats/BraTS20_Training_004/BraTS20_Training_004_Seg.nii" ] ||
  fail "synth wrote no differently named seg"

"$prep" --brats "$dir/raw/brats" --kaggle "$dir/raw/kaggle" --out "$dir/out" --seed 1 \
  --keep balanced --negatives-per-patient 2
[ -f "$dir/out/stats.json" ] || fail "no stats.json"
rows=$(($(wc -l <"$dir/out/manifest.csv") - 1))
files=$(find "$dir/out" -name '*.npz' | wc -l)
[ "$rows" -gt 10 ] || fail "only $rows manifest rows"
[ "$rows" -eq "$files" ] || fail "$rows manifest rows but $files .npz files"
head -1 "$dir/out/manifest.csv" | grep -qx "path,split,source,patient,slice,label,has_mask,tumor_pixels,kept_fraction" ||
  fail "manifest header"
for sheet in brats_train kaggle_train; do
  [ -f "$dir/out/preview/$sheet.png" ] || fail "no default preview sheet $sheet.png"
done
"$prep" --kaggle "$dir/raw/kaggle" --out "$dir/out0" --preview 0 --quiet >/dev/null
[ ! -e "$dir/out0/preview" ] || fail "--preview 0 still wrote a preview"
echo "prep_e2e: $rows slices"
