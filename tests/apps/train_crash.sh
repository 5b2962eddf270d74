#!/bin/sh
# Crash safety of glia-train: a tiny three-stage run is killed with SIGKILL at KILLS random
# moments (seeded; the seed and each moment are printed), with every atomic write paused before
# its rename (GLIA_ATOMIC_WRITE_DELAY_MS); every second kill waits from its moment for the next
# write (every fourth for the optimiser state's) to be under way, so half the kills land inside
# checkpoint writes. After
# each kill every model checkpoint on disk must load (glia-model --summary) and --resume must
# finish the run with the very checkpoints of a run that was never killed. Then a full disk and an output folder that became read-only (a small tmpfs,
# when this user may mount one) must stop the run with a clear error and leave the last good
# checkpoint intact. Usage: train_crash.sh GLIA_TRAIN GLIA_MODEL SCRATCH_DIR [KILLS [SEED]]
set -eu
train="$1"
model="$2"
dir="$3"
kills="${4:-20}"
seed="${5:-$(date +%s)}"
rm -rf "$dir"
mkdir -p "$dir"
mnt="$dir/tmpfs"
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt"; fi
  rm -rf "$dir"
}
trap cleanup EXIT

fail() { echo "train_crash: $*" >&2; exit 1; }

tiny="--set demo.brats_subjects=3 --set demo.kaggle_images=8 --set demo.size=32
      --set model.base_filters=2 --set model.depth=2 --set model.cls_hidden=8
      --set train.epochs=2 --set train.batch_size=4 --set sampler.epoch_length=8
      --set data.workers=0 --set schedule.warmup_epochs=0"
delay_ms=60
# Spinning OpenMP threads on a busy machine would stretch each run many times over.
export OMP_WAIT_POLICY=passive

# Seconds since the epoch with millisecond resolution (POSIX sh has no $RANDOM or fractions).
now_ms() { date +%s%3N; }

# The demo data first (one step of stage 1), then a reference run gives the run's length for the
# kill moments.
# shellcheck disable=SC2086
"$train" --out "$dir/data" --data-cache "$dir/cache" --device cpu --no-progress $tiny \
  --stage 1 --max-steps 1 >"$dir/data.txt" 2>&1 || { cat "$dir/data.txt"; fail "the data run failed"; }
start=$(now_ms)
# shellcheck disable=SC2086
GLIA_ATOMIC_WRITE_DELAY_MS=$delay_ms "$train" --out "$dir/ref" --data-cache "$dir/cache" \
  --device cpu --no-progress $tiny >"$dir/ref.txt" 2>&1 || { cat "$dir/ref.txt"; fail "the reference run failed"; }
length_ms=$(($(now_ms) - start))
echo "train_crash: seed $seed, $kills kills in a run of $length_ms ms, writes paused $delay_ms ms"

# Every model checkpoint (not the optimiser states, which --resume itself loads) must load.
check_checkpoints() {
  for f in $(find "$1" -name '*.safetensors' ! -name '.tmp.*' ! -name '*.optim.*'); do
    "$model" --summary "$f" >/dev/null 2>"$dir/check.txt" ||
      fail "kill $2: $f does not load: $(cat "$dir/check.txt")"
  done
}

in_write=0
i=1
while [ "$i" -le "$kills" ]; do
  run="$dir/run$i"
  # A moment in the run (0 .. length): the i-th draw of a seeded Lehmer generator.
  at_ms=$(awk -v s="$seed" -v i="$i" -v n="$length_ms" 'BEGIN {
    x = s % 2147483646 + 1
    for (k = 0; k < i + 2; k++) x = (x * 48271) % 2147483647
    printf "%d", x % n }')
  # shellcheck disable=SC2086
  GLIA_ATOMIC_WRITE_DELAY_MS=$delay_ms "$train" --out "$run" --data-cache "$dir/cache" \
    --device cpu --no-progress $tiny >"$dir/kill$i.txt" 2>&1 &
  pid=$!
  sleep "$(awk -v ms="$at_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
  if [ $((i % 2)) -eq 0 ]; then
    # Every second kill waits from its moment for the next write to be under way; every fourth
    # for a write of the optimiser state, which pairs with the model checkpoint.
    pattern='.tmp.*'
    [ $((i % 4)) -ne 0 ] || pattern='.tmp.*optim*'
    while [ -z "$(find "$run" -name "$pattern" 2>/dev/null)" ] && kill -0 "$pid" 2>/dev/null; do
      sleep 0.01
    done
  fi
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  where="between writes"
  temp=$(find "$run" -name '.tmp.*' 2>/dev/null | head -1)
  if [ -n "$temp" ]; then
    where="inside the write of $(basename "$(dirname "$temp")")/${temp##*/}"
    in_write=$((in_write + 1))
  fi
  echo "train_crash: kill $i at $at_ms ms ($where)"
  if [ -d "$run" ]; then check_checkpoints "$run" "$i"; fi
  if [ ! -f "$run/run.json" ]; then
    # Killed before the run recorded its arguments: nothing to resume, and --resume says so.
    if "$train" --resume "$run" --no-progress >"$dir/resume$i.txt" 2>&1 ||
      ! grep -q "run.json" "$dir/resume$i.txt"; then
      fail "kill $i: --resume of a run that never started did not name run.json"
    fi
    echo "train_crash: kill $i came before the run started; running it afresh"
    rm -rf "$run"
    # shellcheck disable=SC2086
    "$train" --out "$run" --data-cache "$dir/cache" --device cpu --no-progress $tiny \
      >"$dir/resume$i.txt" 2>&1 || fail "kill $i: the fresh run failed"
  else
    "$train" --resume "$run" --no-progress >"$dir/resume$i.txt" 2>&1 ||
      { cat "$dir/kill$i.txt" "$dir/resume$i.txt"; fail "kill $i at $at_ms ms: --resume failed"; }
  fi
  [ -f "$run/stage3/best.safetensors" ] || fail "kill $i: the resumed run did not finish"
  grep -q '"interrupted": false' "$run/summary.json" || fail "kill $i: summary.json says interrupted"
  [ -z "$(find "$run" -name '.tmp.*')" ] || fail "kill $i: temporary files were left behind"
  check_checkpoints "$run" "$i"
  # Resuming is exact: the same weights and optimiser state as the run that was never killed.
  for f in stage1/best stage1/last stage1/last.optim stage2/best stage2/last stage2/last.optim \
           stage3/best stage3/last stage3/last.optim; do
    cmp -s "$run/$f.safetensors" "$dir/ref/$f.safetensors" ||
      fail "kill $i at $at_ms ms: $f.safetensors differs from the uninterrupted run's"
  done
  rm -rf "$run"
  i=$((i + 1))
