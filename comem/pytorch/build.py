"""Build real PyTorch models from a comem spec.

:func:`build_models` turns the layer tree of a spec (at a concrete clip
and size) into

* a **regular** ``torch.nn.Module`` that takes a clip ``(B, C, T, H, W)``, and
* a **continual** model made of continual-inference modules used the way
  that library intends: ``co.Residual`` for identity shortcuts and SE
  products, ``co.BroadcastReduce`` (with its automatic delay) for projection
  shortcuts, ``co.Sequential`` for sequences.

Each layer's module comes from its kind (``LayerKind.torch_module`` in
``comem/layers/<kind>.py``): this file names no layer kind.  Weights are
random: only shapes matter.

Both builders record which modules implement each comem row (its ``path``)
and the kind that built them, so instrumented numbers can be compared layer
by layer.
"""
from __future__ import annotations

from collections import OrderedDict, defaultdict

from comem.errors import ComemError
from comem.model.build import Graph
from comem.layers.base import Env, Shape
from comem.layers.nodes import (LayerNode, ParallelNode, SeqNode, alignment_frames, branch_delay, total_stride,
                                walk_streams)
from comem.model.walk import merged_shape
from comem.pytorch.modules import kit


class RowMap:
    """row path -> (layer kind, modules implementing it)."""

    def __init__(self):
        self.kinds = {}
        self.modules = defaultdict(list)
        self.functional = set()  # rows that are functional calls in the model the spec came from

    def add(self, path, kind, module, functional=False):
        self.kinds[path] = kind
        self.modules[path].append(module)
        if functional:
            self.functional.add(path)
        return module

    def items(self):
        return ((p, self.kinds.get(p), mods) for p, mods in self.modules.items())


def _expand_children(seq: SeqNode):
    """Children in their real order, repeating variants by their block indices."""
    items = []
    for ch in seq.children:
        blocks = ch.blocks
        if blocks and ch.multiplicity != 1:  # a repeated block variant: one copy per block index
            for b in blocks:
                items.append((b, ch))
        elif blocks:
            items.append((blocks[0], ch))
        else:
            items.append((None, ch))
    if any(b is not None for b, _ in items) and all(b is not None for b, _ in items):
        items.sort(key=lambda bc: bc[0])
    return [c for _, c in items]


def _stage_input(graph, clip, size, width=None):
    return Shape(graph.in_channels, clip, size, size if width is None else width)


def _combine_shapes(shapes, merge, st, where):
    if merge == "concat":
        return shapes[0].with_(c=sum(s.c for s in shapes))
    return shapes[-1] if where == "merge_into" else shapes[0]


_UNHOOKED: dict = {}


def _unhooked_class(cls):
    """A subclass of ``cls`` that ptflops' hooks (matched by exact type) pass
    over, as they pass over a functional call: a layer that is ``F.relu(x)``
    in the model a spec was imported from counts as that."""
    sub = _UNHOOKED.get(cls)
    if sub is None:
        # same name (kinds read module class names), another type (ptflops matches types exactly)
        sub = _UNHOOKED[cls] = type(cls.__name__, (cls,), {"__module__": __name__, "comem_functional_call": True})
    return sub


