"""Phase 2: evaluate a layer tree (:mod:`comem.model.build`) at a clip and size.

``clip`` and ``size`` may be Python ints (exact numbers and per-layer
rows), sympy symbols (closed forms) or numpy arrays (vectorised sweeps);
the same code runs for all three because every formula is written over
:mod:`comem.core.shim`.

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

from comem.spec import errata
from comem.core import shim
from comem.errors import ComemError
from comem.core.expr import format_number
from comem.core.vocab import Align, Merge, Role, TransientRule
from comem.model.build import Graph
from comem.layers.base import Env, Shape
from comem.layers.nodes import (LayerNode, ParallelNode, SeqNode, alignment_frames, branch_delay, chain, total_stride,
                                walk_streams)


class WorkDict(dict):
    """``{op: count}`` that owns the numpy grids it accumulates, so adding a
    layer's work to a grid total updates it in place."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.owned: set = set()


@dataclass
class Row:
    """One layer (or ``multiplicity`` identical layers of repeated blocks)."""

    path: str
    stage: str
    name: str
    label: str | None
    kind: Any  # the layer kind (comem.layers)
    cfg: dict
    blocks: tuple | None
    multiplicity: Any
    x: Shape
    y: Shape
    params: Any
    work_clip: dict
    work_step: dict
    rate: Any
    state: Any
    state_consistent: Any
    state_text: tuple  # (symbolic, with numbers)
    erratum: Any = None
    rf: Any = 1
    padding: Any = 0
    stride: Any = 1
    role: Role = Role.LAYER
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
    #: remarks of the layer kinds on how the library transient counts them
    library_notes: list = field(default_factory=list)
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
    clip: Any = 0
    rows: list | None = None
    errata_applied: list = field(default_factory=list)
    #: the spec's errata that describe this network and accounting
    errata: list = field(default_factory=list)
    #: the transient rule in force (the knob's, corrected by an erratum under
    #: errata = consistent) and the one errata = consistent would use
    rule: TransientRule = TransientRule.STAGE_OUTPUT
    consistent_rule: TransientRule = TransientRule.STAGE_OUTPUT
    #: numpy grids only: [(mask of invalid points, reason)]
    invalid: list = field(default_factory=list)

    @property
    def delay(self):
        return self.rf - 1 - self.padding

    # -- the ``transient`` knob's rules ----------------------------------------
    def transient(self, rule: str | None = None):
        """The step transient under one rule of the ``transient`` knob (the
        one in force by default; the largest-map rule counts the input frame
        too)."""
        rule = rule or self.rule
        v = getattr(self, _TRANSIENT_RULES[rule][0])
        return shim.maximum(v, self.input_frame) if rule == TransientRule.LARGEST_MAP else v

    def transient_at(self, rule: str | None = None):
        """Where the step transient peaks (numeric evaluation), for reports."""
        rule = rule or self.rule
        if rule == TransientRule.LARGEST_MAP and self.largest_step < self.input_frame:
            return "input frame"
        return getattr(self, _TRANSIENT_RULES[rule][1])

    def regular_transient(self, rule: str | None = None):
        """The regular model's transient for one clip under the same rule."""
        rule = rule or self.rule
        v = getattr(self, _TRANSIENT_RULES[rule][2])
        return shim.maximum(v, self.input_clip) if rule == TransientRule.LARGEST_MAP else v

    def regular_worst_case(self, rule: str | None = None):
        """Sec. 3.7: the regular model on a stream keeps the clip's ``T−1``
        earlier input frames, plus the transient of one clip forward."""
        return (self.clip - 1) * self.input_frame + self.regular_transient(rule)


#: transient knob -> (step total, where it peaks, regular-model clip total) on Totals
_TRANSIENT_RULES = {
    TransientRule.STAGE_OUTPUT: ("stage_output_step", "stage_output_at", "stage_output_clip"),
    TransientRule.LARGEST_MAP: ("largest_step", "largest_at", "largest_clip"),
    TransientRule.LIVENESS: ("liveness_step", "liveness_at", "liveness_clip"),
    TransientRule.LIBRARY: ("library_step", "library_at", "liveness_clip"),
}


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


