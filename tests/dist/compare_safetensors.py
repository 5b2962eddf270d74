#!/usr/bin/env python3
"""Compares the f32 tensors of two .safetensors files element by element (|a - b| <= atol +
rtol * |b|) with the standard library only; prints the worst excess and exits 1 on a mismatch.
Used by tests/dist/train_e2e.sh. Usage: compare_safetensors.py A B ATOL RTOL"""
import json
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    length = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        tensors[name] = struct.unpack("<%df" % ((end - start) // 4), body[start:end])
    return tensors


def main():
    a, b = load(sys.argv[1]), load(sys.argv[2])
    atol, rtol = float(sys.argv[3]), float(sys.argv[4])
    if a.keys() != b.keys():
        print("different tensors:", sorted(set(a) ^ set(b)))
        return 1
    worst, where = float("-inf"), ""
    for name in sorted(a):
        for i, (x, y) in enumerate(zip(a[name], b[name])):
            excess = abs(x - y) - (atol + rtol * abs(y))
            if excess > worst:
                worst, where = excess, "%s[%d]: %g vs %g" % (name, i, x, y)
    print("%d tensors; worst excess over the tolerance %g at %s" % (len(a), worst, where))
    return 0 if worst <= 0 else 1


if __name__ == "__main__":
    sys.exit(main())
