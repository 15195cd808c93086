"""Phase 2: evaluate a layer tree (:mod:`comem.graph`) at a clip and size.

``clip`` and ``size`` may be Python ints (exact numbers and per-layer
rows), sympy symbols (closed forms) or numpy arrays (vectorised sweeps);
the same code runs for all three because every formula is written over
:mod:`comem.shim`.

What is accumulated (per model):

* params; continual state (and its erratum-free twin ``state_consistent``)
* work ``{op: count}`` per clip (regular model), per full step, and per
  input frame on average (layers behind a temporal stride run every
  ``stride``-th frame)
* transient candidates for every rule of the ``transient`` knob, for one
  step and for one clip of the regular model
* receptive field, temporal padding and stride, composed exactly as
  continual-inference composes them (``Sequential``: ``rf = s·rf_next +
  rf_m − s``; parallel branches: max), delay = ``rf − 1 − padding``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import shim
from .errors import ComemError
from .expr import evaluate as eval_value
from .graph import Graph, LayerNode, ParallelNode, SeqNode
from .layers.base import Shape


class WorkDict(dict):
    """``{op: count}`` that owns the numpy grids it accumulates, so adding a
    layer's work to a grid total updates it in place."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.owned: set = set()


@dataclass
class Row:
    """One layer (or a group of identical layers, ``count`` of them)."""

    path: str
    stage: str
    name: str
    label: str | None
    kind: str
    blocks: tuple | None
    count: Any
    x: Shape
    y: Shape
    params: Any
    work_clip: dict
    work_step: dict
    rate: Any
    state: Any
    state_consistent: Any
    state_formula: tuple
    erratum: Any = None
    rf: Any = 1
    padding: Any = 0
    stride: Any = 1
    role: str = "layer"
    consistent_text: str = ""


@dataclass
class Totals:
    params: Any = 0
    state: Any = 0
    state_consistent: Any = 0
    work_clip: dict = field(default_factory=WorkDict)
    work_step: dict = field(default_factory=WorkDict)
    work_by_rate: dict = field(default_factory=dict)
    #: numpy grids only: per-clip work kept as {op: {key: [T, per-frame sum]}}
    work_clip_factored: dict = field(default_factory=dict)
    stage_output_step: Any = 0
    stage_output_clip: Any = 0
    largest_step: Any = 0
    largest_clip: Any = 0
    liveness_step: Any = 0
    library_step: Any = 0
    liveness_at: Any = None
    library_at: Any = None
    largest_at: Any = None
    stage_output_at: Any = None
    liveness_clip: Any = 0
    rf: Any = 1
    padding: Any = 0
    stride: Any = 1
    input_frame: Any = 0
    input_clip: Any = 0
    out_shape: Any = None
    rows: list | None = None
    errata_applied: list = field(default_factory=list)
    #: numpy grids only: [(mask of invalid points, reason)]
    invalid: list = field(default_factory=list)

    @property
    def delay(self):
        return self.rf - 1 - self.padding


def _add(d: dict, work: dict, mult):
    """``d[op] += mult * n`` for every op of ``work``."""
    one = shim.is_concrete(mult) and mult == 1
    owned = getattr(d, "owned", None)
    for op, n in work.items():
        v = n if one else mult * n
        acc = d.get(op, 0)
        if owned is not None and op in owned and type(v).__module__ == "numpy" and acc.dtype == v.dtype \
                and acc.shape == _broadcast_shape(acc, v):
            acc += v
            continue
        acc = acc + v
        d[op] = acc
        if owned is not None and type(acc).__module__ == "numpy" and acc is not v and acc is not n:
            owned.add(op)


def _is_grid(v) -> bool:
    return type(v).__module__ == "numpy" and getattr(v, "ndim", 0) > 0


