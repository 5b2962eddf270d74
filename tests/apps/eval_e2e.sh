#!/bin/sh
# End-to-end run of glia-eval: phantoms through glia-prep, two untrained checkpoints from
# glia-model, then glia-eval with --compare and with --gradcam; checks that results.json and results.txt name both
# checkpoints and carry the per-source and per-patient sections, and that bad input (a folder
# without a manifest, an unreadable checkpoint, an unknown flag) fails naming it.
# Usage: eval_e2e.sh GLIA_PREP GLIA_MODEL GLIA_EVAL SCRATCH_DIR
set -eu
prep="$1"
model="$2"
eval="$3"
dir="$4"
rm -rf "$dir"
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT

fail() { echo "eval_e2e: $*" >&2; exit 1; }

"$prep" synth --out "$dir/raw" --brats-subjects 6 --kaggle-images 8 --size 32 --seed 3 >/dev/null
"$prep" --brats "$dir/raw/brats" --kaggle "$dir/raw/kaggle" --out "$dir/data" --seed 1 \
  --keep balanced --negatives-per-patient 1 >/dev/null
for seed in 1 2; do
  mkdir -p "$dir/seed$seed"
  "$model" --init --seed "$seed" --base-filters 4 --depth 2 --cls-hidden 8 \
    --out "$dir/seed$seed/model.safetensors" >/dev/null
done

"$eval" --checkpoint "$dir/seed1/model.safetensors" --compare "$dir/seed2/model.safetensors" \
  --data "$dir/data" --split test --out "$dir/eval" --device cpu --batch 4 >"$dir/stdout.txt" ||
  fail "glia-eval failed: $(cat "$dir/stdout.txt")"
[ -f "$dir/eval/results.json" ] || fail "no results.json"
[ -f "$dir/eval/results.txt" ] || fail "no results.txt"
for seed in 1 2; do
  grep -q "seed$seed/model.safetensors" "$dir/eval/results.json" || fail "seed$seed not in the JSON"
  grep -q "seed$seed/model.safetensors" "$dir/eval/results.txt" || fail "seed$seed not in the table"
done
for section in "== overall ==" "== brats ==" "== kaggle ==" "dice (patient)" "ece (15 bins)"; do
  grep -qF "$section" "$dir/stdout.txt" || fail "'$section' missing from the printed table"
done

"$eval" --checkpoint "$dir/seed1/model.safetensors" --data "$dir/data" --out "$dir/cam" \
  --device cpu --batch 4 --gradcam >"$dir/stdout.txt" || fail "glia-eval --gradcam failed"
grep -q "pointing game" "$dir/stdout.txt" || fail "no Grad-CAM rows with --gradcam"
grep -q '"gradcam"' "$dir/cam/results.json" || fail "no Grad-CAM entry in the JSON"

"$eval" --help | grep -q "glia-eval --checkpoint" || fail "--help does not print the usage"
if "$eval" --checkpoint "$dir/seed1/model.safetensors" --data "$dir/raw" 2>"$dir/err.txt"; then
  fail "a folder without a manifest was accepted"
fi
grep -q "manifest.csv" "$dir/err.txt" || fail "the missing manifest is not named: $(cat "$dir/err.txt")"
echo "not a checkpoint" >"$dir/broken.safetensors"
if "$eval" --checkpoint "$dir/broken.safetensors" --data "$dir/data" --out "$dir/e2" \
  2>"$dir/err.txt" >/dev/null; then
  fail "an unreadable checkpoint was accepted"
fi
grep -q "broken.safetensors" "$dir/err.txt" || fail "the bad checkpoint is not named: $(cat "$dir/err.txt")"
if "$eval" --checkpoint x --data y --frobnicate 2>"$dir/err.txt"; then
  fail "an unknown flag was accepted"
fi
grep -q -- "--frobnicate" "$dir/err.txt" || fail "the unknown flag is not named"
echo "eval_e2e: ok"
