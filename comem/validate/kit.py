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

    def channels_last(module):
        """Apply ``module`` over the channels (dim 1) of (B, C, ...): move
        them last, apply, move them back (the SlowFast/X3D heads)."""

        def forward(x):
            if x.dim() == 2:
                return module(x)
            perm = [0] + list(range(2, x.dim())) + [1]
            back = [0, x.dim() - 1] + list(range(1, x.dim() - 1))
            return module(x.permute(*perm)).permute(*back)
        return forward

    class ChannelsLastLinear(nn.Module):
        """nn.Linear over the channels of (B, C, T, H, W) (or a step's
        (B, C, H, W)): permute, project, permute back."""

        def __init__(self, cin, cout, bias):
            super().__init__()
            self.linear = nn.Linear(cin, cout, bias=bias)

        def forward(self, x):
            return channels_last(self.linear)(x)

    class ChannelsLastLayerNorm(nn.Module):
        """nn.LayerNorm over the channels, per position."""

        def __init__(self, c, affine):
            super().__init__()
            self.norm = nn.LayerNorm(c, elementwise_affine=affine)
            self.elementwise_affine = affine

        def forward(self, x):
            return channels_last(self.norm)(x)

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
        """The mean over the spatial axes (height and width; the joints of a
        2D model), keeping the dimensions."""

        def __init__(self, dims=3):
            super().__init__()
            self.spatial = dims - 1

        def forward(self, x):
            if not self.spatial:
                return x
            return x.mean(dim=tuple(range(-self.spatial, 0)), keepdim=True)

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
                           ChannelsLastLayerNorm=ChannelsLastLayerNorm,
                           TemporalSubsample=TemporalSubsample, SpatialMean=SpatialMean, Merge=Merge, Streams=Streams,
                           framewise=co.forward_stepping)