def _add_clip_work(t, kind, cfg, x: Shape, y: Shape, ctx, m):
    """Per-clip work of one layer.  On numpy grids, a layer's per-clip work
    is (frames at the layer) × (work of one frame position): the two factors
    are accumulated apart — grouped by the frame count — and multiplied once
    per group at the end, instead of once per layer on the full grid."""
    if not (_is_grid(x.t) or _is_grid(y.t)) or not (_is_grid(x.h) or _is_grid(y.h)):
        work = kind.work(cfg, x, y, False, ctx)
        _add(t.work_clip, work, m)
        return work
    # which temporal extent does each op scale with?  probe with numbers
    probe_x, probe_y = Shape(x.c if shim.is_concrete(x.c) else 1, 2, 1, 1), Shape(y.c if shim.is_concrete(y.c) else 1, 3, 1, 1)
    unit_x, unit_y = probe_x.with_(t=1), probe_y.with_(t=1)
    try:
        scaled = kind.work(cfg, probe_x, probe_y, False, ctx)
        unit = kind.work(cfg, unit_x, unit_y, False, ctx)
    except Exception:  # pragma: no cover - a kind that cannot be probed
        scaled, unit = None, None
    per_frame = kind.work(cfg, x.with_(t=1), y.with_(t=1), False, ctx)
    direct = None
    for op, n1 in per_frame.items():
        factor = None
        if scaled is not None and unit.get(op):
            ratio = scaled.get(op, 0) / unit[op]
            factor = x.t if ratio == 2 else (y.t if ratio == 3 else (1 if ratio == 1 else None))
        if factor is None:
            direct = direct or kind.work(cfg, x, y, False, ctx)
            _add(t.work_clip, {op: direct[op]}, m)
            continue
        _add_factored(t, op, factor, n1 if (shim.is_concrete(m) and m == 1) else m * n1)
    return None


def _add_factored(t, op, factor, per_frame):
    import numpy as np

    groups = t.work_clip_factored.setdefault(op, {})
    key = factor.tobytes() + str(factor.shape).encode() if _is_grid(factor) else ("scalar", factor)
    g = groups.get(key)
    if g is None:
        groups[key] = [factor, per_frame if not _is_grid(per_frame) else np.array(per_frame)]
    else:
        g[1] = g[1] + per_frame


def _materialise_clip_work(t):
    for op, groups in t.work_clip_factored.items():
        for factor, per_frame in groups.values():
            _add(t.work_clip, {op: factor * per_frame}, 1)
    t.work_clip_factored = {}


def _broadcast_shape(a, b):
    import numpy as np

    return np.broadcast_shapes(a.shape, b.shape)


def _guard(count, value):
    """``value`` when the layer exists; 0 when a symbolic count may be 0."""
    if shim.is_concrete(count):
        return value
    return shim.minimum(count, 1) * value


class _Ctx:
    def __init__(self, graph: Graph, profile, record: bool, continual: bool, clip_transient: bool = True):
        self.graph = graph
        #: compute the regular model's per-layer clip-level transient candidates
        #: (largest map, liveness) — skipped by sweeps that do not report them
        self.clip_transient = clip_transient
        self.profile = profile
        self.knobs = profile.as_dict()
        self.t = Totals(rows=[] if record else None)
        self.continual = continual
        self.rate = 1  # cumulative temporal stride before the current layer
        spec = graph.spec
        # state errata this evaluation reports as printed (the transient erratum is a rule, see api)
        self.errata = []
        if self.knobs["errata"] == "printed" and profile.pristine:
            self.errata = [e for e in spec.errata
                           if profile.name in e.profiles and e.quantity == "state" and e.printed]


def _erratum_for(ctx, node):
    for e in ctx.errata:
        if e.stage and e.stage != node.stage:
            continue
        if e.layer and e.layer not in (node.label, node.name):
            continue
        return e
    return None


class _Step:
    """What walking a node returns.

    ``live``/``lib``/``live_clip`` are *inner* peaks: floats alive at the
    node's worst moment beyond what its caller already holds (the caller adds
    its held maps).  ``new`` tells whether the output is a fresh tensor (an
    identity branch or ``Delay(0)`` hands back its input)."""

    __slots__ = ("y", "temporal", "live", "live_clip", "lib", "new", "where")

    def __init__(self, y, temporal, live, live_clip, lib, new, where=None):
        self.y, self.temporal, self.live, self.live_clip, self.lib, self.new = y, temporal, live, live_clip, lib, new
        #: (live_at, lib_at): the layer where each step peak occurs (numeric evaluation only)
        self.where = where or (None, None)


