#!/usr/bin/env python3
"""Mutation check of the sim kernel tests: plants one bug at a time in kernels/cuda (or a header it
shares with kernels/cpu), rebuilds the kernel tests of an already configured sim build
(-DGLIA_CUDA=OFF: glia_kernels_test, glia_kernels_optim_test and the tensor-core
glia_kernels_tc_test), runs their Sim cases and records whether any failed (caught) or all passed
(missed); the file is restored after each mutation, also on error or Ctrl-C. A mutation that no
longer applies (its text changed) or does not compile is reported as such, never as caught.

  tests/kernels/mutate.py --build build [--only NAME ...] [--markdown results.md]

Each mutation is an exact text replacement (the `nth` occurrence in its file) modelling a bug a
kernel author makes: a dropped barrier, a cp.async wait that lets a stage fly on, a shifted
index, a wrong mma/ldmatrix fragment layout, a wrong operand format or rounding, a skipped tail,
a wrong grid-stride second pass, a wrong tie rule, a missing max subtraction. When a kernel is
rewritten, its entries follow it (the same bug model in the new code); one that no longer applies
shows as "not applied". Results of a run are kept under bench/results/ (*-kernel-mutations.md).
"""

import argparse
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGETS = ["glia_kernels_test", "glia_kernels_optim_test", "glia_kernels_tc_test"]
BINARIES = ["tests/kernels/glia_kernels_test", "tests/kernels/glia_kernels_optim_test",
            "tests/kernels/glia_kernels_tc_test"]

GRID_STRIDE = "{i} < {n}; {i} += grid_thread_count()"
TOTAL_BARRIER = "if (lane == 0) total = v;\n  }\n  __syncthreads();"
TOTAL_NO_BARRIER = "if (lane == 0) total = v;\n  }"


def single_pass(i, n):
    """A grid-stride loop that stops after its first pass over the grid."""
    return (GRID_STRIDE.format(i=i, n=n),
            "{i} < {n} && {i} < grid_thread_count(); {i} += grid_thread_count()".format(i=i, n=n))


