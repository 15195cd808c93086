"""How long reading a model into a spec takes, beyond importing torch.

Builds an X3D-L-sized ``torch.nn`` model the way X3D code writes it
(5/10/25/15 bottlenecks of widths 24/48/96/192, inner width x2.25,
depthwise 3x3x3, SE every other block, Swish, functional residuals), then
times, in one process:

* ``import torch`` (reported, not counted),
* ``comem.from_module(model, (3, 16, 312, 312))`` — trace on fake tensors,
  structure, emit (median of N runs after one warm-up),
* analysing the imported spec (``comem.analyze``) and a 1,000-point sweep.

Target: import < 2 s beyond the torch import on 2 cores.
Run:  python benchmarks/import_speed.py [N]
"""
from __future__ import annotations

import statistics
import sys
import time


def build_x3d_l():
    import torch
    from torch import nn

    class Swish(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(x)

    class SE(nn.Module):
        def __init__(self, c):
            super().__init__()
            hidden = max(8, round(c / 16 / 8) * 8)
            self.pool = nn.AdaptiveAvgPool3d(1)
            self.fc1, self.fc2 = nn.Conv3d(c, hidden, 1), nn.Conv3d(hidden, c, 1)
            self.relu, self.sig = nn.ReLU(), nn.Sigmoid()

        def forward(self, x):
            return x * self.sig(self.fc2(self.relu(self.fc1(self.pool(x)))))

    class Block(nn.Module):
        def __init__(self, cin, inner, cout, stride, se):
            super().__init__()
            self.a = nn.Sequential(nn.Conv3d(cin, inner, 1, bias=False), nn.BatchNorm3d(inner), nn.ReLU())
            self.b = nn.Sequential(nn.Conv3d(inner, inner, 3, (1, stride, stride), 1, groups=inner, bias=False),
                                   nn.BatchNorm3d(inner))
            self.se = SE(inner) if se else nn.Identity()
            self.swish = Swish()
            self.c = nn.Sequential(nn.Conv3d(inner, cout, 1, bias=False), nn.BatchNorm3d(cout))
            self.short = None
            if stride != 1 or cin != cout:
                self.short = nn.Sequential(nn.Conv3d(cin, cout, 1, (1, stride, stride), bias=False),
                                           nn.BatchNorm3d(cout))
            self.relu = nn.ReLU()

        def forward(self, x):
            y = self.c(self.swish(self.se(self.b(self.a(x)))))
            return self.relu(y + (x if self.short is None else self.short(x)))

    class X3DL(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv3d(3, 24, (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False),
                                      nn.Conv3d(24, 24, (5, 1, 1), padding=(2, 0, 0), groups=24, bias=False),
                                      nn.BatchNorm3d(24), nn.ReLU())
            stages, cin = [], 24
            for depth, width in zip((5, 10, 25, 15), (24, 48, 96, 192)):
                inner = int(2.25 * width)
                stages.append(nn.Sequential(*[Block(cin if i == 0 else width, inner, width, 2 if i == 0 else 1,
                                                    i % 2 == 0) for i in range(depth)]))
                cin = width
            self.res2, self.res3, self.res4, self.res5 = stages
            self.conv_5 = nn.Sequential(nn.Conv3d(192, 432, 1, bias=False), nn.BatchNorm3d(432), nn.ReLU())
            self.pool = nn.AdaptiveAvgPool3d(1)
            self.lin_5 = nn.Conv3d(432, 2048, 1, bias=False)
            self.proj = nn.Linear(2048, 400)

        def forward(self, x):
            x = self.res5(self.res4(self.res3(self.res2(self.stem(x)))))
            x = torch.relu(self.lin_5(self.pool(self.conv_5(x))))
            return self.proj(x.flatten(1))

    return X3DL()


def main(runs: int = 5):
    import importlib

    t0 = time.perf_counter()
    importlib.import_module("torch")
    t_torch = time.perf_counter() - t0
    t0 = time.perf_counter()
    import comem
    from comem.pytorch.importer import from_module

    t_comem = time.perf_counter() - t0
    model = build_x3d_l()
    shape = (3, 16, 312, 312)
    t0 = time.perf_counter()
    spec = from_module(model, shape)
    first = time.perf_counter() - t0
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        spec = from_module(model, shape)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    r = comem.analyze(spec, clip=16, size=312, profile="continual-inference")
    t_an = time.perf_counter() - t0
    from comem.analyses.sweep import sweep

    t0 = time.perf_counter()
    s = sweep(spec, clips=list(range(4, 104, 4)), sizes=list(range(160, 480, 8)))
    t_sw = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    print(f"model: X3D-L-sized nn.Module, {params:,} params, {sum(1 for _ in model.modules())} modules, "
          f"input {'x'.join(map(str, shape))}")
    print(f"import torch: {t_torch:.2f} s (not counted); import comem: {t_comem * 1000:.0f} ms")
    print(f"import (first call, incl. FakeTensorMode set-up): {first:.2f} s")
    print(f"import: {statistics.median(times):.2f} s beyond torch import (median of {runs}; target < 2 s)")
    print(f"spec: {len(spec.stages)} stages; analysis of the imported spec: {t_an * 1000:.0f} ms "
          f"(state {r.state_floats:,} floats, params {r.params:,} = torch's {params:,})")
    print(f"sweep of the imported spec: 25 clips x 40 sizes = 1,000 points in {t_sw * 1000:.0f} ms "
          f"({int(s.valid.sum())} valid)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