def _add_clip_work(t, kind, cfg, x: Shape, y: Shape, knobs, m):
    """Per-clip work of one layer.  On numpy grids, a layer's per-clip work
    is (frames at the layer) × (work of one frame position): the two factors
    are accumulated apart — grouped by the frame count — and multiplied once
    per group at the end, instead of once per layer on the full grid."""
    if not (_is_grid(x.t) or _is_grid(y.t)) or not (_is_grid(x.h) or _is_grid(y.h)):
        work = kind.counted_work(cfg, x, y, False, knobs)
        _add(t.work_clip, work, m)
        return work
    # which temporal extent does each op scale with?  probe with numbers
    probe_x, probe_y = Shape(x.c if shim.is_concrete(x.c) else 1, 2, 1, 1), Shape(y.c if shim.is_concrete(y.c) else 1, 3, 1, 1)
    unit_x, unit_y = probe_x.with_(t=1), probe_y.with_(t=1)
    try:
        scaled = kind.counted_work(cfg, probe_x, probe_y, False, knobs)
        unit = kind.counted_work(cfg, unit_x, unit_y, False, knobs)
    except Exception:  # pragma: no cover - a kind that cannot be probed
        scaled, unit = None, None
    per_frame = kind.counted_work(cfg, x.with_(t=1), y.with_(t=1), False, knobs)
    direct = None
    for op, n1 in per_frame.items():
        factor = None
        ratio = _probe_ratio(scaled, unit, op) if scaled is not None else None
        if ratio is not None:
            factor = x.t if ratio == 2 else (y.t if ratio == 3 else (1 if ratio == 1 else None))
        if factor is None:
            direct = direct or kind.counted_work(cfg, x, y, False, knobs)
            _add(t.work_clip, {op: direct[op]}, m)
            continue
        _add_factored(t, op, factor, n1 if (shim.is_concrete(m) and m == 1) else m * n1)
    return None