def _pick(cur, cur_at, cand, cand_at):
    """max(cur, cand), remembering where the larger one occurs when numeric."""
    if shim.is_concrete(cur) and shim.is_concrete(cand):
        return (cand, cand_at) if cand > cur else (cur, cur_at)
    return shim.maximum(cur, cand), None


def _allocates(kind, cfg, x, y, knobs):
    v = kind.library_peak(cfg, x, y, knobs)
    return not (shim.is_concrete(v) and v == 0)


def _walk_layer(node: LayerNode, x: Shape, ctx: _Ctx, mult, x_held):
    kind, cfg = node.kind, node.cfg
    y = kind.output(cfg, x)
    kind.check(cfg, x, y, node.path)
    count = node.count
    m = mult * count
    t = ctx.t
    if _is_grid(y.t) or _is_grid(y.h):
        for dim in ("t", "h", "w"):
            v = getattr(y, dim)
            if _is_grid(v):
                t.invalid.append((v < 1, f"{node.path}: window larger than its input along {dim.upper()}"))
    params = kind.params(cfg, x)
    t.params = t.params + m * params
    work_clip = _add_clip_work(t, kind, cfg, x, y, ctx, m)
    inplace = cfg.get("inplace", False) if isinstance(cfg, dict) else False
    if ctx.clip_transient:
        t.largest_clip = shim.maximum(t.largest_clip, _guard(count, y.numel))
        in_clip = 0 if x_held else x.numel
        live_clip = _guard(count, in_clip + (0 if inplace else y.numel))
    else:
        live_clip = 0
    if not ctx.continual:
        if t.rows is not None:
            t.rows.append(Row(node.path, node.stage, node.name, node.label, kind.name, node.blocks, m, x, y, params,
                              work_clip, {}, 1, 0, 0, ("", ""), None))
        return _Step(y, (1, 0, 1), 0, live_clip, 0, True)
    work_step = kind.work(cfg, x, y, True, ctx)
    _add(t.work_step, work_step, m)
    rf, pad, stride = kind.temporal(cfg, x, ctx)
    every_step = {op: n for op, n in work_step.items() if op not in kind.output_only_ops}
    on_output = {op: n for op, n in work_step.items() if op in kind.output_only_ops}
    _add(t.work_by_rate.setdefault(ctx.rate, WorkDict()), every_step, m)
    if on_output:
        _add(t.work_by_rate.setdefault(ctx.rate * stride, WorkDict()), on_output, m)
    state = kind.state(cfg, x, y, ctx.knobs, ctx)
    consistent = state
    erratum = _erratum_for(ctx, node) if ctx.errata else None
    if erratum is not None and not (shim.is_concrete(state) and state == 0):
        kt, kh, kw = cfg.get("kernel") or (1, 1, 1)
        pt = (cfg.get("padding") or (0, 0, 0))[0]
        dt = (cfg.get("dilation") or (1, 1, 1))[0]
        st = (cfg.get("stride") or (1, 1, 1))[0]
        env = {"k_T": kt, "k_H": kh, "k_W": kw, "p_T": pt, "d_T": dt, "s_T": st, "c_O": y.c, "c_I": x.c,
               "n_H": y.h, "n_W": y.w, "H": x.h, "W": x.w, "T": x.t}
        state = eval_value(erratum.printed, env, f"erratum {erratum.id}")
        if erratum.id not in [e.id for e in t.errata_applied]:
            t.errata_applied.append(erratum)
    else:
        erratum = None
    t.state = t.state + m * state
    t.state_consistent = t.state_consistent + m * consistent
    if t.rows is not None:
        sym, num = kind.state_text(cfg, x, y, ctx.knobs, ctx)
        consistent_text = num
        if erratum is not None:
            num = _printed_text(erratum, cfg, x, y, num)
        t.rows.append(Row(node.path, node.stage, node.name, node.label, kind.name, node.blocks, m, x, y, params,
                          work_clip, work_step, ctx.rate, state, consistent, (sym, num),
                          erratum.id if erratum is not None else None, rf, pad, stride,
                          consistent_text=consistent_text))
    t.largest_step, t.largest_at = _pick(t.largest_step, t.largest_at, _guard(count, y.frame), node.path)
    x_in = 0 if x_held else x.frame
    live = x_in + (0 if inplace else y.frame)
    lib = x_in + kind.library_peak(cfg, x, y, ctx.knobs)
    new = _allocates(kind, cfg, x, y, ctx.knobs)
    return _Step(y, (rf, pad, stride), _guard(count, live), live_clip, _guard(count, lib), new,
                 (node.path, node.path))


