#!/bin/sh
# End-to-end run of glia-train on a tiny configuration of the built-in demo: the three stages on
# generated phantoms (small volumes, a 2-filter U-Net, one short epoch each), an interrupted run
# resumed with --resume, --init-only, an unknown config key named in the error, and glia-infer on
# the trained checkpoint. Usage: train_e2e.sh GLIA_TRAIN GLIA_INFER SCRATCH_DIR
set -eu
train="$1"
infer="$2"
dir="$3"
rm -rf "$dir"
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT

fail() { echo "train_e2e: $*" >&2; exit 1; }

tiny="--set demo.brats_subjects=3 --set demo.kaggle_images=8 --set demo.size=32
      --set model.base_filters=2 --set model.depth=2 --set model.cls_hidden=8
      --set train.epochs=1 --set train.batch_size=4 --set sampler.epoch_length=8
      --set data.workers=0 --set schedule.warmup_epochs=0"

# shellcheck disable=SC2086
"$train" --out "$dir/run" --data-cache "$dir/cache" --device cpu --no-progress $tiny \
  >"$dir/log.txt" 2>&1 || { cat "$dir/log.txt"; fail "the demo run failed"; }
for f in summary.json run.json stage1/best.safetensors stage2/best.safetensors \
         stage3/best.safetensors stage3/last.optim.safetensors stage3/config.yaml \
         stage3/metrics.jsonl stage3/summary.json; do
  [ -f "$dir/run/$f" ] || fail "no $f"
done
grep -q "test metrics" "$dir/log.txt" || fail "no test metrics printed"
grep -q '"stage": 3' "$dir/run/summary.json" || fail "summary.json lacks stage 3"

# Interrupted after two steps of stage 1, then resumed to the end.
# shellcheck disable=SC2086
"$train" --out "$dir/cut" --data-cache "$dir/cache" --device cpu --no-progress $tiny \
  --max-steps 2 >"$dir/cut.txt" 2>&1 || fail "the interrupted run failed"
grep -q "glia-train --resume" "$dir/cut.txt" || fail "no resume hint after an interruption"
[ ! -f "$dir/cut/stage2/best.safetensors" ] || fail "stage 2 ran after the interruption"
"$train" --resume "$dir/cut" --no-progress >"$dir/resume.txt" 2>&1 ||
  { cat "$dir/resume.txt"; fail "--resume failed"; }
[ -f "$dir/cut/stage3/best.safetensors" ] || fail "the resumed run did not finish"

# --init-only writes a checkpoint of the configured architecture and exits.
# shellcheck disable=SC2086
"$train" --init-only --out "$dir/init" $tiny >/dev/null || fail "--init-only failed"
[ -f "$dir/init/init.safetensors" ] || fail "--init-only wrote no checkpoint"

# A misspelt key is named, with a suggestion.
if "$train" --out "$dir/bad" --set train.epoch=3 2>"$dir/err.txt"; then
  fail "a misspelt key was accepted"
fi
grep -q "train.epochs" "$dir/err.txt" || fail "no suggestion for the misspelt key: $(cat "$dir/err.txt")"

# The trained checkpoint predicts on a preprocessed slice.
slice=$(find "$dir/cache" -name '*.npz' | head -1)
"$infer" --checkpoint "$dir/run/stage3/best.safetensors" --input "$slice" --out "$dir/pred" \
  >/dev/null || fail "glia-infer on the trained checkpoint failed"
[ "$(find "$dir/pred" -name '*.json' | wc -l)" -eq 1 ] || fail "glia-infer wrote no report"
echo "train_e2e: ok"