# (name, file under kernels/cuda or else kernels/, old text, new text, nth occurrence, what it
# models). A mutation of a header shared with kernels/cpu changes the reference too: only the
# PyTorch golden files (tests/kernels/golden) can catch it.
MUTATIONS = [
    ("softmax-no-max-warp", "softmax.cu", "m = warp_all_max(m);", "m = 0.0f * warp_all_max(m);", 0,
     "softmax (warp per row) without max subtraction"),
    ("softmax-no-max-block", "softmax.cu", "m = block_reduce::max(m);",
     "m = 0.0f * block_reduce::max(m);", 0, "softmax (block per row) without max subtraction"),
    ("cross-entropy-no-max", "loss.cu", "m = warp_all_max(m);", "m = 0.0f * warp_all_max(m);", 0,
     "cross-entropy / focal log-sum-exp without max subtraction"),
    ("conv-fwd-weight-row", "conv.cu", "load.w = {w + m0 * patch, patch,", "load.w = {w, patch,",
     0, "conv forward: weight rows of the first tile for every row tile (c_out > 128)"),
    ("conv-bwd-data-channel", "conv.cu", "w + tap_offset + (m0 + mm) * kh * kw",
     "w + tap_offset + mm * kh * kw", 0,
     "conv backward data: weight columns of the first tile for every row tile (c_in > 128)"),
    ("conv-bias-plane-width", "conv.cu", "planes.w = s.out_w;", "planes.w = s.out_h;", 0,
     "conv bias gradient: the output plane's width taken from its height"),
    ("channel-sum-last-chunk", "batchnorm.cu", "k = lane; k < sp.chunks; k += kWarpSize",
     "k = lane; k + 1 < sp.chunks; k += kWarpSize", 1,
     "split channel sums (batch norm backward, conv bias gradient): the last chunk not combined"),
    ("gemm-load-barrier", "gemm_tile.cuh",
     "    __syncthreads();     // ... and every other thread's\n", "", 0,
     "gemm/conv tiles: dropped barrier between the cp.async wait and the multiply"),
    ("tile-async-wait-depth", "gemm_tile.cuh", "cp_async_wait<1>();", "cp_async_wait<2>();", 0,
     "gemm/conv tiles: the wait leaves the stage about to be multiplied in flight"),
    ("gemm-batch-single-pass", "gemm.cu", "batch += gridDim.z", "batch += s.batch", 0,
     "gemm: grid-stride over batches stops after one pass"),
    ("transpose-reload-barrier", "transpose.cu",
     "__syncthreads();  // the tile is reloaded next iteration", "", 0,
     "transpose: dropped barrier before the tile is reloaded (matters when a block loops)"),
    ("transpose-row-tile-single-pass", "transpose.cu", "row_tile += gridDim.y",
     "row_tile += row_tiles", 0, "transpose: grid-stride over row tiles stops after one pass"),
    ("block-sum-first-barrier", "block_reduce.cuh",
     "  if (lane == 0) warp_sums[warp] = v;\n  __syncthreads();",
     "  if (lane == 0) warp_sums[warp] = v;", 0, "block_reduce::sum: dropped barrier"),
    ("block-sum-second-barrier", "block_reduce.cuh", TOTAL_BARRIER, TOTAL_NO_BARRIER, 0,
     "block_reduce::sum: dropped barrier before the total is read"),
    ("block-sums-thread0-barrier", "block_reduce.cuh",
     "warp_sums[k][warp] = v[k];\n  }\n  __syncthreads();", "warp_sums[k][warp] = v[k];\n  }", 0,
     "block_reduce::sums_in_thread0 (batch norm, channel sums, losses, reduce): dropped barrier"),
    ("block-max-second-barrier", "block_reduce.cuh", TOTAL_BARRIER, TOTAL_NO_BARRIER, 1,
     "block_reduce::max: dropped barrier before the total is read"),
    ("reduce-argmax-tie-last", "reduce.cu", "return p.index <= q.index ? p : q;",
     "return p.index >= q.index ? p : q;", 0, "reduce_max: last index wins ties"),
    ("reduce-two-pass-tail", "reduce.cu", "segment_length = (reduce + segments - 1) / segments;",
     "segment_length = reduce / segments;", 0, "reduce_sum two-pass: segments drop the tail"),
    ("pool-max-tie-last", "pool.cu", "if (v > best || is_nan(v))", "if (v >= best || is_nan(v))", 0,
     "max_pool2d: last index wins ties"),
    ("pool-avg-row-stride", "pool.cu", "sum += xp[ih * s.w + iw];", "sum += xp[ih * s.h + iw];", 0,
     "avg_pool2d: row stride h instead of w (non-square planes)"),
    ("pool-max-backward-second-pass", "pool.cu",
     "const index_t here = ih * s.w + iw, e = plane * s.in_plane() + here;",
     "const index_t e = plane * s.in_plane() + ih * s.w + iw,\n"
     "                  here = ih * s.w + iw + (plane >= gridDim.z ? 1 : 0);", 0,
     "max_pool2d backward: wrong index in the grid-stride loop's second pass over planes"),
    ("loss-segment-tail", "loss.cu", "return {segments, (s.elements + segments - 1) / segments};",
     "return {segments, s.elements / segments};", 0,
     "sample losses: segments drop the sample's tail"),
    ("loss-sample-backward-single-pass", "loss.cu", "threadIdx.x; i < loads;",
     "threadIdx.x; i < loads && i < static_cast<index_t>(gridDim.x) * blockDim.x;", 0,
     "BCE / Dice / Dice + BCE backward: grid-stride loop along a sample stops after one pass"),
    ("fill-second-pass-stride", "fill.cu", "i < n; i += grid_thread_count()) y[i] = value;",
     "i < n; i += 2 * grid_thread_count()) y[i] = value;", 0,
     "fill: grid-stride step skips a grid"),
    ("binary-second-pass-offset", "elementwise.cu", "broadcast_offsets(s, i);",
     "broadcast_offsets(s, i % grid_thread_count());", 0,
     "binary: broadcast offsets of the first pass reused"),
    ("adam-second-pass-index", "optim.cu", "adam_update(c, param, grad, exp_avg, exp_avg_sq, i);",
     "adam_update(c, param, grad, exp_avg, exp_avg_sq, i % grid_thread_count());", 0,
     "adam: grid-stride second pass updates the first pass's elements"),
    ("batchnorm-apply-second-pass", "batchnorm.cu", "const index_t c = nc % s.c;",
     "const index_t c = blockIdx.y % s.c;", 0,
     "batch norm apply: channel of the first pass over planes reused"),
    ("batchnorm-stats-last-chunk", "batchnorm.cu", "k = lane; k < sp.chunks; k += kWarpSize",
     "k = lane; k + 1 < sp.chunks; k += kWarpSize", 0,
     "split batch norm statistics: the last chunk's (count, mean, M2) not combined"),
    ("batchnorm-channel-loop-barrier", "batchnorm.cu",
     "__syncthreads();  // the next channel's block reduction reuses the shared slots", "", 0,
     "batch norm statistics: dropped barrier before the next channel's block reduction"),
    ("batchnorm-unbiased-var", "batchnorm.cu", "count > 1.0f ? m2 / (count - 1.0f) : var", "var",
     0, "batch norm: running variance not unbiased"),
    ("bn-relu-backward-mask", "batchnorm.cu", "g[k] = out[k] > 0.0f ? g[k] : 0.0f;",
     "g[k] = out[k] >= 0.0f ? g[k] : 0.0f;", 0,
     "fused BN + ReLU backward: mask y >= 0, always true after the ReLU, so gy is never masked"),
    ("bn-relu-before-shift", "batchnorm.cu",
     "v[k] = (v[k] - m) * scale + shift;\n        if (fuse_relu) v[k] = relu(v[k]);",
     "v[k] = (v[k] - m) * scale;\n        if (fuse_relu) v[k] = relu(v[k]);\n"
     "        v[k] += shift;", 0, "fused BN + ReLU forward: the ReLU applied before the bias"),
    ("uniform-skip-tail", "random.cu", "n - first < 4 ? static_cast<int>(n - first) : 4;",
     "n - first < 4 ? 0 : 4;", 0, "random: last partial Philox block not stored"),
    ("dropout-second-pass", "dropout.cu", *single_pass("j", "blocks"), 0,
     "dropout: grid-stride loop stops after one pass"),
    ("pool-divisor-counts-far-padding", "types.h", "h1 = h1 < h ? h1 : h;",
     "h1 = h1 < h + pad_h ? h1 : h + pad_h;", 0,
     "avg_pool2d without counted padding: the far padding rows counted (shared with cpu)"),
    ("tile-small-row-half", "gemm_tile.cuh", "return (r / kQuad) * (extent / 2) + p * kQuad",
     "return (r / kQuad) * (kN / 2) + p * kQuad", 0,
     "64-row tile: rows of the second quadrant shifted by the 128-row tile's half"),
    ("tile-restage-barrier", "gemm_tile.cuh",
     "__syncthreads();  // the stage is refilled in the next iteration", "", 0,
     "gemm/conv tiles: dropped barrier before a stage is refilled"),
    ("conv-filter-last-split", "conv.cu", "z < splits; ++z", "z + 1 < splits; ++z", 0,
     "conv filter gradient: the last split of the reduction not added"),
    ("conv-fwd-k-tail", "conv.cu", "static_cast<int>((patch + kK - 1) / kK), load",
     "static_cast<int>(patch / kK), load", 0, "conv forward: the K tail of the patch skipped"),
    ("conv-filter-small-b-rows", "conv.cu", "for (int l = 0; l < kFilterRows<M>; ++l) {\n      const int hi",
     "for (int l = 0; l < 4; ++l) {\n      const int hi", 0,
     "conv filter gradient, 64-row tile: half of B's patch entries never staged"),
    ("gemm-small-b-per-thread", "gemm_tile.cuh", "for (int l = 0; l < kPerThread; ++l) {",
     "for (int l = 0; l < 4; ++l) {", 0,
     "gemm, 64-row tile: half of a scalar-staged B tile never copied"),
    ("tc-restage-barrier", "mma_tile.cuh",
     "    __syncthreads();  // every warp is done with the previous slice\n", "", 0,
     "tensor-core tile: dropped barrier before a slice is restaged"),
    ("tc-stage-barrier", "mma_tile.cuh", "    __syncthreads();\n    if (k0 + kBK < depth)",
     "    if (k0 + kBK < depth)", 0, "tensor-core tile: dropped barrier after staging"),
    ("tc-ldmatrix-a-order", "mma_tile.cuh", "&as[wm + mi * 16 + lane % 16][8 * (lane / 16)]",
     "&as[wm + mi * 16 + lane % 8 + 8 * (lane / 16)][8 * ((lane / 8) % 2)]", 0,
     "tensor-core tile, bf16/f16: ldmatrix.x4 rows give A's fragments a1 and a2 swapped"),
    ("tc-ldmatrix-b-k-half", "mma_tile.cuh", "[8 * ((lane / 8) % 2)]", "[8 * (lane / 16)]", 0,
     "tensor-core tile, bf16/f16: ldmatrix.x2 gives B's k 0-7 for both fragment registers"),
    ("tc-tf32-a-fragment", "mma_tile.cuh", "g + 8 * (i & 1)][kk + t + 4 * (i >> 1)]",
     "g + 8 * (i >> 1)][kk + t + 4 * (i & 1)]", 0,
     "tensor-core tile, tf32: A's fragment registers a1 and a2 swapped"),
    ("tc-accumulator-layout", "mma_tile.cuh",
     "store(wm + mi * 16 + g + 8 * (i >> 1), wn + ni * 8 + 2 * t + (i & 1)",
     "store(wm + mi * 16 + g + 8 * (i & 1), wn + ni * 8 + 2 * t + (i >> 1)", 0,
     "tensor-core tile: accumulator fragment stored with rows and columns of c1, c2 swapped"),
    ("tc-tf32-not-rounded", "mma_tile.cuh", "return round_to_tf32(x);", "return x;", 0,
     "tensor-core tile, tf32: operands not rounded to nearest (the mma truncates them)"),
    ("tc-bf16-as-f16", "mma_tile.cuh", "return float_to_bf16_bits(x);",
     "return float_to_f16_bits(x);", 0, "tensor-core tile: bf16 operands stored in the f16 format"),
    ("conv-tc-fwd-weight-row", "conv_tc.cu", "load_w{w + co0 * patch, patch,", "load_w{w, patch,",
     0,
     "tensor-core conv forward: weight rows of the first tile for every row tile (c_out > 64)"),
    ("conv-tc-data-stride-phase", "conv_tc.cu", "th % s.stride_h != 0 || ", "", 0,
     "tensor-core conv data gradient: taps that miss an output row (stride_h > 1) gathered"),
    ("gemm-tc-batch-single-pass", "gemm_tc.cu", "batch += gridDim.z", "batch += s.batch", 0,
     "tensor-core gemm: grid-stride over batches stops after one pass"),
    ("concat-whole-stride", "concat.cu", "(o * s.whole_channels + s.offset)",
     "(o * s.part_channels + s.offset)", 0, "concat: part's channel count as the whole's stride"),
]