def _printed_text(erratum, cfg, x, y, fallback):
    """Numbers-in text of the printed formula, e.g. ``(3−1−1)×54×56×56``."""
    text = erratum.printed
    if text.replace(" ", "") == "(k_T-p_T-1)*c_O*n_H*n_W":
        return f"({cfg['kernel'][0]}−{cfg['padding'][0]}−1)×{y.c}×{y.h}×{y.w}"
    return fallback + " (printed: " + text + ")"


def _walk(node, x, ctx, mult, x_held):
    if isinstance(node, LayerNode):
        return _walk_layer(node, x, ctx, mult, x_held)
    if isinstance(node, SeqNode):
        return _walk_seq(node, x, ctx, mult, x_held)
    if isinstance(node, ParallelNode):
        return _walk_parallel(node, x, ctx, mult, x_held)
    raise TypeError(node)  # pragma: no cover


def _walk_seq(seq: SeqNode, x, ctx, mult, x_held):
    """Children run one after another; while child ``i`` runs, its input (the
    previous child's output) is alive, everything earlier is freed."""
    rf, pad, stride = 1, 0, 1
    live = live_clip = lib = 0
    base_rate = ctx.rate
    m = mult * seq.count
    held = x_held
    new = False
    live_at = lib_at = None
    for child in seq.children:
        ctx.rate = base_rate * stride
        r = _walk(child, x, ctx, m, held)
        n = child.count
        crf, cpad, cs = r.temporal
        if not (shim.is_concrete(n) and n == 1) and not (shim.is_concrete(cs) and cs == 1):
            raise ComemError(f"{child.path}: a repeated block cannot have a temporal stride")
        rf = rf + (crf - 1) * stride * n
        pad = pad + cpad * stride * n
        stride = stride * cs
        live, live_at = _pick(live, live_at, r.live, r.where[0])
        live_clip = shim.maximum(live_clip, r.live_clip)
        lib, lib_at = _pick(lib, lib_at, r.lib, r.where[1])
        x = r.y
        if r.new:
            new = True
            held = False  # the next child's input is a fresh tensor only this sequence holds
    ctx.rate = base_rate
    return _Step(x, (rf, pad, stride), live, live_clip, lib, new, (live_at, lib_at))


def _merge_shapes(node, shapes):
    first = shapes[0]
    if node.merge == "concat":
        c = first.c
        for s in shapes[1:]:
            c = c + s.c
        return first.with_(c=c)
    if node.merge == "mul":
        # broadcasting: the SE gate is (C,1,1,1) against (C,T,H,W)
        return max(shapes, key=lambda s: 0 if (shim.is_concrete(s.h) and s.h == 1) else 1)
    return first


def _check_merge(node, shapes, t=None):
    a = shapes[0]
    for b in shapes[1:]:
        for dim in ("c", "t", "h", "w"):
            va, vb = getattr(a, dim), getattr(b, dim)
            if t is not None and (_is_grid(va) or _is_grid(vb)) and node.merge != "mul":
                t.invalid.append((va != vb, f"{node.path}: branches differ in {dim.upper()}"))
                continue
            if node.merge == "concat" and dim == "c":
                continue
            if node.merge == "mul" and ((shim.is_concrete(vb) and vb == 1) or (shim.is_concrete(va) and va == 1)):
                continue
            if shim.is_concrete(va) and shim.is_concrete(vb) and va != vb:
                raise ComemError(f"{node.path}: branches of the {node.role} give different {dim.upper()} "
                                 f"({va} vs {vb}); fix the spec's strides or channels")


