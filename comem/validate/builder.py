"""Build real PyTorch models from a comem spec.

:func:`build_models` turns the layer tree of a spec (at a concrete clip
and size) into

* a **regular** ``torch.nn.Module`` that takes a clip ``(B, C, T, H, W)``, and
* a **continual** model made of continual-inference modules used the way
  that library intends: ``co.Conv3d``, BatchNorm and activations through
  ``co.forward_stepping``, ``co.Residual`` for identity shortcuts and SE
  products, ``co.BroadcastReduce`` (with its automatic delay) for projection
  shortcuts, ``co.AvgPool3d`` / ``co.AdaptiveAvgPool3d`` / ``co.MaxPool3d``,
  ``co.Linear(channel_dim=1)`` and ``co.Delay``.

Frame-wise SE blocks use a continual global pool with a 1-frame window; the
final global pool's window is the clip at that layer; stem and temporal
max pools are continual pools.  Weights are random: only shapes matter.

Both builders record which modules implement each comem row (its ``path``),
so instrumented numbers can be compared layer by layer.
"""
from __future__ import annotations

from collections import OrderedDict, defaultdict

from . import require_extra
from ..errors import ComemError
from ..graph import Graph, LayerNode, ParallelNode, SeqNode
from ..layers.base import Shape
from ..walker import _merge_shapes as merged_shape


def _torch():
    require_extra()
    import continual as co
    import torch
    from torch import nn

    return torch, nn, co


class _Modules:
    """row path -> modules implementing it (per model)."""

    def __init__(self):
        self.by_path = defaultdict(list)

    def add(self, path, module):
        self.by_path[path].append(module)
        return module


def _expand_children(seq: SeqNode):
    """Children in their real order, repeating variants by their block indices."""
    items = []
    for ch in seq.children:
        blocks = ch.blocks
        if blocks and ch.count != 1:  # a repeated block variant: one copy per block index
            for b in blocks:
                items.append((b, ch))
        elif blocks:
            items.append((blocks[0], ch))
        else:
            items.append((None, ch))
    if any(b is not None for b, _ in items) and all(b is not None for b, _ in items):
        items.sort(key=lambda bc: bc[0])
    return [c for _, c in items]


def _concrete(v, what):
    if not isinstance(v, int):
        raise ComemError(f"building a PyTorch model needs concrete numbers; {what} is {v!r}")
    return v


# ---------------------------------------------------------------------------
# regular model

