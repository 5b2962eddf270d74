#!/usr/bin/python3
"""Writes the numpy golden files that tests/io/npy_test.cpp and slice_test.cpp compare against.

Run by hand with numpy 1.24 (Debian's python3-numpy):  /usr/bin/python3 make_npy_golden.py
from this folder. Values follow closed formulas of the element index i, so the C++ tests rebuild
the same arrays independently and compare encode_npy / write_npz bytes with numpy's.
"""
import io

import numpy as np

assert np.__version__.startswith("1.24"), np.__version__


def idx(shape):
    return np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)


def save(name, a):
    np.save(name, a)


i = idx((2, 3))
save("f4_2x3.npy", (i * 0.5 - 1.25).astype(np.float32))
save("f8_5.npy", idx((5,)) / 3.0)
save("u1_3x4.npy", ((idx((3, 4)) * 37) % 256).astype(np.uint8))
save("i1_7.npy", ((idx((7,)) * 13) % 256 - 128).astype(np.int8))
save("i2_2x2x2.npy", (idx((2, 2, 2)) * 1000 - 3000).astype(np.int16))
save("i4_3.npy", (idx((3,)) * 100000 - 7).astype(np.int32))
save("i8_4.npy", idx((4,)) * 10**12 - 5)
save("b1_2x3.npy", idx((2, 3)) % 3 == 0)
save("i8_0d.npy", np.array(7))
save("f4_0d.npy", np.array(2.5, dtype=np.float32))
save("u_0d.npy", np.array("h\u00e9llo w\u00f6rld \u2713"))
save("f4_empty.npy", np.zeros((0,), dtype=np.float32))
save("f4_wide.npy", np.zeros((1234567, 0, 3), dtype=np.float32))
save("f4_fortran.npy", np.asfortranarray((idx((2, 3)) * 1.0).astype(np.float32)))

# A shape whose header fills its 64-byte block exactly: numpy then pads a full 64 bytes, not 0.
def padding(shape):  # the spaces after the growth room for shape[0]
    buf = io.BytesIO()
    np.save(buf, np.zeros(shape, dtype=np.float32))
    raw = buf.getvalue()
    return len(raw) - len(raw.rstrip(b" \n")) - 1 - (21 - len(repr(shape[0])))


aligned = next(s for m in range(20) for k in range(1, 200)
               for s in [(0,) + (1,) * m + (k,)] if padding(s) == 64)
save("f4_aligned.npy", np.zeros(aligned, dtype=np.float32))
print("f4_aligned.npy has shape", aligned)

# One preprocessed slice as np.savez / np.savez_compressed store it (Python int and str scalars).
image = (idx((1, 4, 5)) * 0.25 - 2.0).astype(np.float32)
mask = (idx((4, 5)) % 2).astype(np.uint8)
meta = dict(label=1, source="brats", patient="BraTS20_Training_001", slice=77)
for key, value in dict(image=image, mask=mask, **meta).items():
    np.save("slice_%s.npy" % key, value)  # what each member of the archives holds
np.savez("slice_stored.npz", image=image, mask=mask, **meta)
np.savez_compressed("slice_compressed.npz", image=image, mask=mask, **meta)
np.savez_compressed("slice_kaggle.npz", image=image, label=0, source="kaggle", patient="Y12",
                    slice=0)
