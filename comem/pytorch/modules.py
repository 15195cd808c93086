"""What a layer kind needs to build its PyTorch modules: ``torch``, ``nn``,
continual-inference (``co``) and a few modules comem adds.

Imported only by ``comem validate`` and the instrumented tests; a layer
kind's :meth:`~comem.layers.base.LayerKind.torch_module` receives the one
:func:`kit` instance.
"""
from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace

from comem.pytorch import require_extra


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

    class ChannelsFirstAttention(nn.Module):
        """nn.MultiheadAttention self-attention over (B, D, T) tokens."""

        def __init__(self, embed_dim, heads, bias):
            super().__init__()
            self.attn = nn.MultiheadAttention(embed_dim, heads, bias=bias, batch_first=True)

        def forward(self, x):
            t = x.transpose(1, 2)
            return self.attn(t, t, t, need_weights=False)[0].transpose(1, 2)

    class ChannelsFirstRecurrent(nn.Module):
        """A batch-first nn.RNN/GRU/LSTM over (B, C, T), its output only."""

        def __init__(self, rnn):
            super().__init__()
            self.rnn = rnn

        def forward(self, x):
            return self.rnn(x.transpose(1, 2))[0].transpose(1, 2)

    class RegularEncoder(nn.Module):
        """A post-norm transformer encoder over (N, D, T) tokens built from
        nn.MultiheadAttention, nn.Linear and nn.LayerNorm (ptflops hooks each);
        ``last``: the last layer computes the newest token only."""

        def __init__(self, d, heads, ff, layers, activation, bias=True, out_bias=True, last=True):
            super().__init__()
            self.attn = nn.ModuleList(nn.MultiheadAttention(d, heads, bias=bias, batch_first=True)
                                      for _ in range(layers))
            if not out_bias:
                for a in self.attn:
                    a.out_proj.bias = None
            self.lin1 = nn.ModuleList(nn.Linear(d, ff) for _ in range(layers))
            self.lin2 = nn.ModuleList(nn.Linear(ff, d) for _ in range(layers))
            self.norm1 = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
            self.norm2 = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
            self.last = last

            self.act = activation if isinstance(activation, nn.Module) else Lambda(activation)
            self.add = Sum()

        def forward(self, x):
            x = x.transpose(1, 2)
            for i, attn in enumerate(self.attn):
                q = x[:, -1:] if (self.last and i == len(self.attn) - 1) else x
                x = self.norm1[i](self.add(q, attn(q, x, x, need_weights=False)[0]))
                x = self.norm2[i](self.add(x, self.lin2[i](self.act(self.lin1[i](x)))))
            return x.transpose(1, 2)

    class Lambda(nn.Module):
        """A functional call (F.relu) as a module, so hooks see it."""

        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, x):
            return self.fn(x)

    class Sum(nn.Module):
        """A residual sum, as a module so hooks see it."""

        def forward(self, a, b):
            return a + b

    class CentreCrop(nn.Module):
        """``module`` applied to its input with ``frames`` frames cut from each
        end in time (a centred residual's regular shortcut)."""

        def __init__(self, frames, module=None):
            super().__init__()
            self.frames, self.module = frames, module

        def forward(self, x):
            x = x[:, :, self.frames:x.shape[2] - self.frames]
            return x if self.module is None else self.module(x)

    class FrameBatchNorm(nn.Module):
        """BatchNorm1d over every element of a frame (C·V features), the
        data_bn of ST-GCN: (N, C, T, V) -> (N, C·V, T) and back."""

        def __init__(self, c, positions, affine):
            super().__init__()
            self.bn = nn.BatchNorm1d(c * positions, affine=affine)
            self.affine = affine

        def forward(self, x):
            n, c, t = x.shape[:3]
            if x.dim() == 3:
                return self.bn(x)
            flat = x.permute(0, 1, 3, 2).reshape(n, c * x.shape[3], t)
            return self.bn(flat).reshape(n, c, x.shape[3], t).permute(0, 1, 3, 2)

    class GraphConvolution(nn.Module):
        """ST-GCN's spatial graph convolution over (N, C, T, V) (AGCN's with
        ``adaptive``): per adjacency subset x·A_k over the joints and a 1x1
        conv, summed, batch-normed, the unit's residual added, ReLU."""

        def __init__(self, cin, cout, joints, subsets=3, adaptive=False, inter=1):
            super().__init__()
            # the fixed adjacency (a frozen parameter in continual-skeletons; a buffer here, so
            # that the parameters are the trainable ones the papers count)
            self.register_buffer("A", torch.eye(joints).expand(subsets, joints, joints).clone())
            self.importance = nn.Parameter(torch.ones(subsets, joints, joints))
            self.adaptive, self.inter = adaptive, inter
            self.convs = nn.ModuleList(nn.Conv2d(cin, cout, 1) for _ in range(subsets))
            if adaptive:
                self.a = nn.ModuleList(nn.Conv2d(cin, inter, 1) for _ in range(subsets))
                self.b = nn.ModuleList(nn.Conv2d(cin, inter, 1) for _ in range(subsets))
                self.soft = nn.Softmax(-2)
            self.res = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout)) if cin != cout else None
            self.bn = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()

        def forward(self, x):
            n, c, t, v = x.shape
            A = self.A + self.importance if self.adaptive else self.A * self.importance
            out = None
            for k, conv in enumerate(self.convs):
                a = A[k]
                if self.adaptive:
                    a1 = self.a[k](x).permute(0, 3, 1, 2).reshape(n, v, self.inter * t)
                    a2 = self.b[k](x).reshape(n, self.inter * t, v)
                    a = self.soft(torch.matmul(a1, a2) / a1.size(-1)) + a
                z = conv(torch.matmul(x.reshape(n, c * t, v), a).reshape(n, c, t, v))
                out = z if out is None else out + z
            out = self.bn(out)
            out = out + (self.res(x) if self.res is not None else x)
            return self.relu(out)

    class SpatialAttentionUnit(nn.Module):
        """S-TR's spatial self-attention over the joints of each frame of
        (N, C, T, V): joint-feature batch norm, q/k/v by a 1x1 conv, per
        head softmax(q·kᵀ)·v over the V joints, a 1x1 output conv, the skip
        when channels match, batch norm, ReLU."""

        def __init__(self, cin, cout, joints, heads=8, dk=16, subsets=3):
            super().__init__()
            self.A = nn.Parameter(torch.ones(subsets, joints, joints))
            self.data_bn = nn.BatchNorm1d(cin * joints)
            self.qkv = nn.Conv2d(cin, 2 * dk + cout, 1)
            self.out = nn.Conv2d(cout, cout, 1)
            self.bn = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.heads, self.dk, self.cin, self.cout = heads, dk, cin, cout

        def forward(self, x):
            n, c, t, v = x.shape
            xn = self.data_bn(x.permute(0, 1, 3, 2).reshape(n, c * v, t)).reshape(n, c, v, t).permute(0, 1, 3, 2)
            xa = xn.permute(0, 2, 1, 3).reshape(n * t, c, 1, v)
            q, k, val = torch.split(self.qkv(xa), [self.dk, self.dk, self.cout], dim=1)
            h = self.heads
            q = q.reshape(n * t, h, self.dk // h, v) * (self.dk // h) ** -0.5
            k = k.reshape(n * t, h, self.dk // h, v)
            val = val.reshape(n * t, h, self.cout // h, v)
            w = torch.softmax(torch.matmul(q.transpose(2, 3), k), dim=-1)
            o = torch.matmul(w, val.transpose(2, 3)).permute(0, 1, 3, 2).reshape(n * t, self.cout, 1, v)
            o = self.out(o).reshape(n, t, self.cout, v).permute(0, 2, 1, 3)
            if self.cin == self.cout:
                o = o + x
            return self.relu(self.bn(o))

    def combine(values, merge, stage, where):
        return torch.cat(values, 1) if merge == "concat" else sum(values[1:], values[0])

    class Streams(nn.Module):
        """The stages of a spec over named streams (one stream: a sequence)."""

        def __init__(self, modules, stages):
            super().__init__()
            self.stages = nn.ModuleList(modules)
            self.meta = stages

        def forward(self, x):
            from comem.layers.nodes import walk_streams

            mods = dict(zip((st.name for st in self.meta), self.stages))
            return walk_streams(self.meta, x, lambda st, v: mods[st.name](v), combine)

    return SimpleNamespace(torch=torch, nn=nn, co=co, Swish=Swish, ChannelsLastLinear=ChannelsLastLinear,
                           ChannelsLastLayerNorm=ChannelsLastLayerNorm,
                           TemporalSubsample=TemporalSubsample, ChannelsFirstAttention=ChannelsFirstAttention,
                           ChannelsFirstRecurrent=ChannelsFirstRecurrent, GraphConvolution=GraphConvolution, FrameBatchNorm=FrameBatchNorm, CentreCrop=CentreCrop, RegularEncoder=RegularEncoder,
                           SpatialAttentionUnit=SpatialAttentionUnit, SpatialMean=SpatialMean, Merge=Merge, Streams=Streams,
                           framewise=co.forward_stepping)
