#!/bin/sh
# glia-train --distributed end to end under `mpirun -np 2` on a tiny stage-1 run of the demo data:
# - the weights after two epochs equal those of one process with the doubled batch (same order,
#   same augmentation, SyncBatchNorm on), within float tolerance;
# - the validation metrics cover the whole split (the same sample count as one process);
# - only rank 0 writes, and every file of a run is there;
# - --resume with another number of processes is refused naming both; with the same, it finishes;
# - SIGINT to one rank stops both at the same step with a resumable checkpoint (exit 130).
# Usage: train_e2e.sh MPIEXEC GLIA_TRAIN SCRATCH_DIR
set -eu
mpiexec="$1"
train="$2"
dir="$3"
here="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$dir"
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
fail() { echo "train_e2e: $*" >&2; exit 1; }
# --foreground: timeout keeps mpirun in this script's process group, where OpenMPI's terminal
# handling cannot stop it (SIGTTOU/SIGTTIN) when the test runs from a background job.
run2() {
  timeout --foreground 120 "$mpiexec" --oversubscribe -np 2 "$train" --distributed "$@" </dev/null
}

tiny="--stage 1 --set demo.brats_subjects=3 --set demo.kaggle_images=8 --set demo.size=32
      --set model.base_filters=2 --set model.depth=2 --set model.cls_hidden=8
      --set train.epochs=2 --set sampler.epoch_length=12 --set data.workers=0
      --set schedule.warmup_epochs=0 --set distributed.sync_batchnorm=true
      --set distributed.timeout_s=10 --no-progress --device cpu --data-cache $dir/cache"

# shellcheck disable=SC2086
"$train" --out "$dir/one" $tiny --set train.batch_size=4 >"$dir/one.txt" 2>&1 ||
  { cat "$dir/one.txt"; fail "the one-process run failed"; }
# shellcheck disable=SC2086
run2 --out "$dir/two" $tiny --set train.batch_size=2 >"$dir/two.txt" 2>&1 ||
  { cat "$dir/two.txt"; fail "the two-process run failed"; }
for f in summary.json run.json stage1/best.safetensors stage1/last.safetensors \
         stage1/last.optim.safetensors stage1/metrics.jsonl stage1/summary.json stage1/config.yaml; do
  [ -f "$dir/two/$f" ] || fail "the two-process run wrote no $f"
done
grep -q "2 processes" "$dir/two.txt" || fail "rank 0 did not report the world size"
[ "$(grep -c "stage 1 epoch" "$dir/two.txt")" -eq 2 ] || fail "epoch lines not printed once each"
# 1e-4: two epochs of float32 SGD through a U-Net whose sums run in another order.
python3 "$here/compare_safetensors.py" "$dir/one/stage1/last.safetensors" \
  "$dir/two/stage1/last.safetensors" 1e-4 1e-4 ||
  fail "two ranks ended with other weights than one process with the doubled batch"
count() { grep -o '"overall":{"accuracy":[^}]*"count":[0-9]*' "$1" | tail -1 | grep -o '"count":[0-9]*'; }
[ -n "$(count "$dir/two/stage1/metrics.jsonl")" ] || fail "no validation count in metrics.jsonl"
[ "$(count "$dir/one/stage1/metrics.jsonl")" = "$(count "$dir/two/stage1/metrics.jsonl")" ] ||
  fail "validation counted other samples than one process"

# Interrupted after one step, resumed: with one process refused, with two finished.
# shellcheck disable=SC2086
run2 --out "$dir/cut" $tiny --set train.batch_size=2 --max-steps 1 >"$dir/cut.txt" 2>&1 ||
  { cat "$dir/cut.txt"; fail "the interrupted run failed"; }
if "$train" --resume "$dir/cut" --no-progress >"$dir/wrong.txt" 2>&1; then
  fail "--resume with one process of a two-process run succeeded"
fi
grep -q "same number" "$dir/wrong.txt" || { cat "$dir/wrong.txt"; fail "no world-size error"; }
run2 --resume "$dir/cut" --no-progress >"$dir/resume.txt" 2>&1 ||
  { cat "$dir/resume.txt"; fail "--resume with two processes failed"; }
grep -q '"interrupted": false' "$dir/cut/stage1/summary.json" || fail "the resumed run did not finish"

# SIGINT to rank 1 alone: both ranks stop at the same step, rank 0 saves, exit 130.
# shellcheck disable=SC2086
timeout --foreground 120 "$mpiexec" --oversubscribe -np 2 "$train" --distributed --out "$dir/sig" \
  $tiny --set train.batch_size=2 --set train.epochs=1000 </dev/null >"$dir/sig.txt" 2>&1 &
launcher=$!
i=0
until [ -f "$dir/sig/stage1/last.safetensors" ] || [ $i -ge 600 ]; do sleep 0.1; i=$((i + 1)); done
[ -f "$dir/sig/stage1/last.safetensors" ] || fail "the run to interrupt wrote no checkpoint"
rank1=""
for pid in $(pgrep -f "glia-train --distributed --out $dir/sig"); do
  [ "$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -c '^OMPI_COMM_WORLD_RANK=1$')" = 1 ] &&
    rank1=$pid
done
[ -n "$rank1" ] || fail "rank 1's process not found"
kill -INT "$rank1"
status=0
wait "$launcher" || status=$?
[ "$status" -eq 130 ] || { cat "$dir/sig.txt"; fail "exit status $status after SIGINT, not 130"; }
grep -q "glia-train --resume" "$dir/sig.txt" || fail "no resume hint after SIGINT"
grep -q '"interrupted": true' "$dir/sig/stage1/summary.json" || fail "summary not interrupted"
echo "train_e2e: distributed training end to end passed"