def _probe_ratio(scaled, unit, op):
    """How an op's count grows from the 1-frame probe to the 2/3-frame one
    (one number; None when the op is absent or its growth varies across a
    grid of channel counts)."""
    u = unit.get(op)
    if u is None:
        return None
    if not shim.is_concrete(u):
        import numpy as np

        u_arr, s_arr = np.asarray(u), np.asarray(scaled.get(op, 0))
        if not (u_arr != 0).all():
            return None
        r = np.broadcast_to(s_arr * 6 // u_arr, np.broadcast_shapes(u_arr.shape, s_arr.shape))
        if not (s_arr * 6 == r * u_arr).all() or not (r == r.flat[0]).all():
            return None
        return int(r.flat[0]) / 6
    if not u:
        return None
    return scaled.get(op, 0) / u


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


def _guard(multiplicity, value):
    """``value`` when the layer exists; 0 when a symbolic multiplicity may be 0."""
    if shim.is_concrete(multiplicity):
        return value
    return shim.minimum(multiplicity, 1) * value


class _Ctx:
    def __init__(self, graph: Graph, profile, record: bool, continual: bool, clip_transient: bool = True,
                 model_input: Shape | None = None, bytes_per_float: int = 4, batch: int = 1):
        self.graph = graph
        #: compute the regular model's per-layer clip-level transient candidates
        #: (largest map, liveness) — skipped by sweeps that do not report them
        self.clip_transient = clip_transient
        self.profile = profile
        self.knobs = Env(profile.as_dict(), model_input, bytes_per_float, batch)
        self.t = Totals(rows=[] if record else None)
        self.continual = continual
        self.rate = 1  # cumulative temporal stride before the current layer
        matching = errata.matching(graph.spec, graph, self.knobs)
        self.t.errata = matching
        self.t.rule = errata.transient_rule(matching, self.knobs)
        self.t.consistent_rule = errata.consistent_transient_rule(matching, self.knobs)
        self.errata = errata.printed_state(matching, self.knobs)


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
    identity branch or ``Delay(0)`` hands back its input).  ``delays`` lists
    ``(frames, (text, precedence))`` of the layers that delay the node's
    output (``None`` when that is not a plain sum), so an alignment delay can
    be written as its cause, ``(3−1−1)``."""

    __slots__ = ("y", "temporal", "live", "live_clip", "lib", "new", "where", "delays", "emit")

    def __init__(self, y, temporal, live, live_clip, lib, new, where=None, delays=(), emit=None):
        self.y, self.temporal, self.live, self.live_clip, self.lib, self.new = y, temporal, live, live_clip, lib, new
        #: (live_at, lib_at): the layer where each step peak occurs (numeric evaluation only)
        self.where = where or (None, None)
        self.delays = delays
        #: every how many steps the node emits an output (its temporal stride, unless the library differs)
        self.emit = temporal[2] if emit is None else emit


def _pick(cur, cur_at, cand, cand_at):
    """max(cur, cand), remembering where the larger one occurs when numeric."""
    if shim.is_concrete(cur) and shim.is_concrete(cand):
        return (cand, cand_at) if cand > cur else (cur, cur_at)
    return shim.maximum(cur, cand), None


def _allocates(kind, cfg, x, y, knobs):
    v = kind.library_peak(cfg, x, y, knobs)
    return not (shim.is_concrete(v) and v == 0)


def _check_grid(t, node, y):
    if _is_grid(y.t) or _is_grid(y.h):
        for dim in ("t", "h", "w"):
            v = getattr(y, dim)
            if _is_grid(v):
                t.invalid.append((v < 1, f"{node.path}: window larger than its input along {dim.upper()}"))


def _walk_layer(node: LayerNode, x: Shape, ctx: _Ctx, mult, x_held):
    kind, cfg, knobs = node.kind, node.cfg, ctx.knobs
    y = kind.output(cfg, x, knobs)
    kind.check(cfg, x, y, node.path)
    n = node.multiplicity
    m = mult * n
    t = ctx.t
    _check_grid(t, node, y)
    params = kind.params(cfg, x)
    t.params = t.params + m * params
    work_clip = _add_clip_work(t, kind, cfg, x, y, knobs, m)
    inplace = cfg.get("inplace", False) if isinstance(cfg, dict) else False
    if ctx.clip_transient:
        t.largest_clip = shim.maximum(t.largest_clip, _guard(n, y.numel))
        in_clip = 0 if x_held else x.numel
        extra = kind.library_peak_clip(cfg, x, y, knobs) if ctx.t.rule == "library" else 0
        live_clip = _guard(n, in_clip + (0 if inplace else y.numel) + extra)
    else:
        live_clip = 0
    if not ctx.continual:
        if t.rows is not None:
            t.rows.append(Row(node.path, node.stage, node.name, node.label, kind, cfg, node.blocks, m, x, y, params,
                              work_clip, {}, 1, 0, 0, ("", "")))
        return _Step(y, (1, 0, 1), 0, live_clip, 0, True)
    work_step = kind.counted_work(cfg, x, y, True, knobs)
    _add(t.work_step, work_step, m)
    rf, pad, stride = kind.temporal(cfg, x, knobs)
    output_only = kind.output_only(cfg)
    every_step = {op: v for op, v in work_step.items() if op not in output_only}
    on_output = {op: v for op, v in work_step.items() if op in output_only}
    emit = kind.emit_stride(cfg, x, knobs)
    _add(t.work_by_rate.setdefault(ctx.rate, WorkDict()), every_step, m)
    if on_output:
        _add(t.work_by_rate.setdefault(ctx.rate * emit, WorkDict()), on_output, m)
    # the state: the kind's formula, or the formula an erratum prints instead
    formula = kind.state_formula(cfg, knobs)
    consistent = kind.state(cfg, x, y, knobs, formula)
    state, erratum = consistent, None
    if ctx.errata and not (shim.is_concrete(consistent) and consistent == 0):
        erratum = _erratum_for(ctx, node)
        if erratum is not None:
            state = kind.state(cfg, x, y, knobs, erratum.printed)
            if erratum.id not in [e.id for e in t.errata_applied]:
                t.errata_applied.append(erratum)
    t.state = t.state + m * state
    t.state_consistent = t.state_consistent + m * consistent
    if t.rows is not None:
        sym, num = kind.state_text(cfg, x, y, knobs, formula)
        consistent_text = num
        if erratum is not None:
            sym, num = kind.state_text(cfg, x, y, knobs, erratum.printed)
        t.rows.append(Row(node.path, node.stage, node.name, node.label, kind, cfg, node.blocks, m, x, y, params,
                          work_clip, work_step, ctx.rate, state, consistent, (sym, num),
                          erratum.id if erratum is not None else None, rf, pad, stride,
                          consistent_text=consistent_text))
    t.largest_step, t.largest_at = _pick(t.largest_step, t.largest_at, _guard(n, y.frame), node.path)
    x_in = 0 if x_held else x.frame
    live = x_in + (0 if inplace else y.frame)
    lib = x_in + kind.library_peak(cfg, x, y, knobs)
    note = kind.library_note(cfg, knobs)
    if note and note not in t.library_notes:
        t.library_notes.append(note)
    new = _allocates(kind, cfg, x, y, knobs)
    delay = rf - 1 - pad
    if not shim.is_concrete(delay):
        delays = None
    elif delay == 0:
        delays = ()
    elif shim.is_concrete(n) and n == 1:
        delays = ((delay, kind.delay_text(cfg, x, knobs)),)
    else:
        delays = None
    return _Step(y, (rf, pad, stride), _guard(n, live), live_clip, _guard(n, lib), new,
                 (node.path, node.path), delays, emit)


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
    previous child's output) is alive, everything earlier is freed — except,
    in the library's accounting, the sequence's own input: a
    ``co.Sequential`` is called by a frame that keeps its argument until the
    call returns."""
    rf, pad, stride = 1, 0, 1
    live = live_clip = lib = 0
    base_rate = ctx.rate
    m = mult * seq.multiplicity
    held = x_held
    new = False
    live_at = lib_at = None
    delays = ()
    kept = 0  # the sequence's input, once its children have moved past it
    kept_clip = 0  # the same for the regular model's clip: the caller's frame holds it until the sequence returns
    x0 = x
    emit = 1
    for child in seq.children:
        ctx.rate = base_rate * emit
        r = _walk(child, x, ctx, m, held)
        n = child.multiplicity
        crf, cpad, cs = r.temporal
        if not (shim.is_concrete(n) and n == 1) and not (shim.is_concrete(cs) and cs == 1):
            raise ComemError(f"{child.path}: a repeated block cannot have a temporal stride")
        if not (shim.is_concrete(n) and n == 1) and any(
                shim.is_concrete(a) and shim.is_concrete(b) and a != b
                for a, b in ((x.t, r.y.t), (x.h, r.y.h), (x.w, r.y.w))):
            raise ComemError(f"{child.path}: a repeated block must keep its frames' shape (T x H x W), this one "
                             f"turns {x.t}x{x.h}x{x.w} into {r.y.t}x{r.y.h}x{r.y.w}; list the blocks one by one")
        if delays is not None and r.delays:
            plain = shim.is_concrete(stride) and stride == 1 and shim.is_concrete(n) and n == 1
            delays = delays + r.delays if plain else None
        elif r.delays is None:
            delays = None
        rf, pad, stride = chain((rf, pad, stride), r.temporal, n)
        emit = emit * r.emit
        live, live_at = _pick(live, live_at, r.live, r.where[0])
        live_clip = shim.maximum(live_clip, kept_clip + r.live_clip)
        lib, lib_at = _pick(lib, lib_at, kept + r.lib, r.where[1])
        x = r.y
        if r.new:
            new = True
            held = False  # the next child's input is a fresh tensor only this sequence holds
            kept = 0 if x_held else x0.frame
            kept_clip = 0 if x_held else x0.numel
    ctx.rate = base_rate
    return _Step(x, (rf, pad, stride), live, live_clip, lib, new, (live_at, lib_at), delays, emit)