def _walk_parallel(node: ParallelNode, x, ctx, mult, x_held):
    """Branches run in order on the same input (held until the merge); each
    finished branch's output is held until the merge; the slower branches
    are delay-aligned (continual-inference's auto delay)."""
    t = ctx.t
    m = mult * node.count
    base_rate = ctx.rate
    results = []
    for branch in node.branches:
        ctx.rate = base_rate
        results.append(_walk_seq(branch, x, ctx, m, True))
    ctx.rate = base_rate
    outs = [r.y for r in results]
    _check_merge(node, outs, t)
    y = _merge_shapes(node, outs)
    merge_op = {"sum": "add", "mul": "mul"}.get(node.merge)
    if merge_op:
        if _is_grid(y.t) and _is_grid(y.h):
            _add_factored(t, merge_op, y.t, y.frame if (shim.is_concrete(m) and m == 1) else m * y.frame)
        else:
            _add(t.work_clip, {merge_op: y.numel}, m)
        if ctx.continual:
            _add(t.work_step, {merge_op: y.frame}, m)
            _add(t.work_by_rate.setdefault(ctx.rate, WorkDict()), {merge_op: y.frame}, m)
    strides = [r.temporal[2] for r in results]
    for s_ in strides[1:]:
        if shim.is_concrete(s_) and shim.is_concrete(strides[0]) and s_ != strides[0]:
            raise ComemError(f"{node.path}: parallel branches must have the same temporal stride")
    hold_x = 0 if x_held else x.frame
    # regular model: branches in order, outputs held until the merge
    live_clip = 0
    if ctx.clip_transient:
        hold_x_clip = 0 if x_held else x.numel
        acc_clip = 0
        for r in results:
            live_clip = shim.maximum(live_clip, hold_x_clip + acc_clip + r.live_clip)
            acc_clip = acc_clip + (r.y.numel if r.new else 0)
        live_clip = shim.maximum(live_clip, hold_x_clip + acc_clip + y.numel)
    if not ctx.continual:
        return _Step(y, (1, 0, 1), 0, _guard(node.count, live_clip), 0, True)
    # delay alignment: every branch is delayed to the slowest one
    delays = [r.temporal[0] - 1 - r.temporal[1] for r in results]
    D = shim.maximum(*delays) if len(delays) > 1 else delays[0]
    live = lib = 0
    live_at = lib_at = None
    acc = 0
    rfs, pads = [], []
    for branch, r, d in zip(node.branches, results, delays):
        rf, p, s_ = r.temporal
        live, live_at = _pick(live, live_at, hold_x + acc + r.live, r.where[0])
        lib, lib_at = _pick(lib, lib_at, hold_x + acc + r.lib, r.where[1])
        extra = D - d
        out_new = r.y.frame if r.new else 0
        if shim.is_concrete(extra) and extra == 0:
            rfs.append(rf)
            pads.append(p)
            acc = acc + out_new
            continue
        at_input = ctx.knobs["residual_delay"] == "block-input" or not branch.children
        shape = x if at_input else r.y
        state = extra * shape.frame
        t.state = t.state + m * state
        t.state_consistent = t.state_consistent + m * state
        rfs.append(rf + extra * s_)
        pads.append(p)
        if t.rows is not None:
            frames_text = _delay_text(node, branch, d, D, ctx)
            t.rows.append(Row(f"{node.path}.delay", node.stage, "delay", node.label, "delay", node.blocks, m,
                              shape, shape, 0, {}, {}, ctx.rate, state, state,
                              ("delay×C×H×W", f"{frames_text}×{shape.c}×{shape.h}×{shape.w}"), None,
                              extra + 1, 0, 1, role="delay"))
        # the delay hands back a copy of a buffered frame while its input is alive
        delay_peak = hold_x + acc + out_new + shape.frame
        live, live_at = _pick(live, live_at, delay_peak, f"{node.path}.delay")
        lib, lib_at = _pick(lib, lib_at, delay_peak, f"{node.path}.delay")
        acc = acc + shape.frame
    merged = hold_x + acc + y.frame
    live, live_at = _pick(live, live_at, merged, f"{node.path} (merge)")
    lib, lib_at = _pick(lib, lib_at, merged, f"{node.path} (merge)")
    rf = shim.maximum(*rfs) if len(rfs) > 1 else rfs[0]
    pad = shim.maximum(*pads) if len(pads) > 1 else pads[0]
    g = node.count
    return _Step(y, (rf, pad, strides[0]), _guard(g, live), _guard(g, live_clip), _guard(g, lib), True,
                 (live_at, lib_at))


