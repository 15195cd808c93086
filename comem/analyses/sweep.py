"""Vectorised sweeps over clip × size × batch × dtype grids.

One walk of the layer tree with numpy arrays (clip along one axis, size
along another) evaluates every point at once; batch and dtype are exact
multipliers.  Integers are int64; before evaluating, comem computes the
largest point exactly (all totals grow with clip, size and batch) and, if
anything could exceed int64, evaluates with arrays of Python integers
instead — slower, never wrong.  Points a network cannot run at (clip or size
below its stride, windows larger than their input, pathways that do not line
up, a spec's own constraints) are marked invalid with the reason.

Large grids are evaluated and written in blocks of clips
(:func:`iter_sweep`, :meth:`SweepResult.text_rows`), so memory stays bounded
whatever the number of points.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from comem.errors import ComemError
from comem.core.units import MAX_BATCH, MAX_CLIP, check_int, dtype_bytes

INT64_SAFE = 2 ** 62
COLUMNS = ("state_floats", "transient_floats", "total_floats", "state_bytes", "transient_bytes", "total_bytes",
           "regular_total_floats", "regular_total_bytes", "ops_per_step", "ops_per_clip",
           "params")  # params: design sweeps
#: (clip, size) points evaluated at once by the streaming sweep
BLOCK_POINTS = 100000


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
    #: a design sweep (:mod:`comem.analyses.design`): the swept spec parameters, and one
    #: tuple of their values per entry of the leading axis of columns / valid
    param_names: list = field(default_factory=list)
    param_rows: list = field(default_factory=list)

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
        lead = len(axes) - 1  # columns before the dtype: clip, the frame, batch
        exact = any(cols[n].dtype == object for n in names)
        table = np.stack([a.astype(object if exact else np.int64) for a in axes]
                         + [cols[n] for n in names], axis=-1).reshape(-1, len(axes) + len(names)).tolist()
        valid = np.broadcast_to(valid3[:, :, :, None, None], shape).ravel().tolist()
        q = '"' if fmt == "json" else ""
        dts = [f"{q}{d}{q}" for d in self.dtypes]
        k, nd = len(names), len(dts)
        per_design = len(table) // max(1, len(designs))
        prefixes = [",".join(param_text(v) for v in values) + "," if values else "" for values in designs]
        head = ",".join(["%d"] * (lead + 1)) + ",%s"
        if fmt == "json":
            ok_fmt = "[%s" + head + ",true," + ",".join(["%d"] * k) + "]"
            bad_fmt = "[%s" + head + ",false," + ",".join(["null"] * k) + "]"
        else:
            ok_fmt = "%s" + head + ",true," + ",".join(["%d"] * k)
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


def sweep_totals(t, continual: bool, convention: str, with_params: bool = False) -> dict:
    """The result columns of one walk (:class:`comem.model.walk.Totals`), per
    stream and in floats; a design sweep adds the params."""
    from comem.accounting.conventions import weigh

    cols = {}
    if continual:
        cols["state_floats"] = t.state
        cols["transient_floats"] = t.transient()
        cols["total_floats"] = t.state + cols["transient_floats"]
        cols["ops_per_step"] = weigh(t.work_step, convention)
    cols["regular_total_floats"] = t.regular_worst_case()
    cols["ops_per_clip"] = weigh(t.work_clip, convention)
    if with_params:
        cols["params"] = t.params
    return cols


def _py(v):
    return int(v) if hasattr(v, "__int__") else v


class _Sweeper:
    """What every block of one sweep shares: the model, the grid's axes, the
    transient rule, and whether exact Python integers are needed."""

    def __init__(self, model, clips, sizes, batches, dtypes, profile, knobs, convention, params):
        from comem.spec import errata
        from comem.api import prepare

        from comem.model.inputs import frame_size

        self.setup = prepare(model, profile, knobs, params, convention)
        s = self.setup
        self.clips = [check_int(c, "clip (frames)", 1, MAX_CLIP) for c in clips]
        frames = [frame_size(s.spec, v) for v in sizes]
        self.sizes = [h for h, _ in frames]
        self.widths = [w for _, w in frames]
        #: the width column is shown only for non-square video frames
        self.square = s.spec.dims != 3 or all(h == w for h, w in frames)
        self.batches = [check_int(b, "batch (streams)", 1, MAX_BATCH) for b in batches]
        self.dt = [dtype_bytes(d) for d in dtypes]
        if not self.clips or not self.sizes or not self.batches or not self.dt:
            raise ComemError("the sweep grid is empty; give at least one clip, size, batch and dtype")
        knob_values = s.profile.as_dict()
        self.rule = errata.transient_rule(errata.matching(s.spec, s.graph, knob_values), knob_values)
        self.need_clip_transient = self.rule != "stage-output"
        #: the library transient counts int64 indices in values of the dtype
        self.per_dtype = self.rule == "library" and len({d[1] for d in self.dt}) > 1

    def totals(self, t):
        return sweep_totals(t, self.setup.continual, self.setup.convention)

    def evaluate(self, c, s, nbytes=4, record=False, w=None):
        from comem.model.walk import evaluate_graph

        return evaluate_graph(self.setup.graph, c, s, self.setup.profile, record=record, width=w,
                              continual=self.setup.continual, clip_transient=self.need_clip_transient,
                              bytes_per_float=nbytes)

    def exact_needed(self) -> bool:
        """Could any total exceed int64?  Exact at the largest point (totals
        grow with clip and size); a float64 pass bounds it when that point is
        invalid."""
        import numpy as np

        try:
            t = self.evaluate(max(self.clips), max(self.sizes), w=max(self.widths))
            bound = max(int(v) for v in self.totals(t).values())
        except ComemError:
            c = np.asarray(self.clips, dtype=np.float64)[:, None]
            s = np.asarray(self.sizes, dtype=np.float64)[None, :]
            w = np.asarray(self.widths, dtype=np.float64)[None, :]
            t = self.evaluate(c, s, w=w)
            bound = int(max(float(np.max(v)) for v in self.totals(t).values()) * 1.01) + 1
        return bound * max(self.batches) * max(d[1] for d in self.dt) >= INT64_SAFE

    def constraint_mask(self, clips, sizes):
        """The spec's own constraints (e.g. SlowFast: clip a multiple of
        alpha) over a block: (mask of points that break one, reasons)."""
        import numpy as np

        from comem.api import constraint_failures

        mask = np.zeros((len(clips), len(sizes)), dtype=bool)
        reasons = []
        graph = self.setup.graph
        for i, c in enumerate(clips):
            for j, s in enumerate(sizes):
                for why in constraint_failures(self.setup.spec, graph, c, s, self.widths[j]):
                    mask[i, j] = True
                    reasons.append(why)
            if not graph.constraints_use_size:
                mask[i, :] = mask[i, 0]
        return mask, list(dict.fromkeys(reasons))

    def block(self, clips, exact, vectorised=True) -> SweepResult:
        import numpy as np

        s_ = self.setup
        res = SweepResult(s_.spec.name, s_.profile.label, s_.convention, clips, self.sizes, self.batches,
                          [d[0] for d in self.dt], continual=s_.continual, exact_python_ints=exact,
                          widths=[] if self.square else self.widths)
        graph = s_.graph
        c_arr, s_arr, w_arr = np.asarray(clips), np.asarray(self.sizes), np.asarray(self.widths)
        valid = ((c_arr[:, None] >= graph.temporal_stride) & (s_arr[None, :] >= graph.spatial_stride)
                 & (w_arr[None, :] >= graph.width_stride))
        if not valid.all():
            res.reasons.append(f"clip < {graph.temporal_stride} or size < {graph.spatial_stride} "
                               "(the network's total strides)")
        if s_.spec.constraints:
            broken, why = self.constraint_mask(clips, self.sizes) if len(clips) * len(self.sizes) <= 10 ** 6 \
                else self._constraint_mask_by_axis(clips)
            if broken.any():
                valid &= ~broken
                res.reasons.extend(why)
        sizes_by_dtype = sorted({d[1] for d in self.dt}) if self.per_dtype else [4]
        per_bytes = {}
        if vectorised:
            c = np.asarray(clips, dtype=object if exact else np.int64)[:, None]
            s = np.asarray(self.sizes, dtype=object if exact else np.int64)[None, :]
            w = s if self.square and s_.spec.dims == 3 else \
                np.asarray(self.widths, dtype=object if exact else np.int64)[None, :]
            for nb in sizes_by_dtype:
                t = self.evaluate(c, s, nb, w=w)
                per_bytes[nb] = self.totals(t)
                for mask, reason in t.invalid:
                    m = np.broadcast_to(mask, valid.shape)
                    if m.any():
                        valid = valid & ~m
                        res.reasons.append(reason)
        else:
            for nb in sizes_by_dtype:
                cols = per_bytes.setdefault(nb, {})
                for i, cv in enumerate(clips):
                    for j, sv in enumerate(self.sizes):
                        if not valid[i, j]:
                            continue
                        try:
                            t = self.evaluate(cv, sv, nb, w=self.widths[j])
                        except ComemError as exc:
                            valid[i, j] = False
                            res.reasons.append(str(exc))
                            continue
                        for k, v in self.totals(t).items():
                            cols.setdefault(k, np.zeros((len(clips), len(self.sizes)), dtype=object))[i, j] = v
        res.valid = valid
        bdt = object if exact else np.int64
        b = np.asarray(self.batches, dtype=bdt)[None, None, :, None]
        nbytes = np.asarray([d[1] for d in self.dt], dtype=bdt)[None, None, None, :]
        shape = (len(clips), len(self.sizes), len(self.batches), len(self.dt))
        for k in per_bytes[sizes_by_dtype[0]]:
            grids = []
            for _, size_d in self.dt:
                v = per_bytes[size_d if self.per_dtype else 4][k]
                grids.append(np.broadcast_to(np.asarray(v)[..., None] if np.ndim(v) else v,
                                             (len(clips), len(self.sizes), 1)))
            grid = np.stack(grids, axis=-1) if self.per_dtype else grids[0][..., None]
            res.columns[k] = np.broadcast_to(grid * b, shape)
        for k in ("state", "transient", "total", "regular_total"):
            if f"{k}_floats" in res.columns:
                res.columns[f"{k}_bytes"] = res.columns[f"{k}_floats"] * nbytes
        return res

    def _constraint_mask_by_axis(self, clips):
        """Constraints over a large block, evaluated per clip when they do not
        involve the size."""
        import numpy as np

        if self.setup.graph.constraints_use_size:
            raise ComemError("this spec's constraints depend on the size; sweep at most 1,000,000 clip/size pairs "
                             "at a time")
        col, why = self.constraint_mask(clips, self.sizes[:1])
        return np.broadcast_to(col, (len(clips), len(self.sizes))).copy(), why


def sweep(model, clips, sizes, batches=(1,), dtypes=("fp32",), profile=None, knobs=None, convention="ptflops",
          params=None, vectorised: bool = True) -> SweepResult:
    """Evaluate ``model`` on the grid ``clips × sizes × batches × dtypes`` at
    once (for grids that fit in memory; :func:`iter_sweep` streams)."""
    sw = _Sweeper(model, clips, sizes, batches, dtypes, profile, knobs, convention, params)
    res = sw.block(sw.clips, sw.exact_needed() if vectorised else False, vectorised)
    if not res.valid.any():
        raise ComemError(f"no point of the grid is valid for {sw.setup.spec.name}: "
                         + "; ".join(dict.fromkeys(res.reasons)) + "; widen the ranges")
    return res


def iter_sweep(model, clips, sizes, batches=(1,), dtypes=("fp32",), profile=None, knobs=None,
               convention="ptflops", params=None, block_points: int = BLOCK_POINTS):
    """The sweep as a sequence of :class:`SweepResult` blocks of whole clips,
    each of about ``block_points`` (clip, size) pairs, in row order."""
    sw = _Sweeper(model, clips, sizes, batches, dtypes, profile, knobs, convention, params)
    exact = sw.exact_needed()
    per = max(1, block_points // max(1, len(sw.sizes)))
    for i in range(0, len(sw.clips), per):
        yield sw.block(sw.clips[i:i + per], exact)