def merged_shape(node, shapes):
    """The output shape of a parallel node's merge."""
    first = shapes[0]
    if node.merge == Merge.CONCAT:
        c = first.c
        for s in shapes[1:]:
            c = c + s.c
        return first.with_(c=c)
    if node.merge == Merge.MUL:
        # broadcasting: the SE gate is (C,1,1,1) against (C,T,H,W)
        return max(shapes, key=lambda s: 0 if (shim.is_concrete(s.h) and s.h == 1) else 1)
    return first


def _check_merge(node, shapes, t=None):
    a = shapes[0]
    for b in shapes[1:]:
        for dim in ("c", "t", "h", "w"):
            va, vb = getattr(a, dim), getattr(b, dim)
            if t is not None and (_is_grid(va) or _is_grid(vb)) and node.merge != Merge.MUL:
                t.invalid.append((va != vb, f"{node.path}: branches differ in {dim.upper()}"))
                continue
            if node.merge == Merge.CONCAT and dim == "c":
                continue
            if node.merge == Merge.MUL and ((shim.is_concrete(vb) and vb == 1) or (shim.is_concrete(va) and va == 1)):
                continue
            if shim.is_concrete(va) and shim.is_concrete(vb) and va != vb:
                raise ComemError(f"{node.path}: branches of the {node.role} give different {dim.upper()} "
                                 f"({va} vs {vb}); fix the spec's strides or channels")


