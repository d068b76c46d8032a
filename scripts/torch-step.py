#!/usr/bin/env python3
"""The anchor for scripts/gpu-check.sh (issue 24 item 7): the same training step in PyTorch on CUDA.

The reference's pre-activation ResNet (basic units, widths 16/32/64, bn_data on the input, a final
BatchNorm+ReLU, global average pool, fc), ERM with soft-target cross-entropy and SGD with momentum 0.9
and weight decay 1e-4, at the static engine's bench shape (28x28 crops, 10 classes). Times PyTorch eager
and torch.compile, float32 (TF32 off, as the WGSL kernels compute in fp32), and prints one line each:

    torch eager: 12.345 ms/step, 10368 img/s (depth 50, batch 128, NVIDIA H100 80GB HBM3)

Usage: python3 scripts/torch-step.py [--depth 50] [--batch 128] [--steps 30] [--warmup 5] [--no-compile]
Needs torch with CUDA; exits 3 with one line when there is none.
"""
import argparse
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("torch-step: no torch", file=sys.stderr)
    sys.exit(3)


class Unit(nn.Module):
    """Pre-activation basic unit: BN-ReLU-conv3x3(stride)-BN-ReLU-conv3x3, 1x1 shortcut on a change."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=2e-5, momentum=0.1)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=2e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.sc = nn.Conv2d(cin, cout, 1, stride, 0, bias=False) if (cin != cout or stride != 1) else None

    def forward(self, x):
        a1 = F.relu(self.bn1(x))
        s = self.sc(a1) if self.sc is not None else x
        return self.conv2(F.relu(self.bn2(self.conv1(a1)))) + s


class PreActResNet(nn.Module):
    def __init__(self, depth, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.bn_data = nn.BatchNorm2d(3, eps=2e-5, affine=False)
        self.conv0 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        units, cin = [], 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                units.append(Unit(cin, width, stride if i == 0 else 1))
                cin = width
        self.units = nn.Sequential(*units)
        self.bn1 = nn.BatchNorm2d(cin, eps=2e-5)
        self.fc1 = nn.Linear(cin, classes)

    def forward(self, x):
        h = self.units(self.conv0(self.bn_data(x)))
        return self.fc1(F.relu(self.bn1(h)).mean(dim=(2, 3)))


def timed(model, steps, warmup, batch, size):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, 3, size, size, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.softmax(torch.randn(batch, 10, device="cuda"), dim=1)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.sum(-y * F.log_softmax(model(x), dim=1)) / batch
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps * 1e3


def main():
    ap = argparse.ArgumentParser(description="PyTorch eager and torch.compile time of the reference's training step")
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--no-compile", action="store_true")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch-step: torch has no CUDA device", file=sys.stderr)
        sys.exit(3)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    gpu = torch.cuda.get_device_name()
    runs = [("torch eager", False)] + ([] if a.no_compile else [("torch.compile", True)])
    for name, comp in runs:
        model = PreActResNet(a.depth).cuda().to(memory_format=torch.channels_last)
        if comp:
            model = torch.compile(model)
        ms = timed(model, a.steps, a.warmup, a.batch, a.size)
        print(f"{name}: {ms:.3f} ms/step, {a.batch * 1000 / ms:.0f} img/s (depth {a.depth}, batch {a.batch}, {gpu})", flush=True)


if __name__ == "__main__":
    main()
