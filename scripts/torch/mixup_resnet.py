#!/usr/bin/env python3
"""PyTorch module of mixup's network, for the files `mixup export --format safetensors` writes.

The network is the mixup reference's pre-activation ResNet, CIFAR variant (unsky/mixup
symbols/resnet_mixup.py after MXNet's image-classification symbols/resnet.py; He et al. 2016,
"Identity Mappings in Deep Residual Networks"), as mixup's src/model/spec.ts describes it:

    bn_data (BatchNorm, gamma fixed at 1) -> conv0 3x3, 16 filters ->
    stage1..stage3 of n units each (first unit of stages 2 and 3 with stride 2) ->
    bn1 -> ReLU -> global average pool -> fc1 (with bias)

    depth = 6n+2 below 164: basic units, filters 16/16/32/64:
        act1 = ReLU(bn1(x)); out = conv2(ReLU(bn2(conv1(act1)))) + shortcut
    depth = 9n+2 from 164: bottleneck units, filters 16/64/128/256, mid = filters/4:
        act1 = ReLU(bn1(x)); h = conv1 1x1(act1); h = conv2 3x3(ReLU(bn2(h)), stride);
        out = conv3 1x1(ReLU(bn3(h))) + shortcut
    shortcut = sc(act1), a 1x1 projection with the unit's stride, in the first unit of every
    stage; x itself in the others.

No convolution has a bias; a 3x3 convolution pads 1 on every side, a 1x1 one none. Every
BatchNorm has eps 2e-5 and MXNet momentum 0.9 (PyTorch momentum 0.1). `bn_data` has
MXNet's fix_gamma=True: its weight is 1 and is not trained (requires_grad False).

Module and tensor names are those of the export: `bn_data`, `conv0`, `stage2.unit1.bn1`,
`stage2.unit1.conv1`, `stage2.unit1.sc`, `bn1`, `fc1`; layouts PyTorch's (conv [out, in, kh, kw],
linear [out, in]). So

    import safetensors.torch
    from mixup_resnet import MixupResNet
    model = MixupResNet(depth=50, num_classes=10)
    model.load_state_dict(safetensors.torch.load_file("run.safetensors"), strict=True)
    model.eval()

or, reading depth, classes and the input description from the file's metadata,

    model, info = load("run.safetensors")   # strict=True, eval mode

Input: [N, 3, H, W] float32, NCHW, RGB, as the file's metadata `input` says: for the reference
recipe the centre 28x28 of the 32x32 CIFAR image (rows and columns 2..29), pixel values 0-255
minus the mean [123.68, 116.779, 103.939], no division. `preprocess` does it from uint8 images.

Run as a script, it prints the logits of a raw float32 NCHW input file as JSON (what mixup's
test suite compares with its own inference):

    python3 scripts/torch/mixup_resnet.py run.safetensors --input x.f32 --batch 8

Bad input (an ONNX or truncated file, an --input that does not hold --batch images) gets one line
on stderr and exit code 1; --verbose shows the Python traceback.

Needs torch; uses the safetensors package when installed, else a small reader of the format
(`read_safetensors`).
"""
import argparse
import json
import os
import struct
import sys
from collections import OrderedDict

try:
    import torch
    from torch import nn
    import torch.nn.functional as F
except ImportError as e:
    if __name__ == "__main__":
        sys.exit(f"mixup_resnet.py: error: needs PyTorch ({e}); pip install torch, or on Debian apt-get install python3-torch")
    raise

BN_EPS = 2e-5
BN_MOMENTUM = 0.1  # PyTorch's convention: MXNet momentum 0.9


def resnet_layout(depth):
    """(bottleneck, units per stage, filters of conv0 and stages 1..3) of a depth; ValueError otherwise."""
    if depth < 164 and depth >= 8 and (depth - 2) % 6 == 0:
        return False, (depth - 2) // 6, (16, 16, 32, 64)
    if depth >= 164 and (depth - 2) % 9 == 0:
        return True, (depth - 2) // 9, (16, 64, 128, 256)
    raise ValueError(f"depth {depth} is not 6n+2 below 164 nor 9n+2 from 164")