def _frames_text(r, extra):
    """How an alignment delay of ``extra`` frames is written: as the one
    layer of the slowest branch that causes it (``3−1−1``), else the number."""
    if r.delays and len(r.delays) == 1 and shim.is_concrete(extra) and r.delays[0][0] == extra:
        return r.delays[0][1]
    return (format_number(extra), 6)


def _walk_parallel(node: ParallelNode, x, ctx, mult, x_held):
    """Branches run in order on the same input (held until the merge); each
    finished branch's output is held until the merge; the slower branches
    are delay-aligned (continual-inference's auto delay)."""
    t = ctx.t
    m = mult * node.multiplicity
    base_rate = ctx.rate
    centre = node.align == Align.CENTRE and node.shortcut is not None
    order = list(range(len(node.branches)))
    if centre:  # the main branch first: its window decides the shortcut's crop
        order = [i for i in order if i != node.shortcut] + [node.shortcut]
    results = [None] * len(node.branches)
    crop = 0
    for i in order:
        ctx.rate = base_rate
        xi = x.with_(t=x.t - 2 * crop) if centre and i == node.shortcut else x
        results[i] = _walk_seq(node.branches[i], xi, ctx, m, True)
        if centre and i != node.shortcut:
            # the shortcut's input, cropped at both ends, must give the main branch's frames
            s_sc = total_stride(node.branches[node.shortcut])[0]
            twice = x.t - ((results[i].y.t - 1) * s_sc + 1)
            if shim.is_concrete(twice) and twice < 0:
                raise ComemError(f"{node.path}: align = 'centre' needs a main branch that shrinks time, not one "
                                 f"that grows it ({x.t} -> {results[i].y.t} frames)")
            crop = shim.maximum(crop, twice // 2)
    ctx.rate = base_rate
    outs = [r.y for r in results]
    _check_merge(node, outs, t)
    y = merged_shape(node, outs)
    merge_op = {Merge.SUM: "add", Merge.MUL: "mul"}.get(node.merge)
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
    # regular model: branches in order (a centred residual's main branch first, as continual-skeletons'
    # SpatioTemporalBlock runs it), outputs held until the merge
    live_clip = 0
    if ctx.clip_transient:
        hold_x_clip = 0 if x_held else x.numel
        acc_clip = 0
        for r in (results[i] for i in order):
            live_clip = shim.maximum(live_clip, hold_x_clip + acc_clip + r.live_clip)
            acc_clip = acc_clip + (r.y.numel if r.new else 0)
        live_clip = shim.maximum(live_clip, hold_x_clip + acc_clip + y.numel)
    if not ctx.continual:
        return _Step(y, (1, 0, 1), 0, _guard(node.multiplicity, live_clip), 0, True)
    # delay alignment: every branch is delayed to the slowest one (to the
    # centre of the slowest window, for align = "centre")
    delays = [branch_delay(r.temporal[0], r.temporal[1], centre) for r in results]
    D = shim.maximum(*delays) if len(delays) > 1 else delays[0]
    slowest = None
    if shim.is_concrete(D):
        slowest = next(r for r, d in zip(results, delays) if d == D)
    live = lib = 0
    live_at = lib_at = None
    acc = 0
    rfs, pads = [], []
    aligner = node.aligner
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
        if not at_input:
            extra = alignment_frames(extra, s_)
        cfg = {"frames": extra, "c": shape.c}
        if t.rows is not None:
            cfg["frames_text"] = _frames_text(slowest, extra)
        state = aligner.state(cfg, shape, shape, ctx.knobs)
        t.state = t.state + m * state
        t.state_consistent = t.state_consistent + m * state
        rfs.append(rf + (extra if at_input else extra * s_))
        pads.append(p)
        if t.rows is not None:
            t.rows.append(Row(f"{node.path}.{aligner.name}", node.stage, aligner.name, node.label, aligner, cfg,
                              node.blocks, m, shape, shape, 0, {}, {}, ctx.rate, state, state,
                              aligner.state_text(cfg, shape, shape, ctx.knobs), None, extra + 1, 0, 1,
                              role=Role.ALIGNMENT))
        # the delay hands back a copy of a buffered frame while its input is alive
        delay_peak = hold_x + acc + out_new + aligner.library_peak(cfg, shape, shape, ctx.knobs)
        live, live_at = _pick(live, live_at, delay_peak, f"{node.path}.{aligner.name}")
        lib, lib_at = _pick(lib, lib_at, delay_peak, f"{node.path}.{aligner.name}")
        acc = acc + shape.frame
    merged = hold_x + acc + y.frame
    live, live_at = _pick(live, live_at, merged, f"{node.path} (merge)")
    lib, lib_at = _pick(lib, lib_at, merged, f"{node.path} (merge)")
    rf = shim.maximum(*rfs) if len(rfs) > 1 else rfs[0]
    pad = shim.maximum(*pads) if len(pads) > 1 else pads[0]
    g = node.multiplicity
    emits = [r.emit for r in results]
    return _Step(y, (rf, pad, strides[0]), _guard(g, live), _guard(g, live_clip), _guard(g, lib), True,
                 (live_at, lib_at), slowest.delays if slowest is not None else None,
                 shim.maximum(*emits) if len(emits) > 1 else emits[0])


def evaluate_graph(graph: Graph, clip, size, profile, record: bool = True, continual: bool | None = None,
                   width=None, clip_transient: bool = True, bytes_per_float: int = 4, batch: int = 1) -> Totals:
    """Evaluate a layer tree for one clip and frame size (ints, symbols or
    arrays); ``width`` defaults to ``size`` (square frames).

    ``clip_transient=False`` skips the regular model's largest-map and
    liveness candidates (its stage-output transient is always computed).
    ``bytes_per_float`` (the dtype) only matters to the ``library``
    transient, which counts each int64 max-pool index as ``8 / bytes``
    values of the dtype; ``batch`` only whether its streams run batched
    (one stream's reshapes are views, a batch's copy)."""
    if continual is None:
        continual = graph.spec.continual and graph.continual_problem is None
    width = size if width is None else width
    x0 = Shape(graph.in_channels, clip, size, width)
    ctx = _Ctx(graph, profile, record, continual, clip_transient, x0, bytes_per_float, batch)
    t = ctx.t
    t.input_frame = x0.frame
    t.input_clip = x0.numel
    t.clip = clip
    acc = {"rf": 1, "pad": 0, "stride": 1, "emit": 1}

    def stage(st, x):
        ctx.rate = acc["emit"]
        r = _walk_seq(st.body, x, ctx, 1, st.source == "input")
        acc["rf"], acc["pad"], acc["stride"] = chain((acc["rf"], acc["pad"], acc["stride"]), r.temporal)
        acc["emit"] = acc["emit"] * r.emit
        t.liveness_step, t.liveness_at = _pick(t.liveness_step, t.liveness_at, r.live, r.where[0])
        t.library_step, t.library_at = _pick(t.library_step, t.library_at, r.lib, r.where[1])
        if ctx.clip_transient:
            t.liveness_clip = shim.maximum(t.liveness_clip, r.live_clip)
        y = r.y
        if st.merge_into is None:
            _stage_output(t, st, y)
        return y

    def combine(shapes, merge, st, where):
        y = _combine_shapes(t, shapes, merge, st, where)
        if where == "merge_into":
            _stage_output(t, st, y)
        return y

    walk_streams(graph.stages, x0, stage, combine)
    _materialise_clip_work(t)
    t.rf, t.padding, t.stride = acc["rf"], acc["pad"], acc["stride"]
    return t


def _stage_output(t, st, y):
    t.stage_output_step, t.stage_output_at = _pick(t.stage_output_step, t.stage_output_at, y.frame,
                                                   f"{st.name} (output)")
    t.stage_output_clip = shim.maximum(t.stage_output_clip, y.numel)


def _combine_shapes(t, shapes, merge, st, where):
    """Several streams into one: concatenated channels (time and space must
    agree) or a sum."""
    if merge != "concat":
        return shapes[-1] if where == "merge_into" else shapes[0]
    base = shapes[0]
    c = base.c
    for y in shapes[1:]:
        for dim in ("t", "h", "w"):
            a, b = getattr(base, dim), getattr(y, dim)
            if _is_grid(a) or _is_grid(b):
                t.invalid.append((a != b, f"stage {st.name!r}: cannot concatenate into {st.merge_into!r}: "
                                          f"{dim.upper()} differs"))
            elif shim.is_concrete(a) and shim.is_concrete(b) and a != b:
                raise ComemError(f"stage {st.name!r}: cannot concatenate into {st.merge_into!r}: "
                                 f"{dim.upper()} is {b} here but {a} there")
        c = c + y.c
    return base.with_(c=c)
