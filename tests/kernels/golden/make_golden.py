#!/usr/bin/python3
"""Golden files for tests/kernels/golden_test.cpp: PyTorch's own pooling and softmax on small
inputs, the oracle that is independent of kernels/cpu (whose window and divisor arithmetic
kernels/cuda shares through kernels/types.h, so cpu-against-sim tests cannot catch a mistake
made in both).

Run by hand:  /usr/bin/python3 tests/kernels/golden/make_golden.py  (Debian's python3-torch;
torch writes the files only, no test needs it). Writes, next to this script:
  pool.txt     avg_pool2d (count_include_pad true and false; kernel, stride, padding varied)
               forward and backward; max_pool2d on inputs with many ties (few distinct values),
               forward values, indices (ih * w + iw within the plane; torch keeps the first
               maximum in row-major order) and backward
  softmax.txt  softmax and log_softmax over the last dim of [rows, classes], forward and backward,
               including rows too long for a warp and logits of +-300
Inputs are float32 values; the outputs are computed in float64 from them, so the C++ tests
compare float kernels against them with the float tolerances.

Format, whitespace-separated tokens, '#' lines are comments:
  case <op>
  param <name> <integer>        (repeated)
  tensor <name> <count> <values...>   (repeated; inputs %.9g, outputs %.17g, indices integers)
  end
"""
import os

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
INPUTS = ("x", "gy")  # float32-representable; the outputs are float64


def tensor_lines(name, t):
    flat = t.detach().reshape(-1).tolist()
    if t.dtype in (torch.int64, torch.int32):
        values = " ".join(str(int(v)) for v in flat)
    elif name in INPUTS:
        values = " ".join(f"{v:.9g}" for v in flat)  # float32 values: 9 digits are exact
    else:
        values = " ".join(f"{v:.17g}" for v in flat)
    return [f"tensor {name} {len(flat)}", values]


def case(op, params, tensors):
    lines = [f"case {op}"]
    lines += [f"param {k} {int(v)}" for k, v in params.items()]
    for name, t in tensors.items():
        lines += tensor_lines(name, t)
    lines.append("end")
    return lines


def float_input(gen, shape, lo, hi):
    """Float32-representable values in [lo, hi), held as float64."""
    x = torch.rand(shape, generator=gen, dtype=torch.float64) * (hi - lo) + lo
    return x.float().double()


def pool_cases(gen):
    lines = []
    # (n, c, h, w, kernel, stride, padding): odd and even planes, padding 0 and 1, stride 1 and 2.
    shapes = [(2, 3, 7, 6, 3, 2, 1), (1, 2, 6, 5, 2, 1, 1), (1, 1, 5, 5, 3, 1, 1),
              (2, 2, 8, 8, 2, 2, 0), (1, 3, 9, 7, 3, 2, 0), (1, 2, 4, 7, 2, 2, 1)]
    for count_include_pad in (True, False):
        for n, c, h, w, k, s, p in shapes:
            x = float_input(gen, (n, c, h, w), -1.0, 1.0).requires_grad_()
            y = F.avg_pool2d(x, k, s, p, count_include_pad=count_include_pad)
            gy = float_input(gen, y.shape, -1.0, 1.0)
            (gx,) = torch.autograd.grad(y, x, gy)
            params = dict(n=n, c=c, h=h, w=w, kernel=k, stride=s, padding=p,
                          count_include_pad=count_include_pad)
            lines += case("avg_pool2d", params, dict(x=x, y=y, gy=gy, gx=gx))
    for n, c, h, w, k, s, p in shapes:
        # Values in {-3, -2, -1}: most windows hold their maximum more than once, and the
        # padding (-inf) must never win.
        x = torch.floor(float_input(gen, (n, c, h, w), -3.0, 0.0)).requires_grad_()
        y, idx = F.max_pool2d(x, k, s, p, return_indices=True)
        gy = float_input(gen, y.shape, -1.0, 1.0)
        (gx,) = torch.autograd.grad(y, x, gy)
        params = dict(n=n, c=c, h=h, w=w, kernel=k, stride=s, padding=p)
        lines += case("max_pool2d", params, dict(x=x, y=y, idx=idx, gy=gy, gx=gx))
    return lines


def softmax_cases(gen):
    lines = []
    for rows, classes, scale in [(1, 1, 3.0), (3, 17, 3.0), (2, 45, 3.0), (1, 600, 3.0),
                                 (3, 40, 300.0), (1, 530, 300.0)]:
        for log in (False, True):
            x = float_input(gen, (rows, classes), -scale, scale)
            if classes > 1:
                x[:, 1] = x[:, 0]  # a repeated value in every row
            x.requires_grad_()
            y = F.log_softmax(x, dim=1) if log else F.softmax(x, dim=1)
            gy = float_input(gen, y.shape, -1.0, 1.0)
            (gx,) = torch.autograd.grad(y, x, gy)
            params = dict(rows=rows, classes=classes)
            lines += case("log_softmax" if log else "softmax", params,
                          dict(x=x, y=y, gy=gy, gx=gx))
    return lines


def write(name, lines):
    header = [f"# Written by make_golden.py with torch {torch.__version__}; do not edit."]
    with open(os.path.join(HERE, name), "w") as f:
        f.write("\n".join(header + lines) + "\n")


def main():
    gen = torch.Generator().manual_seed(20261206)
    write("pool.txt", pool_cases(gen))
    write("softmax.txt", softmax_cases(gen))


if __name__ == "__main__":
    main()