def _bodies_modules(k):
    """Adapters for a 2D model of several bodies (``[model] size = [V, M]``).

    The model takes ``(N, C, T, V, M)`` (a step: ``(N, C, V, M)``), as
    continual-skeletons' models do.  The bodies are independent samples, so
    between layers a clip is ``(N·M, C, T, V)`` (continual-skeletons'
    ``reshape2``); a layer whose tensors span the whole frame (the data batch
    norm over ``C·V·M`` features) sees ``(N, C, T, V·M)``, and a layer that
    reduces the frame to one position (the head's mean) averages the bodies
    too (``x.view(N, M, ...).mean(1)``, the reference head)."""
    nn = k.nn

    def fold(x, m):
        # (N, C, T, V, M), or (N, C, T, V·M) after a whole-frame layer, -> (N·M, C, T, V)
        n, c, t = x.shape[:3]
        x = x.reshape(n, c, t, -1, m)
        return x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, x.shape[3])

    class WholeFrame(nn.Module):
        def __init__(self, module, bodies, folded):
            super().__init__()
            self.module, self.bodies, self.folded = module, bodies, folded

        def forward(self, x):
            m = self.bodies
            if self.folded:  # (N·M, C, T, V) -> (N, C, T, V·M)
                nm, c, t, v = x.shape
                x = x.view(nm // m, m, c, t, v).permute(0, 2, 3, 4, 1).reshape(nm // m, c, t, v * m)
            else:            # the model's input (N, C, T, V, M): a view
                x = x.reshape(*x.shape[:3], -1)
            return fold(self.module(x), m)

    class AcrossBodies(nn.Module):
        def __init__(self, module, bodies):
            super().__init__()
            self.module, self.bodies = module, bodies

        def forward(self, x):
            y = self.module(x)
            return y.view(y.shape[0] // self.bodies, self.bodies, *y.shape[1:]).mean(1)

    class Fold(nn.Module):
        def __init__(self, bodies):
            super().__init__()
            self.bodies = bodies

        def forward(self, x):
            return fold(x, self.bodies)

    return WholeFrame, AcrossBodies, Fold


class _Builder:
    """Walk the layer tree once, creating one module per node."""

    def __init__(self, knobs, continual, model_input, dims=3):
        self.k = kit()
        self.knobs = Env(knobs, model_input)
        self.continual = continual
        self.rows = RowMap()
        #: bodies of a 2D model (its frame's width); > 1: see _bodies_modules
        self.bodies = model_input.w if dims == 2 and model_input.w != 1 else 1
        self.folded = False

    def _for_bodies(self, node, x, y, m):
        """Wrap ``m`` so that it sees the bodies as its kind counts them."""
        if self.bodies == 1 or m is None:
            return m
        WholeFrame, AcrossBodies, Fold = _bodies_modules(self.k)
        wrap = (lambda mod: self.k.framewise(mod)) if self.continual else (lambda mod: mod)
        whole = sum(n for n, _ in node.kind.torch_tensors(node.cfg, x, self.continual)) != \
            sum(n for n, _ in node.kind.torch_tensors(node.cfg, x.with_(w=1), self.continual))
        if whole:
            out = wrap(WholeFrame(m, self.bodies, self.folded))
            self.folded = True
            return out
        if not self.folded:
            m = self.sequence([("fold", wrap(Fold(self.bodies))), ("layer", m)])
            self.folded = True
        if y.w == 1 and x.w != 1:
            m = wrap(AcrossBodies(m, self.bodies))
        return m

    def layer(self, node: LayerNode, x: Shape):
        kind = node.kind
        m = kind.torch_module(node.cfg, x, self.k, self.continual, self.knobs)
        f = node.cfg.get("functional") if isinstance(node.cfg, dict) else None
        functional = f is True or (f == "regular" and not self.continual)
        if functional and not self.continual and m is not None:
            m.__class__ = _unhooked_class(type(m))
        self.rows.add(node.path, kind, m, functional)
        y = kind.output(node.cfg, x, self.knobs)
        return self._for_bodies(node, x, y, m), y

    def seq(self, node: SeqNode, x):
        mods = []
        for ch in _expand_children(node):
            m, x = self.build(ch, x)
            mods.append((ch.name, m))
        return self.sequence(mods), x

    def sequence(self, mods):
        nn, co = self.k.nn, self.k.co
        if not self.continual:
            return nn.Sequential(*[m for _, m in mods])
        if not mods:
            return None
        return co.Sequential(OrderedDict((f"{i}_{name}".replace(".", "_"), m) for i, (name, m) in enumerate(mods)))

    def parallel(self, node: ParallelNode, x):
        built, ys = [], []
        skip = node.shortcut
        centre = node.align == "centre" and skip is not None and len(node.branches) == 2
        order = [1 - skip, skip] if centre else range(len(node.branches))
        built, ys = [None] * len(node.branches), [None] * len(node.branches)
        crop = 0
        for i in order:
            xi = x
            if centre and i == skip:
                # the regular shortcut sees its input cropped at both ends to line up with the
                # centre of the main branch's window
                s_t = total_stride(node.branches[i])[0]
                crop = (x.t - ((ys[1 - skip].t - 1) * s_t + 1)) // 2
                xi = x.with_(t=x.t - 2 * crop)
            built[i], ys[i] = self.seq(node.branches[i], xi)
        y = merged_shape(node, ys)
        if not self.continual:
            if crop:
                built[skip] = self.k.CentreCrop(crop, built[skip])
            return self.k.Merge(built, node.merge), y
        co, nn = self.k.co, self.k.nn
        strided = [b for b in node.branches if total_stride(b)[0] != 1]
        if centre and built[skip] is None:
            m = co.Residual(built[1 - skip], reduce=node.merge, temporal_fill="zeros", residual_shrink=True)
        elif (centre or strided) and skip is not None and len(built) == 2:
            # the shortcut delayed explicitly, in its own output frames (continual-skeletons'
            # Delay(tcn.delay // stride), halved for a centred shortcut)
            main = built[1 - skip]
            padding = main.receptive_field - 1 - main.delay  # the library's temporal padding of the branch
            delay = alignment_frames(branch_delay(main.receptive_field, padding, centre),
                                     total_stride(node.branches[skip])[0])
            sc = built[skip] if built[skip] is not None else self.k.framewise(nn.Identity())
            sc = co.Sequential(sc, co.Delay(delay, temporal_fill="zeros", auto_shrink=bool(crop)))
            branches = [sc, main] if skip == 0 else [main, sc]
            m = co.BroadcastReduce(*branches, reduce=node.merge, auto_delay=False)
        elif skip is not None and built[skip] is None and len(built) == 2:
            m = co.Residual(built[1 - skip], reduce=node.merge, temporal_fill="zeros")
        else:
            branches = [b if b is not None else self.k.framewise(nn.Identity()) for b in built]
            m = co.BroadcastReduce(*branches, reduce=node.merge, auto_delay=True)
        # the delays the library inserted to align branches are this node's delay row
        mine = {id(v) for vs in self.rows.modules.values() for v in vs}
        for sub in m.modules():
            if isinstance(sub, co.Delay) and id(sub) not in mine:
                self.rows.add(f"{node.path}.{node.aligner.name}", node.aligner, sub)
        return m, y

    def build(self, node, x):
        if isinstance(node, LayerNode):
            return self.layer(node, x)
        if isinstance(node, SeqNode):
            m, y = self.seq(node, x)
            if m is None:
                m = self.k.framewise(self.k.nn.Identity())
            return m, y
        return self.parallel(node, x)


def build_regular(graph: Graph, clip: int, size: int, knobs: dict, width=None):
    """The regular model and its row map."""
    x0 = _stage_input(graph, clip, size, width)
    b = _Builder(knobs, False, x0, graph.spec.dims)
    stages = []

    def stage(st, x):
        m, y = b.seq(st.body, x)
        stages.append(m)
        return y

    walk_streams(graph.stages, x0, stage, _combine_shapes)
    return b.k.Streams(stages, graph.stages).eval(), b.rows


def build_continual(graph: Graph, clip: int, size: int, knobs: dict, width=None):
    """The continual-inference model and its row map."""
    if not graph.spec.continual or graph.continual_problem:
        raise ComemError(f"{graph.spec.name} has no continual form: "
                         f"{graph.spec.continual_note or graph.continual_problem}")
    if any(isinstance(s.source, list) or s.merge_into for s in graph.stages):
        raise ComemError(f"{graph.spec.name}: multi-stream models have no continual builder")
    x0 = _stage_input(graph, clip, size, width)
    b = _Builder(knobs, True, x0, graph.spec.dims)
    stages = OrderedDict()

    def stage(st, x):
        m, y = b.seq(st.body, x)
        if m is not None:
            stages[st.name] = m
        return y

    walk_streams(graph.stages, x0, stage, _combine_shapes)
    return b.k.co.Sequential(stages).eval(), b.rows


def build_models(graph: Graph, clip: int, size: int, knobs: dict, continual: bool = True, width=None):
    """(regular model, its row map, continual model or None, its row map)."""
    reg, reg_map = build_regular(graph, clip, size, knobs, width)
    if continual:
        com, co_map = build_continual(graph, clip, size, knobs, width)
    else:
        com, co_map = None, RowMap()
    return reg, reg_map, com, co_map
