"""Vectorised sweeps over clip × size × batch × dtype grids.

One walk of the layer tree with numpy arrays (clip along one axis, size
along another) evaluates every point at once; batch and dtype are exact
multipliers.  Integers are int64; before evaluating, comem computes the
largest point exactly (all totals grow with clip, size and batch) and, if
anything could exceed int64, evaluates with arrays of Python integers
instead — slower, never wrong.  Points a network cannot run at (clip or size
below its stride, windows larger than their input, pathways that do not line
up) are marked invalid with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ComemError
from .units import MAX_BATCH, MAX_CLIP, MAX_SIZE, check_int, dtype_bytes

INT64_SAFE = 2 ** 62
COLUMNS = ("state_floats", "transient_floats", "total_floats", "total_bytes", "regular_total_floats",
           "regular_total_bytes", "ops_per_step", "ops_per_clip")


@dataclass
class SweepResult:
    model: str
    profile: str
    convention: str
    clips: list
    sizes: list
    batches: list
    dtypes: list
    columns: dict = field(default_factory=dict)  # name -> numpy array (clip, size, batch, dtype)
    valid: object = None  # bool array (clip, size)
    reasons: list = field(default_factory=list)
    exact_python_ints: bool = False
    continual: bool = True

    @property
    def points(self) -> int:
        return len(self.clips) * len(self.sizes) * len(self.batches) * len(self.dtypes)

    def rows(self, limit: int | None = None):
        """Flattened rows: clip, size, batch, dtype, then the columns."""
        names = [c for c in COLUMNS if c in self.columns]
        out = []
        for i, c in enumerate(self.clips):
            for j, s in enumerate(self.sizes):
                ok = bool(self.valid[i, j])
                for k, b in enumerate(self.batches):
                    for d, dt in enumerate(self.dtypes):
                        row = [c, s, b, dt, ok]
                        for n in names:
                            v = self.columns[n]
                            row.append(_py(v[i, j, k, d]) if ok else None)
                        out.append(row)
                        if limit is not None and len(out) >= limit:
                            return out
        return out

    def headers(self):
        return ["clip", "size", "batch", "dtype", "valid"] + [c for c in COLUMNS if c in self.columns]


def _py(v):
    return int(v) if hasattr(v, "__int__") else v


def _grid_args(clips, sizes):
    import numpy as np

    c = np.asarray(clips, dtype=np.int64)[:, None]
    s = np.asarray(sizes, dtype=np.int64)[None, :]
    return c, s


def _upper_bound(graph, clips, sizes, prof, continual, need_clip_transient, totals) -> int:
    """Largest total on the grid: exact at the largest point (totals grow
    with clip and size); if that point is invalid, a float64 pass over the
    grid bounds it instead."""
    import numpy as np

    from .walker import evaluate_graph

    try:
        t = evaluate_graph(graph, max(clips), max(sizes), prof, record=False, continual=continual,
                           clip_transient=need_clip_transient)
        return max(int(v) for v in totals(t).values())
    except ComemError:
        c = np.asarray(clips, dtype=np.float64)[:, None]
        s = np.asarray(sizes, dtype=np.float64)[None, :]
        t = evaluate_graph(graph, c, s, prof, record=False, continual=continual, clip_transient=need_clip_transient)
        return int(max(float(np.max(v)) for v in totals(t).values()) * 1.01) + 1


def sweep(model, clips, sizes, batches=(1,), dtypes=("fp32",), profile=None, knobs=None, convention="ptflops",
          params=None, vectorised: bool = True) -> SweepResult:
    """Evaluate ``model`` on the grid ``clips × sizes × batches × dtypes``."""
    import numpy as np

    from .api import prepare
    from .conventions import weigh
    from .walker import evaluate_graph

    setup = prepare(model, profile, knobs, params, convention)
    spec, graph, prof, conv, continual = setup.spec, setup.graph, setup.profile, setup.convention, setup.continual
    clips = [check_int(c, "clip (frames)", 1, MAX_CLIP) for c in clips]
    sizes = [check_int(s, "size (pixels)", 1, MAX_SIZE) for s in sizes]
    batches = [check_int(b, "batch (streams)", 1, MAX_BATCH) for b in batches]
    dt = [dtype_bytes(d) for d in dtypes]
    if not clips or not sizes or not batches or not dt:
        raise ComemError("the sweep grid is empty; give at least one clip, size, batch and dtype")
    knob = prof["transient"]
    need_clip_transient = knob != "stage-output"
    res = SweepResult(spec.name, prof.label, conv, clips, sizes, batches, [d[0] for d in dt], continual=continual)

    def totals(t):
        cols = {}
        if continual:
            cols["state_floats"] = t.state
            cols["transient_floats"] = t.transient(knob)
            cols["total_floats"] = t.state + cols["transient_floats"]
            cols["ops_per_step"] = weigh(t.work_step, conv)
        cols["regular_total_floats"] = t.regular_worst_case(knob)
        cols["ops_per_clip"] = weigh(t.work_clip, conv)
        return cols

    # validity along each axis (shapes depend on clip or on size only)
    c_arr = np.asarray(clips)
    s_arr = np.asarray(sizes)
    valid = (c_arr[:, None] >= graph.temporal_stride) & (s_arr[None, :] >= graph.spatial_stride)
    if not valid.all():
        res.reasons.append(f"clip < {graph.temporal_stride} or size < {graph.spatial_stride} "
                           "(the network's total strides)")
    if vectorised:
        bound = _upper_bound(graph, clips, sizes, prof, continual, need_clip_transient, totals)
        exact = bound * max(batches) * max(d[1] for d in dt) >= INT64_SAFE
        c, s = _grid_args(clips, sizes)
        if exact:
            c, s = c.astype(object), s.astype(object)
        t = evaluate_graph(graph, c, s, prof, record=False, continual=continual, clip_transient=need_clip_transient)
        cols = totals(t)
        for mask, reason in t.invalid:
            m = np.broadcast_to(mask, valid.shape)
            if m.any():
                valid = valid & ~m
                res.reasons.append(reason)
        res.exact_python_ints = exact
    else:
        cols = {}
        for i, cv in enumerate(clips):
            for j, sv in enumerate(sizes):
                if not valid[i, j]:
                    continue
                try:
                    t = evaluate_graph(graph, cv, sv, prof, record=False, continual=continual,
                                       clip_transient=need_clip_transient)
                except ComemError as exc:
                    valid[i, j] = False
                    res.reasons.append(str(exc))
                    continue
                for k, v in totals(t).items():
                    cols.setdefault(k, np.zeros((len(clips), len(sizes)), dtype=object))[i, j] = v
    res.valid = valid
    if not valid.any():
        raise ComemError(f"no point of the grid is valid for {spec.name}: "
                         + "; ".join(dict.fromkeys(res.reasons)) + "; widen the ranges")
    b = np.asarray(batches, dtype=object if res.exact_python_ints else np.int64)[None, None, :, None]
    nb = np.asarray([d[1] for d in dt], dtype=object if res.exact_python_ints else np.int64)[None, None, None, :]
    shape = (len(clips), len(sizes), len(batches), len(dt))
    for k, v in cols.items():
        grid = np.broadcast_to(np.asarray(v)[..., None, None] if np.ndim(v) else v, (len(clips), len(sizes), 1, 1))
        res.columns[k] = np.broadcast_to(grid * b, shape)
    for k in ("total", "regular_total"):
        if f"{k}_floats" in res.columns:
            res.columns[f"{k}_bytes"] = res.columns[f"{k}_floats"] * nb
    return res
