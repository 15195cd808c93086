"""One grid engine: spec parameters × clip × size × batch × dtype, exactly.

A plain sweep (:func:`comem.analyses.sweep.sweep`) is a grid over no spec
parameter: one design, the spec's own network.  A design sweep
(:func:`comem.analyses.sweep.design_sweep`) varies spec parameters: X3D is a
design space (width γ_w, bottleneck γ_b, depth γ_d, kernels, frames, frame
size).

How.  The parameters' values enter the layer tree (phase 1,
:mod:`comem.model.build`) as numpy arrays over the grid's *designs* (one
design: one combination of parameter values), of exact Python fractions, so
X3D's width rounding is exact at every point.  Everything numeric —
channels, params, work, state — then flows through the same formulas as
arrays (phase 2, :mod:`comem.model.walk`), broadcast against the clip and
size axes: one walk of the tree evaluates a whole group of designs at every
clip and size.  The quantities of a point are :func:`comem.model.headline.headline`'s;
batch and dtype are exact multipliers.

Some values decide the tree's *structure* — a repeat count, a kernel size, a
``when``, whether a residual needs a projection.  Where such a value differs
across the designs, the builder raises :class:`comem.core.shim.Split` with the
value of every design; the designs are grouped by it and each group's tree
is built once (recursively, so several structural parameters nest).

Exactness.  Arrays are int64; a group whose totals could come near int64
(:data:`INT64_MARGIN`, with the batch and bytes multipliers) is evaluated
again with arrays of Python integers — slower, never wrong.

One accounting.  A spec's errata belong to its one published network
(:mod:`comem.spec.errata`); across a design space they would make the cost
jump at that one point, so a grid over spec parameters uses the equations
everywhere (``errata = consistent``) and names the published point in its
notes.  A plain sweep is the published network at every point and keeps the
profile's accounting.

Points a network cannot run at (clip or size below its stride, windows
larger than their input, pathways that do not line up, a spec's own
constraints) are marked invalid with the reason.  Large grids stream in
blocks of whole designs (and of clips within one design), in row order.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from types import SimpleNamespace

from comem.core import shim
from comem.core.units import MAX_BATCH, MAX_CLIP, MAX_POINTS, check_int, dtype_bytes
from comem.errors import ComemError, suggest

#: a group whose largest total times the batch and bytes multipliers reaches this is redone with Python ints
INT64_MARGIN = 2 ** 52
COLUMNS = ("state_floats", "transient_floats", "total_floats", "state_bytes", "transient_bytes", "total_bytes",
           "regular_total_floats", "regular_total_bytes", "ops_per_step", "ops_per_clip", "params",
           "ops_per_frame_avg")
#: columns that are averages, not counts (float64; printed as the shortest exact decimal)
AVERAGES = ("ops_per_frame_avg",)
#: columns that describe the design, held once whatever the streams (not multiplied by the batch)
PER_DESIGN = ("params",)
#: quantities of headline() a grid carries (the rest: delay, receptive field, regular transient)
_GRID_QUANTITIES = ("state_floats", "transient_floats", "total_floats", "regular_total_floats", "ops_per_step",
                    "ops_per_frame_avg", "ops_per_clip", "params")
#: designs × clip × size points evaluated at once (memory: ~10 int64 columns of this many values)
BLOCK_POINTS = 2_000_000


@dataclass
class SweepResult:
    model: str
    profile: str
    convention: str
    clips: list
    sizes: list
    batches: list
    dtypes: list
    columns: dict = field(default_factory=dict)  # name -> numpy array ([design,] clip, size, batch, dtype)
    valid: object = None  # bool array ([design,] clip, size)
    reasons: list = field(default_factory=list)
    exact_python_ints: bool = False
    continual: bool = True
    #: frame widths beside ``sizes`` (the heights); empty for square frames
    widths: list = field(default_factory=list)
    #: a design sweep (:mod:`comem.analyses.sweep`): the swept spec parameters, and one
    #: tuple of their values per entry of the leading axis of columns / valid
    param_names: list = field(default_factory=list)
    param_rows: list = field(default_factory=list)
    #: what the reader should know about the whole grid (e.g. its accounting)
    notes: list = field(default_factory=list)

    @property
    def designs(self) -> int:
        return len(self.param_rows) if self.param_names else 1

    @property
    def points(self) -> int:
        return self.designs * len(self.clips) * len(self.sizes) * len(self.batches) * len(self.dtypes)

    def names(self):
        return [c for c in COLUMNS if c in self.columns]

    def frame_headers(self):
        return ["height", "width"] if self.widths else ["size"]

    def headers(self):
        return list(self.param_names) + ["clip"] + self.frame_headers() + ["batch", "dtype", "valid"] + self.names()

    def _frame(self, j):
        return [self.sizes[j], self.widths[j]] if self.widths else [self.sizes[j]]

    def _with_design_axis(self):
        """(columns, valid, param rows) with a leading design axis, also for a
        plain clip x size sweep (one design: the spec's own parameters)."""
        if self.param_names:
            return self.columns, self.valid, self.param_rows
        return {k: v[None] for k, v in self.columns.items()}, self.valid[None], [()]

    def rows(self, limit: int | None = None):
        """Flattened rows: the swept parameters, clip, size (or height,
        width), batch, dtype, valid, then the columns."""
        names = self.names()
        cols, valid, designs = self._with_design_axis()
        out = []
        for p, values in enumerate(designs):
            lead = [param_value(v) for v in values]
            for i, c in enumerate(self.clips):
                for j in range(len(self.sizes)):
                    ok = bool(valid[p, i, j])
                    frame = self._frame(j)
                    for k, b in enumerate(self.batches):
                        for d, dt in enumerate(self.dtypes):
                            row = [*lead, c, *frame, b, dt, ok]
                            for n in names:
                                row.append(_py(cols[n][p, i, j, k, d]) if ok else None)
                            out.append(row)
                            if limit is not None and len(out) >= limit:
                                return out
        return out

    def text_rows(self, fmt: str) -> str:
        """All rows as CSV lines, or JSON arrays separated by ``,\n``: the
        numbers go through one ``tolist`` and a format string per row, the
        fastest way Python has to print millions of integers."""
        import numpy as np

        cols, valid3, designs = self._with_design_axis()
        shape = (len(designs), len(self.clips), len(self.sizes), len(self.batches), len(self.dtypes))
        frames = [self.sizes] + ([self.widths] if self.widths else [])
        axes = [np.broadcast_to(np.asarray(self.clips)[None, :, None, None, None], shape)]
        axes += [np.broadcast_to(np.asarray(f)[None, None, :, None, None], shape) for f in frames]
        axes += [np.broadcast_to(np.asarray(self.batches)[None, None, None, :, None], shape)]
        names = self.names()
        counts = [n for n in names if n not in AVERAGES]
        averages = [n for n in names if n in AVERAGES]  # last in COLUMNS, so the row order holds
        lead = len(axes) - 1  # columns before the dtype: clip, the frame, batch
        exact = any(cols[n].dtype == object for n in counts)
        table = np.stack([a.astype(object if exact else np.int64) for a in axes]
                         + [cols[n] for n in counts], axis=-1).reshape(-1, len(axes) + len(counts)).tolist()
        if averages:
            extra = np.stack([np.asarray(cols[n], dtype=np.float64) for n in averages], axis=-1)
            table = [r + e for r, e in zip(table, extra.reshape(-1, len(averages)).tolist())]
        valid = np.broadcast_to(valid3[:, :, :, None, None], shape).ravel().tolist()
        q = '"' if fmt == "json" else ""
        dts = [f"{q}{d}{q}" for d in self.dtypes]
        k, nd = len(names), len(dts)
        per_design = len(table) // max(1, len(designs))
        prefixes = [",".join(param_text(v) for v in values) + "," if values else "" for values in designs]
        head = ",".join(["%d"] * (lead + 1)) + ",%s"
        values = ",".join(["%d"] * len(counts) + ["%.17g"] * len(averages))
        if fmt == "json":
            ok_fmt = "[%s" + head + ",true," + values + "]"
            bad_fmt = "[%s" + head + ",false," + ",".join(["null"] * k) + "]"
        else:
            ok_fmt = "%s" + head + ",true," + values
            bad_fmt = "%s" + head + ",false" + "," * k
        n = lead + 1
        lines = [(ok_fmt % (prefixes[i // per_design], *r[:n], dts[i % nd], *r[n:])) if ok
                 else (bad_fmt % (prefixes[i // per_design], *r[:n], dts[i % nd]))
                 for i, (r, ok) in enumerate(zip(table, valid))]
        return (",\n" if fmt == "json" else "\n").join(lines)


def param_value(v):
    """A swept parameter's value for a table or JSON: an int, or a float
    when it is not whole (its exact text is :func:`param_text`)."""
    from fractions import Fraction

    if isinstance(v, Fraction):
        return int(v) if v.denominator == 1 else float(v)
    return v


def param_text(v) -> str:
    """A parameter value as a plain number: exact decimals (2.25), else the
    shortest float that reads back to the same double."""
    from fractions import Fraction

    if isinstance(v, Fraction):
        if v.denominator == 1:
            return str(v.numerator)
        d = v.denominator
        twos = fives = 0
        while d % 2 == 0:
            d //= 2
            twos += 1
        while d % 5 == 0:
            d //= 5
            fives += 1
        if d == 1:  # a terminating decimal: print it exactly
            places = max(twos, fives)
            scaled = v * 10 ** places
            sign = "-" if scaled < 0 else ""
            digits = str(abs(scaled.numerator)).rjust(places + 1, "0")
            return f"{sign}{digits[:-places]}.{digits[-places:]}"
        return repr(float(v))
    return str(v)


def _py(v):
    """A numpy scalar as a plain Python number (floats stay floats)."""
    import numpy as np

    if isinstance(v, (float, np.floating)):
        f = float(v)
        return int(f) if f.is_integer() else f
    return int(v) if hasattr(v, "__int__") else v


def design_space_knobs(spec, profile, knobs: dict, varied) -> tuple[dict, str | None]:
    """The knobs of a design space over the spec parameters ``varied``, and a
    note when they differ from ``knobs``: a spec's errata belong to its one
    published network, so over a design space (a grid, a budget search)
    every point uses the equations — ``errata = consistent`` and the
    transient rule the errata correct to — the published point included."""
    from comem.spec import errata

    values = profile.as_dict()
    if not spec.errata or values.get("errata") != "printed":
        return dict(knobs or {}), None
    applicable = [e for e in spec.errata if all(values.get(k) == v for k, v in e.when.items())]
    forced = {"errata": "consistent", "transient": errata.consistent_transient_rule(applicable, values)}
    published = ", ".join(f"{k}={spec.params[k]}" for k in varied)
    note = (f"one accounting over the design space: the equations at every point (errata = consistent, transient = "
            f"{forced['transient']}); the published network ({published}) prints other numbers (comem {spec.name} "
            "marks them)")
    return {**(knobs or {}), **forced}, note


class Grid:
    """One grid: the model, its spec-parameter axes (none for a plain sweep)
    and the clip × size × batch × dtype axes; :meth:`blocks` evaluates it."""

    def __init__(self, model, grid: dict | None, clips, sizes, batches=(1,), dtypes=("fp32",), profile=None,
                 knobs=None, convention="ptflops", params=None):
        import numpy as np

        from comem.api import prepare
        from comem.model.inputs import frame_size
        from comem.spec.domain import check_param
        from comem.spec.registry import resolve

        grid = dict(grid or {})
        spec = resolve(model)
        fixed = dict(params or {})
        for name in grid:
            if name not in spec.params:
                raise ComemError(f"model {spec.name} has no parameter {name!r}{suggest(name, spec.params)}; "
                                 f"its parameters: {', '.join(spec.params) or 'none'}")
            if name in fixed:
                raise ComemError(f"parameter {name!r} is both swept and fixed; give it once")
        knobs = dict(knobs or {})
        self.notes = []
        self.setup = s = prepare(spec, profile, knobs, fixed, convention)
        if grid:
            design_knobs, note = design_space_knobs(spec, s.profile, knobs, grid)
            if note:
                self.setup = s = prepare(spec, profile, design_knobs, fixed, convention)
                self.notes.append(note)
        self.names = list(grid)
        self.values = [list(grid[n]) for n in self.names]
        for n, vals in zip(self.names, self.values):
            if not vals:
                raise ComemError(f"parameter {n!r} has no values")
            check_param(spec, n, vals)  # the domain declared in the spec (comem.spec.domain)
        self.fixed = fixed
        self.rows = list(itertools.product(*self.values))  # [()] for a plain sweep: one design
        self.columns_by_param = {n: np.array([r[i] for r in self.rows] + [None], dtype=object)[:-1]
                                 for i, n in enumerate(self.names)}
        self.clips = [check_int(c, "clip (frames)", 1, MAX_CLIP) for c in clips]
        frames = [frame_size(spec, v) for v in sizes]
        self.sizes = [h for h, _ in frames]
        self.widths = [w for _, w in frames]
        #: the width column is shown only for non-square video frames
        self.square = spec.dims != 3 or all(h == w for h, w in frames)
        self.batches = [check_int(b, "batch (streams)", 1, MAX_BATCH) for b in batches]
        self.dt = [dtype_bytes(d) for d in dtypes]
        if not self.clips or not self.sizes or not self.batches or not self.dt:
            raise ComemError("the sweep grid is empty; give at least one clip, size, batch and dtype")
        if self.points > MAX_POINTS:
            raise ComemError(f"the grid has {self.points:,} points; the limit is {MAX_POINTS:,}")
        self.groups_built = 0  # trees built (one per structure group per block): for benchmarks

    @property
    def points(self) -> int:
        return len(self.rows) * len(self.clips) * len(self.sizes) * len(self.batches) * len(self.dt)

    def blocks(self, block_points: int = BLOCK_POINTS):
        """:class:`SweepResult` blocks in row order: whole designs, and clips
        of one design when one design alone is larger than a block."""
        per_design = len(self.clips) * len(self.sizes)
        if per_design <= block_points:
            per = max(1, block_points // per_design)
            for lo in range(0, len(self.rows), per):
                yield self.block(lo, min(len(self.rows), lo + per))
            return
        per_clips = max(1, block_points // max(1, len(self.sizes)))
        for d in range(len(self.rows)):
            for c in range(0, len(self.clips), per_clips):
                yield self.block(d, d + 1, self.clips[c:c + per_clips])

    def result(self) -> SweepResult:
        """The whole grid in memory; an error when no point is valid."""
        res = self.block(0, len(self.rows))
        if not res.valid.any():
            raise ComemError(f"no point of the grid is valid for {self.setup.spec.name}: "
                             + "; ".join(dict.fromkeys(res.reasons)) + "; widen the ranges")
        return res

    # -- one block ------------------------------------------------------------------
    def block(self, lo: int, hi: int, clips=None) -> SweepResult:
        import numpy as np

        s_ = self.setup
        clips = list(self.clips if clips is None else clips)
        n = hi - lo
        res = SweepResult(s_.spec.name, s_.profile.label, s_.convention, clips, self.sizes, self.batches,
                          [d[0] for d in self.dt], continual=s_.continual,
                          widths=[] if self.square else self.widths,
                          param_names=list(self.names), param_rows=self.rows[lo:hi] if self.names else [])
        self._clips = clips
        self._out = {}
        self._valid = np.zeros((n, len(clips), len(self.sizes)), dtype=bool)
        self._reasons = []
        self._exact = False
        self._fill(np.arange(lo, hi), lo)
        bdt = object if self._exact else np.int64
        b = np.asarray(self.batches, dtype=bdt)[None, None, None, :, None]
        nbytes = np.asarray([d[1] for d in self.dt], dtype=bdt)[None, None, None, None, :]
        shape = (n, len(clips), len(self.sizes), len(self.batches), len(self.dt))
        columns = {}
        for k, per_dtype in self._out.items():
            grid = np.stack([per_dtype[d] for d in range(len(self.dt))], axis=-1)[:, :, :, None, :]
            columns[k] = np.broadcast_to(grid if k in PER_DESIGN else grid * b, shape)
        for k in ("state", "transient", "total", "regular_total"):
            if f"{k}_floats" in columns:
                columns[f"{k}_bytes"] = columns[f"{k}_floats"] * nbytes
        if not self.names:  # a plain sweep: no design axis
            columns = {k: v[0] for k, v in columns.items()}
            self._valid = self._valid[0]
        res.columns = columns
        res.valid = self._valid
        res.reasons = self._reasons
        res.notes = list(self.notes)
        res.exact_python_ints = self._exact
        return res

    def _fill(self, idx, lo):
        """Evaluate designs ``idx`` (global indices), splitting by structure."""
        import numpy as np

        from comem.model.build import build_graph

        if not self.names:
            self.groups_built += 1
            self._evaluate(self.setup.graph, idx, lo)
            return
        overrides = dict(self.fixed)
        for name in self.names:
            overrides[name] = self.columns_by_param[name][idx].reshape(-1, 1, 1)
        try:
            graph = build_graph(self.setup.spec, overrides)
        except shim.Split as split:
            key = np.broadcast_to(split.values, (len(idx), 1, 1)).reshape(len(idx)).tolist()
            groups: dict = {}
            for pos, v in enumerate(key):
                groups.setdefault(v, []).append(pos)
            for positions in groups.values():
                self._fill(idx[positions], lo)
            return
        except ComemError as exc:  # these designs are not a network (e.g. a repeat count below 1)
            self._note(str(exc))
            return
        self.groups_built += 1
        self._evaluate(graph, idx, lo)

    def _evaluate(self, graph, idx, lo):
        import numpy as np

        from comem.core.vocab import TransientRule
        from comem.model.walk import evaluate_graph
        from comem.spec import errata

        s_ = self.setup
        if s_.continual and graph.continual_problem is not None:
            self._note(f"no continual form: {graph.continual_problem}")
            return
        n = len(idx)
        rows = idx - lo
        knob_values = s_.profile.as_dict()
        rule = errata.transient_rule(errata.matching(s_.spec, graph, knob_values), knob_values)
        clip_transient = rule != TransientRule.STAGE_OUTPUT
        #: the library transient counts int64 indices in values of the dtype
        per_dtype = rule == TransientRule.LIBRARY and len({d[1] for d in self.dt}) > 1

        def run(c, h, w, nbytes):
            return evaluate_graph(graph, c, h, s_.profile, record=False, width=w, continual=s_.continual,
                                  clip_transient=clip_transient, bytes_per_float=nbytes)

        shape = (n, len(self._clips), len(self.sizes))
        try:
            results = self._passes(run, per_dtype, self._exact)
            if not self._exact and self._too_big(results):
                # int64 could have wrapped somewhere: redo this group, and the block, exactly
                self._exact = True
                self._out = {k: {d: a.astype(object) for d, a in v.items()} for k, v in self._out.items()}
                results = self._passes(run, per_dtype, True)
        except ComemError as exc:  # these designs cannot run at any point of the grid
            self._note(str(exc))
            return
        dtype = object if self._exact else np.int64
        c, h, w = self._axes(dtype)
        valid = ((c >= graph.temporal_stride) & (h >= graph.spatial_stride) & (w >= graph.width_stride))
        valid = np.broadcast_to(valid, shape).copy()
        if not valid.all():
            self._note(f"clip < {graph.temporal_stride} or size < {graph.spatial_stride} (the network's total "
                       "strides)")
        if s_.spec.constraints:
            valid &= ~self._constraint_mask(graph, n)
        for d, (_, nbytes) in enumerate(self.dt):
            totals, invalid = results[nbytes if per_dtype else 4]
            for mask, reason in invalid:
                m = np.broadcast_to(mask, shape)
                if m.any():
                    valid &= ~m
                    self._note(reason)
            for k, v in totals.items():
                kind = np.float64 if k == "ops_per_frame_avg" and dtype is np.int64 else dtype
                col = self._out.setdefault(k, {})
                if d not in col:
                    col[d] = np.zeros((len(self._valid),) + shape[1:], dtype=kind)
                col[d][rows] = np.broadcast_to(np.asarray(v, dtype=kind) if np.ndim(v) == 0 else v, shape)
        self._valid[rows] = valid

    def _axes(self, dtype):
        import numpy as np

        c = np.asarray(self._clips, dtype=dtype).reshape(1, -1, 1)
        h = np.asarray(self.sizes, dtype=dtype).reshape(1, 1, -1)
        square = self.square and self.setup.spec.dims == 3
        w = h if square else np.asarray(self.widths, dtype=dtype).reshape(1, 1, -1)
        return c, h, w

    def _passes(self, run, per_dtype, exact):
        """{bytes per float: (totals, invalid masks)}: one walk of the tree per
        distinct dtype size the transient rule cares about (else one)."""
        import numpy as np

        from comem.model.headline import headline

        c, h, w = self._axes(object if exact else np.int64)
        out = {}
        for _, nbytes in self.dt:
            key = nbytes if per_dtype else 4
            if key not in out:
                t = run(c, h, w, key)
                values = headline(t, self.setup.continual, self.setup.convention)
                out[key] = ({k: values[k] for k in _GRID_QUANTITIES if k in values}, t.invalid)
        return out

    def _too_big(self, results) -> bool:
        """Could int64 have overflowed?  Totals are sums of non-negative
        products, each below its total; a margin of 2^10 below int64
        (:data:`INT64_MARGIN`) covers the batch and bytes multipliers and the
        intermediate products."""
        import numpy as np

        scale = max(self.batches) * max(d[1] for d in self.dt)
        for totals, _ in results.values():
            for v in totals.values():
                a = np.asarray(v)
                if a.size and (int(a.max()) * scale >= INT64_MARGIN or int(a.min()) < 0):
                    return True
        return False

    def _constraint_mask(self, graph, n):
        """The spec's [[constraints]] per design, clip and size (a loop: only
        specs with constraints, e.g. SlowFast's clip multiple of alpha)."""
        import numpy as np

        from comem.api import constraint_failures

        if n * len(self._clips) * len(self.sizes) > 10 ** 6:
            raise ComemError("this spec has [[constraints]]: sweep at most 1,000,000 design/clip/size points at "
                             "a time")
        mask = np.zeros((n, len(self._clips), len(self.sizes)), dtype=bool)
        for p in range(n):
            params = {k: (np.asarray(v).reshape(-1)[p] if not shim.is_concrete(v) else v)
                      for k, v in graph.params.items()}
            concrete = SimpleNamespace(params=params)
            for i, c in enumerate(self._clips):
                for j, hgt in enumerate(self.sizes):
                    for why in constraint_failures(self.setup.spec, concrete, c, hgt, self.widths[j]):
                        mask[p, i, j] = True
                        self._note(why)
        return mask

    def _note(self, reason):
        if reason not in self._reasons:
            self._reasons.append(reason)
