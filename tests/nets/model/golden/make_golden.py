#!/usr/bin/python3
"""Golden files for tests/nets/model/golden_test.cpp: the multi-task U-Net of nets/model/unet.h rebuilt in
PyTorch (B=4, D=2, batch 2, 1x32x32), one training step's forward, loss and gradients.

Run by hand:  /usr/bin/python3 tests/nets/model/golden/make_golden.py  (torch 1.13, numpy).
Writes, next to this script, in the safetensors format (written by hand below; the safetensors
package is not needed):
  weights.safetensors  the state dict (running stats included; num_batches_tracked left out, as
                       the engine keeps no counter) with the architecture as __metadata__
  golden.safetensors   input [2,1,32,32], seg_target [2,1,32,32], cls_target [2] (I32);
                       eval.seg_logits, eval.cls_logits: eval mode on the initial weights;
                       train.seg_logits, train.cls_logits, train.loss, grad.<param>,
                       running.<bn>.running_mean / running_var: one train-mode step after that.
The train-mode step runs with the head's dropout disabled (model.cls_head.dropout.p = 0), since
torch's dropout mask cannot be reproduced; eval mode keeps p = 0.3 (inactive there anyway).
Loss = dice_bce(seg) + cross_entropy(cls), matching engine/losses.h: per sample n,
  dice_n = 1 - (2 sum p t + 1) / (sum p + sum t + 1), p = sigmoid(x)
  bce_n  = mean over the sample's elements of BCE-with-logits
  seg    = mean_n (0.5 dice_n + 0.5 bce_n),  cls = mean_n CE_n.
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

B, D, BATCH, SIZE = 4, 2, 2, 32
HERE = os.path.dirname(os.path.abspath(__file__))


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
    def __init__(self, cin, b, d):
        super().__init__()
        self.blocks = nn.ModuleList(
            [DoubleConv(cin if i == 0 else b << (i - 1), b << i) for i in range(d + 1)])

    def forward(self, x):
        feats = [self.blocks[0](x)]
        for blk in self.blocks[1:]:
            feats.append(blk(F.max_pool2d(feats[-1], 2)))
        return feats


class Decoder(nn.Module):
    def __init__(self, b, d, cout):
        super().__init__()
        self.ups = nn.ModuleList(
            [nn.ConvTranspose2d(b << (d - j), b << (d - j - 1), 2, stride=2) for j in range(d)])
        self.blocks = nn.ModuleList(
            [DoubleConv(b << (d - j), b << (d - j - 1)) for j in range(d)])
        self.head = nn.Conv2d(b, cout, 1)

    def forward(self, feats):
        y = feats[-1]
        for j, (up, blk) in enumerate(zip(self.ups, self.blocks)):
            y = blk(torch.cat([feats[len(feats) - 2 - j], up(y)], dim=1))
        return self.head(y)


class ClsHead(nn.Module):
    def __init__(self, cin, hidden, classes, p):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(cin, hidden)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(p)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.fc2(self.dropout(self.relu(self.fc1(torch.flatten(self.pool(x), 1)))))


class MultiTaskUNet(nn.Module):
    def __init__(self, cin=1, b=32, d=3, cout=1, hidden=256, classes=2, p=0.3):
        super().__init__()
        self.encoder = Encoder(cin, b, d)
        self.decoder = Decoder(b, d, cout)
        self.cls_head = ClsHead(b << d, hidden, classes, p)

    def forward(self, x):
        feats = self.encoder(x)
        return self.decoder(feats), self.cls_head(feats[-1])


def dice_bce(logits, target):
    n = logits.shape[0]
    x, t = logits.reshape(n, -1), target.reshape(n, -1)
    p = torch.sigmoid(x)
    dice = 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)
    bce = F.binary_cross_entropy_with_logits(x, t, reduction="none").mean(1)
    return (0.5 * dice + 0.5 * bce).mean()


DTYPES = {np.float32: "F32", np.float64: "F64", np.int32: "I32", np.int64: "I64", np.uint8: "U8"}


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": DTYPES[a.dtype.type], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.replace(path + ".tmp", path)


def main():
    torch.manual_seed(20261129)
    model = MultiTaskUNet(b=B, d=D)
    # Non-trivial batch-norm state, so eval mode and the affine parameters are exercised.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    metadata = {"in_channels": "1", "base_filters": str(B), "depth": str(D), "out_channels": "1",
                "cls_hidden": "256", "num_classes": "2", "cls_dropout": "0.3"}
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    write_safetensors(os.path.join(HERE, "weights.safetensors"), state, metadata)

    x = torch.randn(BATCH, 1, SIZE, SIZE)
    seg_target = (torch.rand(BATCH, 1, SIZE, SIZE) < 0.3).float()
    cls_target = torch.tensor([1, 0])
    out = {"input": x.numpy(), "seg_target": seg_target.numpy(),
           "cls_target": cls_target.numpy().astype(np.int32)}

    model.eval()
    with torch.no_grad():
        seg, cls = model(x)
    out["eval.seg_logits"], out["eval.cls_logits"] = seg.numpy(), cls.numpy()

    model.train()
    model.cls_head.dropout.p = 0.0
    seg, cls = model(x)
    loss = dice_bce(seg, seg_target) + F.cross_entropy(cls, cls_target)
    loss.backward()
    out["train.seg_logits"] = seg.detach().numpy()
    out["train.cls_logits"] = cls.detach().numpy()
    out["train.loss"] = np.array(loss.item(), dtype=np.float32)
    for name, p in model.named_parameters():
        out["grad." + name] = p.grad.numpy()
    for name, b in model.named_buffers():
        if not name.endswith("num_batches_tracked"):
            out["running." + name] = b.numpy()
    write_safetensors(os.path.join(HERE, "golden.safetensors"), out,
                      {"torch": torch.__version__, "dropout_in_train": "disabled (p = 0)"})


if __name__ == "__main__":
    main()
