"""Design sweeps: any spec parameter × clip × size × batch × dtype, exactly.

X3D is a design space (width γ_w, bottleneck γ_b, depth γ_d, kernels, frames,
frame size); this module evaluates it as a grid.

How.  The parameters' values enter the layer tree (phase 1,
:mod:`comem.model.build`) as numpy arrays over the grid's *designs* (one design:
one combination of parameter values), of exact Python fractions, so X3D's
width rounding is exact at every point.  Everything numeric — channels,
hidden widths, params, work, state — then flows through the same formulas as
arrays (phase 2, :mod:`comem.model.walk`), broadcast against the clip and size
axes: one walk of the tree evaluates a whole group of designs.

Some values decide the tree's *structure* — a repeat count, a kernel size, a
``when``, whether a residual needs a projection, whether a design is the
spec's own network (its errata apply).  Where such a value differs across
the designs, the builder raises :class:`comem.core.shim.Split` with the value of
every design; the designs are grouped by it and each group's tree is built
once (recursively, so several structural parameters nest).  Groups are
evaluated in the order of the grid and scattered back, so rows come out in
the order ``params… × clip × size × batch × dtype``.
"""
from __future__ import annotations

import itertools
from types import SimpleNamespace

from comem.core import shim
from comem.errors import ComemError, suggest
from comem.analyses.sweep import SweepResult, sweep_totals
from comem.core.units import MAX_BATCH, MAX_CLIP, MAX_POINTS, check_int, dtype_bytes

#: designs × clip × size pairs evaluated at once (memory: ~10 int64 columns of this many values)
BLOCK_POINTS = 2_000_000


