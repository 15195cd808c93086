"""What a layer kind needs to build its PyTorch modules: ``torch``, ``nn``,
continual-inference (``co``) and a few modules comem adds.

Imported only by ``comem validate`` and the instrumented tests; a layer
kind's :meth:`~comem.layers.base.LayerKind.torch_module` receives the one
:func:`kit` instance.
"""
from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace

from . import require_extra


@lru_cache(maxsize=1)
def kit():
    require_extra()
    import continual as co
    import torch
    from torch import nn

    class Swish(nn.Module):
        """``x·sigmoid(x)`` (X3D's activation)."""

        def forward(self, x):
            return x * torch.sigmoid(x)

    class ChannelsLastLinear(nn.Module):
        """nn.Linear over the channels of (B, C, T, H, W): permute, project,
        permute back (the SlowFast/X3D heads)."""

        def __init__(self, cin, cout, bias):
            super().__init__()
            self.linear = nn.Linear(cin, cout, bias=bias)

        def forward(self, x):
            return self.linear(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)

    class TemporalSubsample(nn.Module):
        """Every ``factor``-th frame (SlowFast's PackPathway)."""

        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            t = x.shape[2]
            idx = torch.linspace(0, t - 1, t // self.factor).long()
            return torch.index_select(x, 2, idx)

    class SpatialMean(nn.Module):
        """The mean over height and width, keeping the dimensions."""

        def forward(self, x):
            return x.mean(dim=(-2, -1), keepdim=True)

    class Merge(nn.Module):
        """Branches on one input, summed, multiplied or concatenated."""

        def __init__(self, branches, op):
            super().__init__()
            self.branches = nn.ModuleList(branches)
            self.op = op

        def forward(self, x):
            outs = [b(x) for b in self.branches]
            if self.op == "concat":
                return torch.cat(outs, 1)
            y = outs[0]
            for o in outs[1:]:
                y = y * o if self.op == "mul" else y + o
            return y

    def combine(values, merge, stage, where):
        return torch.cat(values, 1) if merge == "concat" else sum(values[1:], values[0])

    class Streams(nn.Module):
        """The stages of a spec over named streams (one stream: a sequence)."""

        def __init__(self, modules, stages):
            super().__init__()
            self.stages = nn.ModuleList(modules)
            self.meta = stages

        def forward(self, x):
            from ..nodes import walk_streams

            mods = dict(zip((st.name for st in self.meta), self.stages))
            return walk_streams(self.meta, x, lambda st, v: mods[st.name](v), combine)

    return SimpleNamespace(torch=torch, nn=nn, co=co, Swish=Swish, ChannelsLastLinear=ChannelsLastLinear,
                           TemporalSubsample=TemporalSubsample, SpatialMean=SpatialMean, Merge=Merge, Streams=Streams,
                           framewise=co.forward_stepping)
