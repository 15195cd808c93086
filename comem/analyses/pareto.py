"""Pareto fronts over a design sweep.

``pareto(model, grid, ..., minimize=["total_bytes", "ops_per_step"])`` keeps
the points no other point beats: a point is dominated when another is at
least as good in every objective and better in one.  Conditions
(``where=["state_bytes<=8MiB"]``) filter the points first; they are parsed
as ``COLUMN OP NUMBER[UNIT]`` (never evaluated as code).  The sweep streams
block by block and the front is merged as it goes, so memory stays bounded.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from comem.errors import ComemError, arg, suggest

_OPS = {"<=": "le", "<": "lt", ">=": "ge", ">": "gt", "==": "eq", "=": "eq", "!=": "ne"}
_COND = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>|=)\s*(.+?)\s*$")


@dataclass
class ParetoFront:
    model: str
    headers: list
    rows: list                      # one list per point on the front, ordered by the first objective
    minimize: list
    maximize: list
    where: list
    candidates: int = 0             # valid points that met the conditions
    points: int = 0                 # all points of the grid
    reasons: list = field(default_factory=list)

    def table(self):
        from comem.results.formats import Table

        first = self.headers.index("valid") + 1 if "valid" in self.headers else 0
        goals = ", ".join([f"min {m}" for m in self.minimize] + [f"max {m}" for m in self.maximize])
        notes = [f"{len(self.rows):,} of {self.candidates:,} candidate points (of {self.points:,}) are on the "
                 f"front ({goals})" + (f"; where {' and '.join(self.where)}" if self.where else "")]
        if self.reasons:
            notes.append("invalid points: " + "; ".join(dict.fromkeys(self.reasons)))
        return Table(f"Pareto front — {self.model}", self.headers, self.rows, notes,
                     numeric=tuple(range(first, len(self.headers))))

    def to_dict(self) -> dict:
        return {"model": self.model, "minimize": self.minimize, "maximize": self.maximize, "where": self.where,
                "candidates": self.candidates, "points": self.points, "columns": self.headers,
                "front": [dict(zip(self.headers, r)) for r in self.rows]}


def parse_condition(text: str, columns) -> tuple:
    """``state_bytes<=8MiB`` -> (column, op, value).  Byte columns take byte
    units (KiB, MiB, GB...), the others counts (K, M, G)."""
    from comem.core.units import _BYTE_UNITS, _COUNT_UNITS, _parse_number_with_unit

    m = _COND.match(str(text))
    if not m:
        raise ComemError(f"{arg('where')} {text!r} is not COLUMN OP NUMBER, e.g. state_bytes<=8MiB or ops_per_step<1G")
    col, op, value = m.groups()
    if col not in columns:
        raise ComemError(f"{arg('where')} {text!r}: unknown column {col!r}{suggest(col, columns)}; columns: "
                         f"{', '.join(columns)}")
    units = _BYTE_UNITS if col.endswith("_bytes") else _COUNT_UNITS
    from fractions import Fraction

    try:
        number = Fraction(value)
    except (ValueError, ZeroDivisionError):
        number = _parse_number_with_unit(value, units, f"{arg('where')} {col}", "8MiB, 1G, 16")
    number = int(number) if number.denominator == 1 else float(number)
    return col, _OPS[op], number


def nondominated(objectives):
    """Indices of the non-dominated rows of ``objectives`` (n × k, all to be
    minimised); of several identical rows the first is kept."""
    import numpy as np

    obj = np.asarray(objectives)
    n = len(obj)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort(obj.T[::-1])  # lexicographic: no point is dominated by a later one
    if obj.shape[1] == 1:
        return order[:1]
    if obj.shape[1] == 2:
        keep, best = [], None
        for i in order.tolist():
            y = obj[i, 1]
            if best is None or y < best:
                keep.append(i)
                best = y
        return np.asarray(keep, dtype=np.int64)
    front: list = []
    for i in order.tolist():
        p = obj[i]
        if front:
            f = obj[front]
            if ((f <= p).all(axis=1)).any():  # a kept point is as good everywhere (an equal one too)
                continue
        front.append(i)
    return np.asarray(front, dtype=np.int64)


def pareto(model, grid: dict, clips=None, sizes=None, batches=(1,), dtypes=("fp32",), profile=None, knobs=None,
           convention="ptflops", params=None, minimize=("total_bytes", "ops_per_step"), maximize=(), where=(),
           block_points: int | None = None) -> ParetoFront:
    """The Pareto front of a design sweep (``grid``: parameter -> values)."""
    import numpy as np

    from comem.analyses.sweep import BLOCK_POINTS, iter_design_sweep
    from comem.analyses.sweep import param_value

    minimize, maximize, where = list(minimize or ()), list(maximize or ()), list(where or ())
    if not minimize and not maximize:
        raise ComemError(f"give at least one objective: {arg('minimize')} total_bytes,ops_per_step (or {arg('maximize')} ...)")
    both = [g for g in minimize if g in maximize]
    if both:
        raise ComemError(f"objective {both[0]!r} is both minimised and maximised; give it once")
    for goals in (minimize, maximize):
        twice = [g for i, g in enumerate(goals) if g in goals[:i]]
        if twice:
            raise ComemError(f"objective {twice[0]!r} is given twice; give it once")
    front_rows: list = []
    front_obj = None
    candidates = points = 0
    reasons: list = []
    headers = None
    conds = None
    for r in iter_design_sweep(model, grid, clips, sizes, batches, dtypes, profile, knobs, convention, params,
                               block_points or BLOCK_POINTS):
        points += r.points
        reasons.extend(x for x in r.reasons if x not in reasons)
        if headers is None:
            headers = r.headers()
            numeric = [h for h in headers if h not in ("dtype", "valid")]
            for goal in minimize + maximize:
                if goal not in numeric:
                    raise ComemError(f"objective {goal!r} is not a column{suggest(goal, numeric)}; columns: "
                                     f"{', '.join(numeric)}")
            conds = [parse_condition(w, numeric) for w in where]
        cols = _flat_columns(r)
        mask = cols["valid"].astype(bool)
        for col, op, value in conds:
            mask &= _compare(cols[col], op, value)
        idx = np.nonzero(mask)[0]
        candidates += len(idx)
        if not len(idx):
            continue
        obj = np.stack([_as_number(cols[g][idx]) for g in minimize]
                       + [-_as_number(cols[g][idx]) for g in maximize], axis=1)
        local = nondominated(obj)
        block_rows = [[param_value(cols[h][i]) if h in r.param_names else _plain(cols[h][i]) for h in headers]
                      for i in idx[local].tolist()]
        if front_obj is None:
            merged_obj, merged_rows = obj[local], block_rows
        else:
            merged_obj = np.concatenate([front_obj, obj[local]])
            merged_rows = front_rows + block_rows
        keep = nondominated(merged_obj)
        front_obj = merged_obj[keep]
        front_rows = [merged_rows[i] for i in keep.tolist()]
    if headers is None:
        raise ComemError("the grid is empty")
    order = sorted(range(len(front_rows)), key=lambda i: tuple(front_obj[i].tolist()))
    spec_name = model if isinstance(model, str) else getattr(model, "name", str(model))
    return ParetoFront(spec_name, headers, [front_rows[i] for i in order], minimize, maximize, where, candidates,
                       points, reasons)


def _flat_columns(r) -> dict:
    """Every column of a design sweep block as one flat array per header."""
    import numpy as np

    cols, valid, designs = r._with_design_axis()
    shape = (len(designs), len(r.clips), len(r.sizes), len(r.batches), len(r.dtypes))
    out = {}
    for i, name in enumerate(r.param_names):
        vals = np.array([d[i] for d in designs] + [None], dtype=object)[:-1]
        out[name] = np.broadcast_to(vals[:, None, None, None, None], shape).ravel()
    out["clip"] = np.broadcast_to(np.asarray(r.clips)[None, :, None, None, None], shape).ravel()
    frames = [("height", r.sizes), ("width", r.widths)] if r.widths else [("size", r.sizes)]
    for name, vals in frames:
        out[name] = np.broadcast_to(np.asarray(vals)[None, None, :, None, None], shape).ravel()
    out["batch"] = np.broadcast_to(np.asarray(r.batches)[None, None, None, :, None], shape).ravel()
    out["dtype"] = np.broadcast_to(np.asarray(r.dtypes, dtype=object)[None, None, None, None, :], shape).ravel()
    out["valid"] = np.broadcast_to(valid[:, :, :, None, None], shape).ravel()
    for name in r.names():
        out[name] = np.broadcast_to(cols[name], shape).ravel()
    return out


def _as_number(a):
    """An objective column as numbers numpy can sort: int64 when whole (exact
    big integers stay Python ints), float for fractional parameter values."""
    import numpy as np
    from fractions import Fraction

    if a.dtype != object:
        return a
    if all(isinstance(v, int) or (isinstance(v, Fraction) and v.denominator == 1) for v in a):
        ints = [int(v) for v in a]
        if all(-(2 ** 63) < v < 2 ** 63 for v in ints):
            return np.asarray(ints, dtype=np.int64)
        return np.asarray(ints + [None], dtype=object)[:-1]
    return np.asarray([float(v) for v in a], dtype=np.float64)


def _compare(a, op, value):
    import numpy as np

    fn = {"le": np.less_equal, "lt": np.less, "ge": np.greater_equal, "gt": np.greater, "eq": np.equal,
          "ne": np.not_equal}[op]
    return np.asarray(fn(a, value), dtype=bool)


def _plain(v):
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    return v