done
echo "train_crash: $kills kills resumed, $in_write of them inside a write"
[ "$in_write" -gt 0 ] || fail "no kill landed inside a write: the pause did not work"

# A full disk and a read-only folder need a file system of our own.
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=4m tmpfs "$mnt" 2>/dev/null; then
  echo "train_crash: SKIPPED the full-disk and read-only checks: cannot mount a tmpfs here"
  exit 0
fi
# Stage 1 stops after two steps with a resumable checkpoint.
# shellcheck disable=SC2086
"$train" --out "$mnt/run" --data-cache "$dir/cache" --device cpu --no-progress $tiny \
  --max-steps 2 >"$dir/cut.txt" 2>&1 || { cat "$dir/cut.txt"; fail "the interrupted run failed"; }
last="$mnt/run/stage1/last.safetensors"
[ -f "$last" ] || fail "no resumable checkpoint"
sum=$(cksum <"$last")

# Full disk: fill the file system, then resume.
dd if=/dev/zero of="$mnt/fill" bs=64k >/dev/null 2>&1 || true
dd if=/dev/zero of="$mnt/fill2" bs=4k >/dev/null 2>&1 || true
if "$train" --resume "$mnt/run" --no-progress >"$dir/full.txt" 2>&1; then
  fail "the run went on with a full disk"
fi
grep -q "No space left on device" "$dir/full.txt" || fail "no clear error on a full disk: $(tail -3 "$dir/full.txt")"
grep -q "last good checkpoint: $last" "$dir/full.txt" ||
  fail "the full-disk error does not name the last good checkpoint: $(tail -3 "$dir/full.txt")"
[ "$(cksum <"$last")" = "$sum" ] || fail "the last good checkpoint changed on a full disk"
"$model" --summary "$last" >/dev/null || fail "the last good checkpoint no longer loads"
echo "train_crash: full disk: $(grep -o 'stage 1: .*' "$dir/full.txt" | head -1)"
rm -f "$mnt/fill" "$mnt/fill2"
[ -z "$(find "$mnt/run" -name '.tmp.*')" ] || fail "a full disk left temporary files behind"

# Read-only folder.
mount -o remount,ro "$mnt"
if "$train" --resume "$mnt/run" --no-progress >"$dir/ro.txt" 2>&1; then
  fail "the run went on in a read-only folder"
fi
grep -q "Read-only file system" "$dir/ro.txt" || fail "no clear error in a read-only folder: $(tail -3 "$dir/ro.txt")"
[ "$(cksum <"$last")" = "$sum" ] || fail "the last good checkpoint changed in a read-only folder"
"$model" --summary "$last" >/dev/null || fail "the last good checkpoint no longer loads"
grep -q "last good checkpoint: $last" "$dir/ro.txt" ||
  fail "the read-only error does not name the last good checkpoint: $(tail -3 "$dir/ro.txt")"
echo "train_crash: read-only: $(grep -o 'stage 1: .*' "$dir/ro.txt" | head -1)"

# Writable again: the run finishes from the same checkpoint.
mount -o remount,rw "$mnt"
"$train" --resume "$mnt/run" --no-progress >"$dir/final.txt" 2>&1 ||
  { cat "$dir/final.txt"; fail "--resume failed once the disk was writable again"; }
[ -f "$mnt/run/stage3/best.safetensors" ] || fail "the run did not finish"
echo "train_crash: ok"