def run(cmd, cwd, timeout):
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)


def build(build_dir, jobs):
    return run(["ninja", "-C", str(build_dir), f"-j{jobs}"] + TARGETS, ROOT, 1800)


def failing_tests(build_dir, timeout):
    """The Sim cases that failed, or a one-line reason when a binary crashed or timed out."""
    failed = []
    for binary in BINARIES:
        try:
            r = run([str(build_dir / binary), "--gtest_filter=*Sim*", "--gtest_brief=1"], ROOT,
                    timeout)
        except subprocess.TimeoutExpired:
            failed.append(f"{pathlib.Path(binary).name}: timed out")
            continue
        names = [line.split("]", 1)[1].strip().split(" ")[0].rstrip(",")
                 for line in r.stdout.splitlines()
                 if line.startswith("[  FAILED  ]") and "(" in line]
        if r.returncode != 0 and not names:
            names = [f"{pathlib.Path(binary).name}: exit {r.returncode}"]
        failed += names
    return sorted(set(failed))


def apply(mutation):
    name, file, old, new, nth, _ = mutation
    path = ROOT / "kernels" / "cuda" / file
    if not path.exists():
        path = ROOT / "kernels" / file  # a header the cpu and cuda kernels share
    text = path.read_text()
    start = -1
    for _ in range(nth + 1):
        start = text.find(old, start + 1)
        if start < 0:
            return path, text, None
    return path, text, text[:start] + new + text[start + len(old):]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", required=True, type=pathlib.Path,
                        help="a configured sim build directory (-DGLIA_CUDA=OFF)")
    parser.add_argument("--only", nargs="*", help="names of the mutations to run")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=300, help="seconds per test binary")
    parser.add_argument("--markdown", type=pathlib.Path, help="write the table here")
    args = parser.parse_args()
    build_dir = args.build.resolve()

    chosen = [m for m in MUTATIONS if not args.only or m[0] in args.only]
    r = build(build_dir, args.jobs)
    if r.returncode != 0:
        sys.exit("the unmutated tree does not build:\n" + r.stdout[-4000:])
    if failing_tests(build_dir, args.timeout):
        sys.exit("the unmutated tree fails its sim tests; fix that first")

    rows = []
    for mutation in chosen:
        name, file, *_, what = mutation
        path, original, mutated = apply(mutation)
        began = time.time()
        if mutated is None:
            verdict, detail = "not applied", "text not found"
        else:
            try:
                path.write_text(mutated)
                r = build(build_dir, args.jobs)
                if r.returncode != 0:
                    verdict, detail = "does not build", r.stdout.strip().splitlines()[-1][:100]
                else:
                    failed = failing_tests(build_dir, args.timeout)
                    verdict = "caught" if failed else "missed"
                    detail = ", ".join(failed[:3]) + (" ..." if len(failed) > 3 else "")
            finally:
                path.write_text(original)
        rows.append((name, file, what, verdict, detail))
        print(f"{name:34} {verdict:14} {time.time() - began:5.0f} s  {detail}", flush=True)
    build(build_dir, args.jobs)  # leave the build matching the restored sources

    tried = [r for r in rows if r[3] in ("caught", "missed")]
    caught = sum(r[3] == "caught" for r in tried)
    lines = ["| mutation | file | bug | result | first failing sim tests |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {n} | {f} | {w} | {v} | {d} |" for n, f, w, v, d in rows]
    lines.append(f"\nCaught {caught} of {len(tried)}.")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