def batch_norm(channels):
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def conv(in_c, out_c, k, stride):
    return nn.Conv2d(in_c, out_c, k, stride=stride, padding=(k - 1) // 2, bias=False)


class Unit(nn.Module):
    """One pre-activation unit, basic (2 convolutions) or bottleneck (3)."""

    def __init__(self, in_c, out_c, stride, bottleneck, projection):
        super().__init__()
        if bottleneck:
            mid = out_c // 4
            self.bn1, self.conv1 = batch_norm(in_c), conv(in_c, mid, 1, 1)
            self.bn2, self.conv2 = batch_norm(mid), conv(mid, mid, 3, stride)
            self.bn3, self.conv3 = batch_norm(mid), conv(mid, out_c, 1, 1)
            self.layers = 3
        else:
            self.bn1, self.conv1 = batch_norm(in_c), conv(in_c, out_c, 3, stride)
            self.bn2, self.conv2 = batch_norm(out_c), conv(out_c, out_c, 3, 1)
            self.layers = 2
        self.sc = conv(in_c, out_c, 1, stride) if projection else None

    def forward(self, x):
        act1 = F.relu(self.bn1(x))
        h = self.conv1(act1)
        for i in range(2, self.layers + 1):
            h = getattr(self, f"conv{i}")(F.relu(getattr(self, f"bn{i}")(h)))
        return h + (self.sc(act1) if self.sc is not None else x)


class MixupResNet(nn.Module):
    """mixup's pre-activation ResNet of `depth` with `num_classes` outputs (see the module doc)."""

    def __init__(self, depth=50, num_classes=10):
        super().__init__()
        bottleneck, units, filters = resnet_layout(depth)
        self.bn_data = batch_norm(3)
        self.bn_data.weight.requires_grad_(False)  # MXNet fix_gamma=True: gamma stays 1
        self.conv0 = conv(3, filters[0], 3, 1)
        in_c = filters[0]
        for s in range(3):
            out_c = filters[s + 1]
            stage = OrderedDict()
            for u in range(units):
                stride = 2 if u == 0 and s > 0 else 1
                stage[f"unit{u + 1}"] = Unit(in_c, out_c, stride, bottleneck, projection=u == 0)
                in_c = out_c
            setattr(self, f"stage{s + 1}", nn.Sequential(stage))
        self.bn1 = batch_norm(in_c)
        self.fc1 = nn.Linear(in_c, num_classes)

    def forward(self, x):
        h = self.conv0(self.bn_data(x))
        h = self.stage3(self.stage2(self.stage1(h)))
        h = F.relu(self.bn1(h))
        return self.fc1(h.mean(dim=(2, 3)))


_DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8), "I64": (torch.int64, 8), "I32": (torch.int32, 4)}


def read_safetensors(path):
    """(tensors by name, metadata) of a safetensors file, without the safetensors package."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    base = 8 + n
    tensors = OrderedDict()
    for name, e in header.items():
        dtype, size = _DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        count = (end - begin) // size
        values = torch.frombuffer(bytearray(data[base + begin : base + end]), dtype=dtype, count=count) if count else torch.empty(0, dtype=dtype)
        tensors[name] = values.reshape(e["shape"])
    return tensors, metadata


def load_file(path):
    """(state dict, metadata, which reader): safetensors.torch when installed, else read_safetensors."""
    try:
        import safetensors
        import safetensors.torch
    except ImportError:
        tensors, metadata = read_safetensors(path)
        return tensors, metadata, "builtin"
    with safetensors.safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
    return safetensors.torch.load_file(path), metadata, "safetensors"


def model_of(path, model_meta):
    """MixupResNet of an export's `model` metadata; ValueError for an architecture this module lacks."""
    arch = model_meta.get("arch", "mxnet-preact")
    if arch != "mxnet-preact":
        raise ValueError(f"{path}: model.arch {arch}: this module builds only mixup's reference network (mxnet-preact)")
    return MixupResNet(model_meta["depth"], model_meta["numClasses"])