class DesignSweep:
    """One design sweep: the model, the parameter grid and the clip × size ×
    batch × dtype axes; :meth:`block` evaluates a slice of the designs."""

    def __init__(self, model, grid: dict, clips, sizes, batches=(1,), dtypes=("fp32",), profile=None,
                 knobs=None, convention="ptflops", params=None):
        import numpy as np

        from comem.api import prepare
        from comem.model.inputs import frame_size

        if not grid:
            raise ComemError("a design sweep needs at least one parameter with values (e.g. width_factor=1..3:0.25)")
        self.setup = s = prepare(model, profile, knobs, params, convention)
        spec = s.spec
        fixed = dict(params or {})
        for name in grid:
            if name not in spec.params:
                raise ComemError(f"model {spec.name} has no parameter {name!r}{suggest(name, spec.params)}; "
                                 f"its parameters: {', '.join(spec.params) or 'none'}")
            if name in fixed:
                raise ComemError(f"parameter {name!r} is both swept and fixed; give it once")
        self.names = list(grid)
        self.values = [list(grid[n]) for n in self.names]
        for n, vals in zip(self.names, self.values):
            if not vals:
                raise ComemError(f"parameter {n!r} has no values")
        self.fixed = fixed
        self.rows = list(itertools.product(*self.values))
        self.columns_by_param = {n: np.array([r[i] for r in self.rows] + [None], dtype=object)[:-1]
                                 for i, n in enumerate(self.names)}
        self.clips = [check_int(c, "clip (frames)", 1, MAX_CLIP) for c in clips]
        frames = [frame_size(spec, v) for v in sizes]
        self.sizes = [h for h, _ in frames]
        self.widths = [w for _, w in frames]
        self.square = spec.dims != 3 or all(h == w for h, w in frames)
        self.batches = [check_int(b, "batch (streams)", 1, MAX_BATCH) for b in batches]
        self.dt = [dtype_bytes(d) for d in dtypes]
        if not self.clips or not self.sizes or not self.batches or not self.dt:
            raise ComemError("the sweep grid is empty; give at least one clip, size, batch and dtype")
        points = len(self.rows) * len(self.clips) * len(self.sizes) * len(self.batches) * len(self.dt)
        if points > MAX_POINTS:
            raise ComemError(f"the grid has {points:,} points; the limit is {MAX_POINTS:,}")
        self.groups_built = 0  # trees built (one per structure group per block): for benchmarks

    @property
    def points(self) -> int:
        return len(self.rows) * len(self.clips) * len(self.sizes) * len(self.batches) * len(self.dt)

    def blocks(self, block_points: int = BLOCK_POINTS):
        per = max(1, block_points // max(1, len(self.clips) * len(self.sizes)))
        for lo in range(0, len(self.rows), per):
            yield self.block(lo, min(len(self.rows), lo + per))

    # -- one block of designs ---------------------------------------------------------
    def block(self, lo: int, hi: int) -> SweepResult:
        import numpy as np

        s_ = self.setup
        n = hi - lo
        res = SweepResult(s_.spec.name, s_.profile.label, s_.convention, self.clips, self.sizes, self.batches,
                          [d[0] for d in self.dt], continual=s_.continual,
                          widths=[] if self.square else self.widths,
                          param_names=list(self.names), param_rows=self.rows[lo:hi])
        self._out = {}
        self._valid = np.zeros((n, len(self.clips), len(self.sizes)), dtype=bool)
        self._reasons = []
        self._exact = False
        self._fill(np.arange(lo, hi), lo)
        res.valid = self._valid
        res.reasons = self._reasons
        res.exact_python_ints = self._exact
        bdt = object if self._exact else np.int64
        b = np.asarray(self.batches, dtype=bdt)[None, None, None, :, None]
        nbytes = np.asarray([d[1] for d in self.dt], dtype=bdt)[None, None, None, None, :]
        shape = (n, len(self.clips), len(self.sizes), len(self.batches), len(self.dt))
        for k, per_dtype in self._out.items():
            grid = np.stack([per_dtype[d] for d in range(len(self.dt))], axis=-1)[:, :, :, None, :]
            # params describe the design: held once, whatever the streams
            res.columns[k] = np.broadcast_to(grid if k == "params" else grid * b, shape)
        for k in ("state", "transient", "total", "regular_total"):
            if f"{k}_floats" in res.columns:
                res.columns[f"{k}_bytes"] = res.columns[f"{k}_floats"] * nbytes
        return res

    def _fill(self, idx, lo):
        """Evaluate designs ``idx`` (global indices), splitting by structure."""
        import numpy as np

        from comem.model.build import build_graph

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

        from comem.spec import errata
        from comem.model.walk import evaluate_graph

        s_ = self.setup
        if s_.continual and graph.continual_problem is not None:
            self._note(f"no continual form: {graph.continual_problem}")
            return
        n = len(idx)
        rows = idx - lo
        knob_values = s_.profile.as_dict()
        rule = errata.transient_rule(errata.matching(s_.spec, graph, knob_values), knob_values)
        clip_transient = rule != "stage-output"
        per_dtype = rule == "library" and len({d[1] for d in self.dt}) > 1

        def run(c, h, w, nbytes):
            return evaluate_graph(graph, c, h, s_.profile, record=False, width=w, continual=s_.continual,
                                  clip_transient=clip_transient, bytes_per_float=nbytes)

        shape = (n, len(self.clips), len(self.sizes))
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
                col = self._out.setdefault(k, {})
                if d not in col:
                    col[d] = np.zeros((len(self._valid),) + shape[1:], dtype=dtype)
                col[d][rows] = np.broadcast_to(np.asarray(v, dtype=dtype) if np.ndim(v) == 0 else v, shape)
        self._valid[rows] = valid

    def _axes(self, dtype):
        import numpy as np

        c = np.asarray(self.clips, dtype=dtype).reshape(1, -1, 1)
        h = np.asarray(self.sizes, dtype=dtype).reshape(1, 1, -1)
        square = self.square and self.setup.spec.dims == 3
        w = h if square else np.asarray(self.widths, dtype=dtype).reshape(1, 1, -1)
        return c, h, w

    def _passes(self, run, per_dtype, exact):
        """{bytes per float: (totals, invalid masks)}: one walk of the tree per
        distinct dtype size the transient rule cares about (else one)."""
        import numpy as np

        c, h, w = self._axes(object if exact else np.int64)
        out = {}
        for _, nbytes in self.dt:
            key = nbytes if per_dtype else 4
            if key not in out:
                t = run(c, h, w, key)
                out[key] = (self._totals(t), t.invalid)
        return out

    def _too_big(self, results) -> bool:
        """Could int64 have overflowed?  Totals are sums of non-negative
        products, each below its total; a margin of 2^10 below int64 covers
        the batch and bytes multipliers and the intermediate products."""
        import numpy as np

        scale = max(self.batches) * max(d[1] for d in self.dt)
        for totals, _ in results.values():
            for v in totals.values():
                a = np.asarray(v)
                if a.size and (int(a.max()) * scale >= 2 ** 52 or int(a.min()) < 0):
                    return True
        return False

    def _totals(self, t):
        return sweep_totals(t, self.setup.continual, self.setup.convention, with_params=True)

    def _constraint_mask(self, graph, n):
        """The spec's [[constraints]] per design, clip and size (a loop: only
        specs with constraints, e.g. SlowFast's clip multiple of alpha)."""
        import numpy as np

        from comem.api import constraint_failures

        if n * len(self.clips) * len(self.sizes) > 10 ** 6:
            raise ComemError("this spec has [[constraints]]: sweep at most 1,000,000 design/clip/size points at "
                             "a time")
        mask = np.zeros((n, len(self.clips), len(self.sizes)), dtype=bool)
        for p in range(n):
            params = {k: (np.asarray(v).reshape(-1)[p] if not shim.is_concrete(v) else v)
                      for k, v in graph.params.items()}
            concrete = SimpleNamespace(params=params)
            for i, c in enumerate(self.clips):
                for j, hgt in enumerate(self.sizes):
                    for why in constraint_failures(self.setup.spec, concrete, c, hgt, self.widths[j]):
                        mask[p, i, j] = True
                        self._note(why)
        return mask

    def _note(self, reason):
        if reason not in self._reasons:
            self._reasons.append(reason)


def design_sweep(model, grid: dict, clips=None, sizes=None, batches=(1,), dtypes=("fp32",), profile=None,
                 knobs=None, convention="ptflops", params=None) -> SweepResult:
    """Evaluate ``model`` over ``grid`` (parameter name -> values) × clips ×
    sizes × batches × dtypes, in memory: a :class:`~comem.analyses.sweep.SweepResult`
    whose columns have a leading design axis (``param_rows`` holds each
    design's values).  :func:`iter_design_sweep` streams large grids."""
    ds = _design(model, grid, clips, sizes, batches, dtypes, profile, knobs, convention, params)
    res = ds.block(0, len(ds.rows))
    if not res.valid.any():
        raise ComemError(f"no point of the grid is valid for {ds.setup.spec.name}: "
                         + "; ".join(dict.fromkeys(res.reasons)) + "; widen the ranges")
    return res


def iter_design_sweep(model, grid: dict, clips=None, sizes=None, batches=(1,), dtypes=("fp32",), profile=None,
                      knobs=None, convention="ptflops", params=None, block_points: int = BLOCK_POINTS):
    """The design sweep as :class:`~comem.analyses.sweep.SweepResult` blocks of whole
    designs, in row order."""
    ds = _design(model, grid, clips, sizes, batches, dtypes, profile, knobs, convention, params)
    yield from ds.blocks(block_points)


def _design(model, grid, clips, sizes, batches, dtypes, profile, knobs, convention, params) -> DesignSweep:
    from comem.spec.registry import resolve

    spec = resolve(model)
    return DesignSweep(spec, grid, clips if clips is not None else [spec.clip],
                       sizes if sizes is not None else [None], batches, dtypes, profile, knobs, convention, params)