def build_regular(graph: Graph, clip: int, size: int, knobs: dict):
    torch, nn, co = _torch()

    class Swish(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(x)

    class ChannelsLastLinear(nn.Module):
        """nn.Linear over channels of (B, C, T, H, W): permute, project, permute back."""

        def __init__(self, cin, cout, bias):
            super().__init__()
            self.linear = nn.Linear(cin, cout, bias=bias)

        def forward(self, x):
            return self.linear(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)

    class TemporalSubsample(nn.Module):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            t = x.shape[2]
            idx = torch.linspace(0, t - 1, t // self.factor).long()
            return torch.index_select(x, 2, idx)

    class Merge(nn.Module):
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

    class Streams(nn.Module):
        """Runs stages over named streams (single stream: a plain sequence)."""

        def __init__(self, stages):
            super().__init__()
            self.stages = nn.ModuleList([m for m, _ in stages])
            self.meta = [meta for _, meta in stages]

        def forward(self, x):
            streams = {"input": x}
            last = x
            for mod, (source, stream, merge, merge_into) in zip(self.stages, self.meta):
                if isinstance(source, list):
                    xs = [streams[s] for s in source]
                    inp = torch.cat(xs, 1) if merge == "concat" else sum(xs[1:], xs[0])
                else:
                    inp = streams[source]
                y = mod(inp)
                if merge_into:
                    y = torch.cat([streams[merge_into], y], 1) if merge == "concat" else streams[merge_into] + y
                    streams[merge_into] = y
                else:
                    streams[stream] = y
                last = y
            return last

    mods = _Modules()

    def layer(node: LayerNode, x: Shape):
        k, cfg = node.kind.name, node.cfg
        if k == "conv":
            m = nn.Conv3d(cfg["c_in"], cfg["c_out"], cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"],
                          cfg["groups"], cfg["bias"])
        elif k == "batchnorm":
            m = nn.BatchNorm3d(cfg["c"], affine=cfg["affine"])
        elif k == "relu":
            m = nn.ReLU(inplace=cfg.get("inplace", False))
        elif k == "swish":
            m = Swish()
        elif k == "sigmoid":
            m = nn.Sigmoid()
        elif k == "softmax":
            m = nn.Softmax(dim=1)
        elif k in ("dropout", "identity"):
            m = nn.Dropout(0.5) if k == "dropout" else nn.Identity()
        elif k == "linear":
            m = ChannelsLastLinear(cfg["c_in"], cfg["c_out"], cfg["bias"])
        elif k == "delay":
            m = nn.Identity()
        elif k == "temporal_subsample":
            m = TemporalSubsample(cfg["factor"])
        elif k in ("avgpool", "maxpool"):
            if cfg["global"]:
                if cfg["adaptive"]:
                    m = nn.AdaptiveAvgPool3d(1) if k == "avgpool" else nn.AdaptiveMaxPool3d(1)
                else:
                    kern = (_concrete(x.t, "T"), _concrete(x.h, "H"), _concrete(x.w, "W"))
                    m = nn.AvgPool3d(kern, stride=1) if k == "avgpool" else nn.MaxPool3d(kern, stride=1)
            else:
                cls = nn.AvgPool3d if k == "avgpool" else nn.MaxPool3d
                extra = {} if k == "avgpool" else {"dilation": cfg["dilation"]}
                m = cls(cfg["kernel"], cfg["stride"], cfg["padding"], **extra)
        else:  # pragma: no cover
            raise ComemError(f"no PyTorch module for layer kind {k!r}")
        mods.add(node.path, m)
        return m, node.kind.output(cfg, x)

    def seq(node: SeqNode, x):
        out = []
        for ch in _expand_children(node):
            m, x = build(ch, x)
            out.append(m)
        return nn.Sequential(*out), x

    def parallel(node: ParallelNode, x):
        branches, ys = [], []
        for b in node.branches:
            m, y = seq(b, x)
            branches.append(m)
            ys.append(y)
        return Merge(branches, node.merge), merged_shape(node, ys)

    def build(node, x):
        if isinstance(node, LayerNode):
            return layer(node, x)
        if isinstance(node, SeqNode):
            return seq(node, x)
        return parallel(node, x)

    stages = []
    streams = {"input": Shape(graph.in_channels, clip, size, size)}
    for st in graph.stages:
        if isinstance(st.source, list):
            xs = [streams[s] for s in st.source]
            x = xs[0].with_(c=sum(v.c for v in xs)) if st.merge == "concat" else xs[0]
        else:
            x = streams[st.source]
        m, y = seq(st.body, x)
        stages.append((m, (st.source, st.stream, st.merge, st.merge_into)))
        if st.merge_into:
            base = streams[st.merge_into]
            streams[st.merge_into] = base.with_(c=base.c + y.c) if st.merge == "concat" else y
        else:
            streams[st.stream] = y
    model = Streams(stages).eval()
    return model, mods.by_path


# ---------------------------------------------------------------------------
# continual model

def build_continual(graph: Graph, clip: int, size: int, knobs: dict):
    torch, nn, co = _torch()
    if not graph.spec.continual or graph.continual_problem:
        raise ComemError(f"{graph.spec.name} has no continual form: "
                         f"{graph.spec.continual_note or graph.continual_problem}")
    if len(graph.stages) and any(isinstance(s.source, list) or s.merge_into for s in graph.stages):
        raise ComemError(f"{graph.spec.name}: multi-stream models have no continual builder")

    class Swish(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(x)

    mods = _Modules()
    fs = co.forward_stepping

    def layer(node: LayerNode, x: Shape):
        k, cfg = node.kind.name, node.cfg
        if k == "conv":
            m = co.Conv3d(cfg["c_in"], cfg["c_out"], cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"],
                          cfg["groups"], cfg["bias"], temporal_fill="zeros")
        elif k == "batchnorm":
            m = fs(nn.BatchNorm3d(cfg["c"], affine=cfg["affine"]))
        elif k == "relu":
            m = fs(nn.ReLU(inplace=cfg.get("inplace", False)))
        elif k == "swish":
            m = fs(Swish())
        elif k == "sigmoid":
            m = fs(nn.Sigmoid())
        elif k == "softmax":
            m = fs(nn.Softmax(dim=1))
        elif k in ("dropout", "identity"):
            m = fs(nn.Dropout(0.5)) if k == "dropout" else fs(nn.Identity())
        elif k == "linear":
            m = co.Linear(cfg["c_in"], cfg["c_out"], bias=cfg["bias"], channel_dim=1)
        elif k == "delay":
            m = co.Delay(cfg["frames"])
        elif k in ("avgpool", "maxpool"):
            if cfg["global"]:
                window = cfg["window"]
                if window == "se":
                    window = knobs["se_pool"]
                    if window == "clip-causal":
                        raise ComemError("se_pool = clip-causal has no continual-inference module (its pools "
                                         "always delay by their window); validate se_pool = frame or clip")
                w = 1 if window == "frame" else _concrete(x.t, "T")
                if cfg["adaptive"]:
                    cls = co.AdaptiveAvgPool3d if k == "avgpool" else co.AdaptiveMaxPool3d
                    m = cls((1, 1, 1), kernel_size=w)
                else:
                    cls = co.AvgPool3d if k == "avgpool" else co.MaxPool3d
                    m = cls((w, _concrete(x.h, "H"), _concrete(x.w, "W")), stride=1)
            else:
                if k == "avgpool":
                    m = co.AvgPool3d(cfg["kernel"], cfg["stride"], cfg["padding"], dilation=cfg["dilation"])
                else:
                    m = co.MaxPool3d(cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"])
        else:
            raise ComemError(f"layer kind {k!r} has no continual-inference module")
        mods.add(node.path, m)
        return m, node.kind.output(cfg, x)

    def seq(node: SeqNode, x, name="seq"):
        out = OrderedDict()
        for i, ch in enumerate(_expand_children(node)):
            m, x = build(ch, x)
            out[f"{i}_{ch.name}".replace(".", "_")] = m
        if not out:
            return None, x
        return co.Sequential(out), x

    def parallel(node: ParallelNode, x):
        built, ys = [], []
        for b in node.branches:
            m, y = seq(b, x)
            built.append(m)
            ys.append(y)
        y = merged_shape(node, ys)
        reduce = node.merge
        skip = node.shortcut
        if skip is not None and built[skip] is None and len(built) == 2:
            main = built[1 - skip]
            m = co.Residual(main, reduce=reduce, temporal_fill="zeros")
        else:
            branches = [b if b is not None else fs(nn.Identity()) for b in built]
            m = co.BroadcastReduce(*branches, reduce=reduce, auto_delay=True)
        # the delays the library inserted to align branches belong to this node's delay row
        mine = {id(v) for vs in mods.by_path.values() for v in vs}
        for sub in m.modules():
            if isinstance(sub, co.Delay) and id(sub) not in mine:
                mods.add(f"{node.path}.delay", sub)
        return m, y

    def build(node, x):
        if isinstance(node, LayerNode):
            return layer(node, x)
        if isinstance(node, SeqNode):
            m, y = seq(node, x)
            return (m if m is not None else fs(nn.Identity())), y
        return parallel(node, x)

    x = Shape(graph.in_channels, clip, size, size)
    stages = OrderedDict()
    for st in graph.stages:
        m, x = seq(st.body, x)
        if m is not None:
            stages[st.name] = m
    model = co.Sequential(stages).eval()
    return model, mods.by_path


def build_models(graph: Graph, clip: int, size: int, knobs: dict, continual: bool = True):
    """(regular model, its row map, continual model or None, its row map)."""
    reg, reg_map = build_regular(graph, clip, size, knobs)
    if continual:
        com, co_map = build_continual(graph, clip, size, knobs)
    else:
        com, co_map = None, {}
    return reg, reg_map, com, co_map