def load(path):
    """(model in eval mode, metadata dict with `model` and `input` parsed) from an exported file; strict load."""
    state, metadata, _ = load_file(path)
    info = dict(metadata)
    for key in ("model", "input", "config"):
        if key in info:
            info[key] = json.loads(info[key])
    model = model_of(path, info["model"])
    model.load_state_dict(state, strict=True)
    return model.eval(), info


def preprocess(images, input_spec):
    """[N, 32, 32, 3] uint8 RGB images -> the network's input [N, 3, H, W] float32 (centre crop, normalise)."""
    x = torch.as_tensor(images).float()
    h, w = input_spec["height"], input_spec["width"]
    top, left = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2
    x = x[:, top : top + h, left : left + w, :] * input_spec["scale"]
    x = (x - torch.tensor(input_spec["mean"])) / torch.tensor(input_spec["std"])
    return x.permute(0, 3, 1, 2).contiguous()


class BadInput(Exception):
    """Input the script refuses, with one line saying what and where."""


def export_header(path):
    """The JSON header of a safetensors export, checked in pure Python before torch reads the file:
    the 8-byte length fits the file, the header is a JSON object, every tensor's data_offsets lie within
    the file, and the metadata has `model` and `input`. BadInput (one line) otherwise."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise BadInput(f"{path}: {size} bytes, not a safetensors file (expected an 8-byte header length first)")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            what = " (an ONNX file? give the file of `mixup export --format safetensors`)" if path.lower().endswith(".onnx") else " (truncated, or not a safetensors file)"
            raise BadInput(f"{path}: header length {n} at offset 0 exceeds the file's {size} bytes{what}")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise BadInput(f"{path}: the header at offset 8 is not JSON ({e}); not a safetensors file") from None
    if not isinstance(header, dict):
        raise BadInput(f"{path}: the header at offset 8 is not a JSON object; not a safetensors file")
    data = size - 8 - n
    for name, e in header.items():
        if name == "__metadata__":
            continue
        end = e.get("data_offsets", [0, 0])[1] if isinstance(e, dict) else 0
        if end > data:
            raise BadInput(f"{path}: tensor {name} ends at data byte {end}, but the file holds {data} data bytes (truncated?)")
    meta = header.get("__metadata__", {})
    for key in ("model", "input"):
        if key not in meta:
            raise BadInput(f"{path}: metadata has no `{key}`; not a file of `mixup export --format safetensors`")
    return header


def read_input(path, batch, inp):
    """The --input file as a [batch, 3, H, W] float32 tensor; BadInput when its size is not batch images."""
    per = 3 * inp["height"] * inp["width"] * 4
    size = os.path.getsize(path)
    if batch <= 0 or size != batch * per:
        have = f"{size // per} image(s)" if size % per == 0 else f"{size} bytes, not a whole number of images"
        raise BadInput(f"{path}: --batch {batch} needs {batch * per} bytes ([{batch}, 3, {inp['height']}, {inp['width']}] float32), the file holds {have} ({size} bytes)")
    with open(path, "rb") as f:
        return torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(batch, 3, inp["height"], inp["width"])


def main():
    p = argparse.ArgumentParser(description="logits of an exported mixup network on a raw float32 NCHW input file, as JSON")
    p.add_argument("model", help="a file of `mixup export --format safetensors`")
    p.add_argument("--input", required=True, help="raw little-endian float32 [batch, 3, H, W] (already normalised)")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--verbose", action="store_true", help="a Python traceback on errors")
    a = p.parse_args()
    try:
        header = export_header(a.model)
        inp = json.loads(header["__metadata__"]["input"])
        if not os.path.exists(a.input):
            raise BadInput(f"{a.input}: no such file (--input)")
        state, metadata, reader = load_file(a.model)
        model = model_of(a.model, json.loads(metadata["model"]))
        model.load_state_dict(state, strict=True)
        model.eval()
        x = read_input(a.input, a.batch, inp)
        with torch.no_grad():
            logits = model(x)
    except (BadInput, OSError, ValueError, KeyError, RuntimeError, struct.error) as e:
        if a.verbose:
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        sys.exit(f"mixup_resnet.py: error: {msg}")
    print(json.dumps({"reader": reader, "torch": torch.__version__, "logits": logits.flatten().tolist()}))


if __name__ == "__main__":
    main()
