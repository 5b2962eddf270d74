#!/usr/bin/env bash
# Static resource table of the hand-written CUDA kernels (kernels/cuda/*.cu) for sm_90, from ptxas:
# per kernel the registers, spill stores/loads, stack, static shared memory, and the theoretical
# occupancy on sm_90 computed from those with the launch's threads per block (sm_90 limits: 65536
# registers, 228 KiB shared memory, 2048 threads and 32 blocks per SM; registers allocated per warp
# in units of 256, 1 KiB of shared memory reserved per block). Threads per block come from the
# kernel's __launch_bounds__ (the PTX's .maxntid), else 256 (the kernels' common block) and the
# column says so. FMAs per shared load for gemm/conv come from reading their SASS (not done here).
#
# Usage: bench/kernel_resources.sh [SOURCE_ROOT] [OUTPUT.md]
#   SOURCE_ROOT  a checkout of glia (default: this script's repository)
#   OUTPUT.md    where the Markdown table goes (default: stdout); written atomically
# Needs nvcc (no GPU). Run by hand; its outputs for main and for a branch are committed under
# bench/results/ (*-kernel-resources-before.md / -after.md).
set -euo pipefail

root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
out=${2:-}
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[[ -x $nvcc ]] || { echo "kernel_resources: nvcc not found (set NVCC)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for cu in "$root"/kernels/cuda/*.cu; do
  stem=$(basename "$cu" .cu)
  mkdir -p "$work/keep/$stem"
  if ! "$nvcc" -std=c++17 -O3 -arch=sm_90 -cubin -Xptxas -v -DGLIA_HAVE_CUDA=1 -I"$root" \
      --keep --keep-dir "$work/keep/$stem" -o "$work/$stem.cubin" "$cu" >"$work/$stem.log" 2>&1; then
    echo "kernel_resources: nvcc failed on $cu:" >&2
    cat "$work/$stem.log" >&2
    exit 1
  fi
  cat "$work/keep/$stem"/*.ptx >"$work/$stem.ptx" 2>/dev/null || true
done

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
python3 - "$work" "$commit" "$("$nvcc" --version | tail -1)" >"$work/table.md" <<'PY'
import glob, math, os, re, subprocess, sys

work, commit, nvcc = sys.argv[1], sys.argv[2], sys.argv[3]
REGS_SM, SMEM_SM, THREADS_SM, BLOCKS_SM, WARPS_SM = 65536, 228 * 1024, 2048, 32, 64

def demangle(names):
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True,
                             text=True, check=True).stdout.split("\n")
        return out[: len(names)]
    except Exception:
        return names

def short(name):
    # glia::kernels::cuda::(anonymous namespace)::stats_kernel(...) -> stats_kernel<...>
    name = name.replace("glia::kernels::cuda::", "").replace("(anonymous namespace)::", "")
    depth, cut = 0, len(name)
    for i, ch in enumerate(name):
        if ch == "<": depth += 1
        elif ch == ">": depth -= 1
        elif ch == "(" and depth == 0:
            cut = i
            break
    return name[:cut]

def occupancy(regs, smem, threads):
    warps = math.ceil(threads / 32)
    regs_warp = math.ceil(max(regs, 1) * 32 / 256) * 256
    by_regs = REGS_SM // (regs_warp * warps) if regs_warp * warps else BLOCKS_SM
    by_smem = SMEM_SM // (smem + 1024)
    by_threads = THREADS_SM // (warps * 32)
    blocks = min(by_regs, by_smem, by_threads, BLOCKS_SM)
    limiter = {by_regs: "regs", by_smem: "smem", by_threads: "threads"}.get(blocks, "blocks")
    return blocks, 100.0 * blocks * warps / WARPS_SM, limiter

rows = []
for log in sorted(glob.glob(os.path.join(work, "*.log"))):
    stem = os.path.basename(log)[:-4]
    text = open(log).read()
    cur = None
    info = {}
    for line in text.splitlines():
        m = re.search(r"Compiling entry function '([^']+)'", line)
        if m:
            cur = m.group(1)
            info[cur] = {"stack": 0, "spill_st": 0, "spill_ld": 0, "regs": 0, "smem": 0, "bounds": None}
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            info[cur].update(stack=int(m.group(1)), spill_st=int(m.group(2)), spill_ld=int(m.group(3)))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            info[cur]["regs"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            info[cur]["smem"] = int(s.group(1)) if s else 0
    # __launch_bounds__ as the PTX states it: ".maxntid x, y, z" between an entry and its body.
    ptx = os.path.join(work, stem + ".ptx")
    if os.path.exists(ptx):
        text_ptx = open(ptx).read()
        for m in re.finditer(r"\.entry\s+(\w+)\s*\(([^{]*)\{", text_ptx):
            b = re.search(r"\.maxntid\s+(\d+)\s*,\s*(\d+)\s*,\s*(\d+)", m.group(2))
            if m.group(1) in info and b:
                info[m.group(1)]["bounds"] = int(b.group(1)) * int(b.group(2)) * int(b.group(3))
    names = list(info)
    for mangled, pretty in zip(names, demangle(names)):
        d = info[mangled]
        threads = d["bounds"] or 256
        blocks, occ, lim = occupancy(d["regs"], d["smem"], threads)
        rows.append((stem, short(pretty), d, threads, blocks, occ, lim))

print(f"# Kernel resources on sm_90 (static, from ptxas)\n")
print(f"Source commit `{commit}`, {nvcc}, `nvcc -O3 -arch=sm_90 -Xptxas -v`; made by "
      "bench/kernel_resources.sh. Occupancy is theoretical (registers, static shared memory, "
      "threads per block against the sm_90 limits: 65536 registers, 228 KiB shared memory, 2048 "
      "threads, 32 blocks per SM); dynamic shared memory is not counted. Threads per block: the "
      "kernel's `__launch_bounds__`, or 256 marked `256*` where it has none. FMAs per shared load "
      "(gemm/conv inner loops) are read from SASS by hand: `-` here.\n")
print("| file | kernel | regs | spill st/ld (B) | stack (B) | static smem (B) | threads/block | "
      "blocks/SM | occupancy | limited by | FMA/shared load |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
for stem, name, d, threads, blocks, occ, lim in sorted(rows, key=lambda r: (r[0], r[1])):
    t = str(threads) if d["bounds"] else f"{threads}*"
    name = name.replace("|", "\\|")
    print(f"| {stem} | `{name}` | {d['regs']} | {d['spill_st']}/{d['spill_ld']} | {d['stack']} | "
          f"{d['smem']} | {t} | {blocks} | {occ:.0f}% | {lim} | - |")
PY

if [[ -n $out ]]; then
  mkdir -p "$(dirname "$out")"
  cp "$work/table.md" "$out.tmp.$$" && mv "$out.tmp.$$" "$out"
else
  cat "$work/table.md"
fi
