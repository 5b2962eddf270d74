#!/usr/bin/env bash
# glia vs PyTorch on this machine's CPU, side by side: the default multi-task U-Net (B=32, D=3,
# 1x256x256) from one glia checkpoint, the same batch sizes, thread counts and timing rules
# (median after one warm-up of an eval forward under no-grad, and of a train-mode forward +
# Dice+BCE + cross-entropy + backward), each glia figure measured right before PyTorch's so both
# see the same machine load. First checks that PyTorch, loading glia's checkpoint, gives glia's
# logits. Prints a markdown table (per image ms and glia's speed as a multiple of PyTorch's:
# > 1.0 means glia is faster) and writes it to --out when given.
#
# Usage: bench/side_by_side.sh [--build DIR] [--batches "1 8 16"] [--threads "1 2"] [--reps R]
#                              [--size S] [--out FILE]
# Defaults: build-nc, batches 1 8 16 at the machine's core count, batch 8 at every other thread
# count from 1 up, 2 repetitions. PyTorch is Debian's python3-torch (a benchmark peer only).
set -euo pipefail

build=build-nc
batches="1 8 16"
threads=""
reps=2
size=256
out=""
while (($#)); do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "side_by_side.sh: unknown argument $1 (see the header for usage)" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
bench="$build/bench/glia-bench-model"
python=/usr/bin/python3
[[ -x $bench ]] || { echo "side_by_side.sh: $bench not found: build glia first" >&2; exit 1; }
$python -c "import torch" 2>/dev/null ||
  { echo "side_by_side.sh: PyTorch not found (Debian: apt-get install python3-torch)" >&2; exit 1; }

cores=$(nproc)
[[ -n $threads ]] || threads=$(seq 1 "$cores" | tr '\n' ' ')
max_threads=$(echo $threads | tr ' ' '\n' | sort -n | tail -1)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "glia vs PyTorch $($python -c 'import torch; print(torch.__version__)') on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cores cores, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "glia cpu kernels: ${GLIA_CPU_KERNELS:-default}; input 1x${size}x${size}; median of $reps after one warm-up"
echo
OMP_NUM_THREADS=$max_threads "$bench" --export "$work" --size "$size" >/dev/null
echo "logits check (PyTorch loads glia's checkpoint, eval mode, batch 2):"
OMP_NUM_THREADS=$max_threads $python "$here/torch_unet.py" check "$work"
echo

# (threads, batch) pairs: every batch at the most threads, batch 8 (or the first) at the others.
pairs=()
for b in $batches; do pairs+=("$max_threads $b"); done
scaling_batch=8
[[ " $batches " == *" 8 "* ]] || scaling_batch=$(echo $batches | cut -d' ' -f1)
for t in $threads; do
  [[ $t == "$max_threads" ]] || pairs+=("$t $scaling_batch")
done

table="| threads | batch | glia forward ms/img | PyTorch forward ms/img | forward speed (PyTorch time / glia time) | glia train step ms/img | PyTorch train step ms/img | train speed (PyTorch time / glia time) |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
echo "$table"
for pair in "${pairs[@]}"; do
  read -r t b <<<"$pair"
  g=$(OMP_NUM_THREADS=$t "$bench" --device cpu --batch "$b" --reps "$reps" --size "$size" |
      awk '$1 == "cpu" { print $3, $4 }')
  p=$(OMP_NUM_THREADS=$t $python "$here/torch_unet.py" time "$work" --batch "$b" --reps "$reps" \
      --threads "$t" --size "$size" | awk '$1 == "torch" { print $4, $5 }')
  read -r gf gt <<<"$g"
  read -r pf pt <<<"$p"
  row=$(awk -v t="$t" -v b="$b" -v gf="$gf" -v gt="$gt" -v pf="$pf" -v pt="$pt" 'BEGIN {
    printf "| %d | %d | %.1f | %.1f | %.2fx | %.1f | %.1f | %.2fx |", t, b, gf, pf, pf / gf, gt, pt, pt / gt }')
  echo "$row"
  table+=$'\n'"$row"
done

if [[ -n $out ]]; then
  tmp="$out.tmp.$$"
  {
    echo "glia vs PyTorch on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cores cores, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "$table"
  } >"$tmp"
  mv "$tmp" "$out"
fi
