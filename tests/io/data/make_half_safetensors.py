#!/usr/bin/python3
"""Writes half_safetensors.safetensors, the F16/BF16 golden file of tests/io/safetensors_test.cpp.

Uses the standard library only (no numpy or torch where it was written): the header is built by
hand as the safetensors format prescribes (8-byte little-endian length, JSON with sorted keys and
no spaces, padded with spaces to a multiple of 8, data in name order). F16 values are packed by
Python's struct "e" format (its own round-to-nearest-even binary16 conversion); BF16 values are the
top half of the float32 bits, rounded to nearest even by integer arithmetic below. Every value is
first rounded to float32, as glia's f32 -> 16-bit casts start from a float.
Run by hand from this folder:  /usr/bin/python3 make_half_safetensors.py
"""
import json
import struct


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def bf16_bits(x):
    u = struct.unpack("<I", struct.pack("<f", x))[0]
    if (u & 0x7FFFFFFF) > 0x7F800000:  # NaN: quiet, sign kept
        return (u >> 16) | 0x0040
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF


# Closed formulas of the index i that the C++ test rebuilds: i * 0.3 - 1.7 for i in 0..5, then
# the edges: f16's largest finite value, the smallest value that overflows it, a subnormal, -0.
values = [f32(i * 0.3 - 1.7) for i in range(6)] + [65504.0, 65520.0, f32(1e-7), -0.0]

half = b"".join(struct.pack("<e", v) if abs(v) < 65520.0 else struct.pack("<H", 0x7C00)
                for v in values)
brain = b"".join(struct.pack("<H", bf16_bits(v)) for v in values)
full = b"".join(struct.pack("<f", v) for v in values)

tensors = [("brain", "BF16", [2, 5], brain), ("full", "F32", [10], full), ("half", "F16", [5, 2], half)]
header = {"__metadata__": {"written_by": "make_half_safetensors.py"}}
offset = 0
for name, dtype, shape, data in tensors:
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
    offset += len(data)
text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
text += b" " * ((8 - len(text) % 8) % 8)
with open("half_safetensors.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors))