def _delay_text(node, branch, d, D, ctx):
    """'(3−1−1)' when the delay comes from one temporal conv of the main branch."""
    main = node.branches[-1] if node.shortcut == 0 else node.branches[0]
    temporal = []

    def collect(n):
        if isinstance(n, LayerNode):
            k = n.cfg.get("kernel") if isinstance(n.cfg, dict) else None
            if n.kind.name == "conv" and k and shim.is_concrete(k[0]) and k[0] > 1:
                temporal.append(n)
        elif isinstance(n, SeqNode):
            for c in n.children:
                collect(c)
        elif isinstance(n, ParallelNode):
            for b in n.branches:
                collect(b)

    collect(main)
    if len(temporal) == 1 and shim.is_concrete(D - d):
        n = temporal[0]
        k, p = n.cfg["kernel"][0], n.cfg["padding"][0]
        if k - p - 1 == D - d:
            return f"({k}−{p}−1)"
    return str(D - d)


def source_is_input(st) -> bool:
    """The model input is held by the caller; every other stage input is a
    fresh map the model itself allocated."""
    return st.source == "input"


def evaluate_graph(graph: Graph, clip, size, profile, record: bool = True, continual: bool | None = None,
                   width=None, clip_transient: bool = True) -> Totals:
    """Evaluate a layer tree for one clip/size (ints, symbols or arrays).

    ``clip_transient=False`` skips the regular model's largest-map and
    liveness candidates (its stage-output transient is always computed)."""
    if continual is None:
        continual = graph.spec.continual and graph.continual_problem is None
    ctx = _Ctx(graph, profile, record, continual, clip_transient)
    t = ctx.t
    width = size if width is None else width
    x0 = Shape(graph.in_channels, clip, size, width)
    t.input_frame = x0.frame
    t.input_clip = x0.numel
    streams = {"input": (x0, (1, 0, 1))}
    rf, pad, stride = 1, 0, 1
    last = None
    for st in graph.stages:
        if isinstance(st.source, list):
            shapes = [streams[s][0] for s in st.source]
            c = shapes[0].c
            for s in shapes[1:]:
                c = c + s.c
            x = shapes[0].with_(c=c) if st.merge == "concat" else shapes[0]
        else:
            x = streams[st.source][0]
        ctx.rate = stride
        r = _walk_seq(st.body, x, ctx, 1, source_is_input(st))
        y, (srf, spad, ss), peak, peak_clip, peak_lib = r.y, r.temporal, r.live, r.live_clip, r.lib
        rf = rf + (srf - 1) * stride
        pad = pad + spad * stride
        stride = stride * ss
        t.liveness_step, t.liveness_at = _pick(t.liveness_step, t.liveness_at, peak, r.where[0])
        t.library_step, t.library_at = _pick(t.library_step, t.library_at, peak_lib, r.where[1])
        if ctx.clip_transient:
            t.liveness_clip = shim.maximum(t.liveness_clip, peak_clip)
        if st.merge_into:
            base = streams[st.merge_into][0]
            if st.merge == "concat":
                for dim in ("t", "h", "w"):
                    a, b = getattr(base, dim), getattr(y, dim)
                    if _is_grid(a) or _is_grid(b):
                        t.invalid.append((a != b, f"stage {st.name!r}: cannot concatenate into {st.merge_into!r}: "
                                                  f"{dim.upper()} differs"))
                    elif shim.is_concrete(a) and shim.is_concrete(b) and a != b:
                        raise ComemError(f"stage {st.name!r}: cannot concatenate into {st.merge_into!r}: "
                                         f"{dim.upper()} is {b} here but {a} there")
                y = base.with_(c=base.c + y.c)
            streams[st.merge_into] = (y, None)
            last = y
        else:
            streams[st.stream] = (y, None)
            last = y
        t.stage_output_step, t.stage_output_at = _pick(t.stage_output_step, t.stage_output_at, y.frame,
                                                       f"{st.name} (output)")
        t.stage_output_clip = shim.maximum(t.stage_output_clip, y.numel)
    _materialise_clip_work(t)
    t.rf, t.padding, t.stride = rf, pad, stride
    t.out_shape = last
    return t
