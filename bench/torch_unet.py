#!/usr/bin/python3
"""The PyTorch reference of glia's multi-task U-Net, for the cpu side-by-side (bench/side_by_side.sh).

The modules carry glia's parameter names (encoder.blocks.0.conv1.weight, ...), so a glia checkpoint
loads by name; safetensors is parsed with json + numpy (8-byte little-endian header length, the
JSON header, the raw data), so only PyTorch and numpy are needed.

  torch_unet.py check DIR            loads DIR/model.safetensors, runs DIR/input.npy in eval mode
                                     and compares with glia's DIR/seg_logits.npy, cls_logits.npy
  torch_unet.py time DIR --batch N --reps R --threads T [--size S]
                                     prints "torch <batch> <threads> <forward ms/img> <train ms/img>"
                                     timed as glia-bench-model times it (median after one warm-up:
                                     eval forward under no_grad; train-mode forward, Dice+BCE and
                                     cross-entropy, backward)

A benchmark peer only: nothing in glia's build or tests needs PyTorch.
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    dtypes = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "U8": np.uint8}
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        arr = np.frombuffer(body[begin:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, meta


class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        ch = lambda i: c["base_filters"] << i
        self.blocks = nn.ModuleList(
            DoubleConv(c["in_channels"] if i == 0 else ch(i - 1), ch(i)) for i in range(c["depth"] + 1))

    def forward(self, x):
        out = [self.blocks[0](x)]
        for block in self.blocks[1:]:
            out.append(block(F.max_pool2d(out[-1], 2)))
        return out


class Decoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        ch = lambda i: c["base_filters"] << i
        d = c["depth"]
        self.ups = nn.ModuleList(nn.ConvTranspose2d(ch(d - j), ch(d - j - 1), 2, stride=2) for j in range(d))
        self.blocks = nn.ModuleList(DoubleConv(ch(d - j), ch(d - j - 1)) for j in range(d))
        self.head = nn.Conv2d(ch(0), c["out_channels"], 1)

    def forward(self, features):
        y = features[-1]
        for j, (up, block) in enumerate(zip(self.ups, self.blocks)):
            y = block(torch.cat([features[len(features) - 2 - j], up(y)], 1))
        return self.head(y)


class ClsHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Linear(c["base_filters"] << c["depth"], c["cls_hidden"])
        self.dropout = nn.Dropout(c["cls_dropout"])
        self.fc2 = nn.Linear(c["cls_hidden"], c["num_classes"])

    def forward(self, bottleneck):
        pooled = F.adaptive_avg_pool2d(bottleneck, 1).flatten(1)
        return self.fc2(self.dropout(F.relu(self.fc1(pooled))))


class MultiTaskUNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.encoder = Encoder(c)
        self.decoder = Decoder(c)
        self.cls_head = ClsHead(c)

    def forward(self, x):
        features = self.encoder(x)
        return self.decoder(features), self.cls_head(features[-1])


def load_model(path):
    tensors, meta = load_safetensors(path)
    c = {k: int(meta[k]) for k in ("in_channels", "base_filters", "depth", "out_channels", "cls_hidden",
                                   "num_classes")}
    c["cls_dropout"] = float(meta["cls_dropout"])
    model = MultiTaskUNet(c)
    state = model.state_dict()
    missing = [k for k in state if k not in tensors and not k.endswith("num_batches_tracked")]
    extra = [k for k in tensors if k not in state]
    if missing or extra:
        sys.exit(f"torch_unet.py: {path}: missing {missing}, unexpected {extra}")
    for k, v in tensors.items():
        if tuple(v.shape) != tuple(state[k].shape):
            sys.exit(f"torch_unet.py: {path}: {k} is {tuple(v.shape)}, the model wants {tuple(state[k].shape)}")
        state[k].copy_(v.to(state[k].dtype))
    return model


def check(directory, rtol=1e-4, atol=1e-6):
    model = load_model(f"{directory}/model.safetensors").eval()
    x = torch.from_numpy(np.load(f"{directory}/input.npy"))
    with torch.no_grad():
        seg, cls = model(x)
    ok = True
    for name, got in (("seg_logits", seg), ("cls_logits", cls)):
        ref = torch.from_numpy(np.load(f"{directory}/{name}.npy"))
        err = (got - ref).abs()
        margin = atol + rtol * ref.abs()
        worst = float(err.max())
        good = bool((err <= margin).all())
        ok = ok and good
        print(f"{name}: max |glia - torch| = {worst:.3g}, max |glia| = {float(ref.abs().max()):.3g} "
              f"({'ok' if good else 'MISMATCH'}: atol {atol} + rtol {rtol} |glia|)")
    return ok


def dice_bce(logits, target):
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    return F.binary_cross_entropy_with_logits(logits, target) + dice.mean()


def time_model(directory, batch, reps, threads, size):
    torch.set_num_threads(threads)
    torch.manual_seed(7)
    model = load_model(f"{directory}/model.safetensors")
    x = torch.randn(batch, 1, size, size)
    mask = torch.rand(batch, 1, size, size)
    target = torch.arange(batch) % 2

    def forward():
        model.eval()
        with torch.no_grad():
            model(x)

    def train_step():
        model.train()
        model.zero_grad()
        seg, cls = model(x)
        (dice_bce(seg, mask) + F.cross_entropy(cls, target)).backward()

    def median_ms(fn):
        fn()
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return 1e3 * statistics.median(times) / batch

    fw = median_ms(forward)
    tr = median_ms(train_step)
    print(f"torch {batch} {threads} {fw:.2f} {tr:.2f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("check", "time"))
    parser.add_argument("dir")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    if args.mode == "check":
        sys.exit(0 if check(args.dir) else 1)
    time_model(args.dir, args.batch, args.reps, args.threads, args.size)


if __name__ == "__main__":
    main()
