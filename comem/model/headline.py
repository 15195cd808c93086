"""The headline quantities of one walk, in one place.

Every view of a network — one analysis (:func:`comem.api.analyze`), a grid of
points (:mod:`comem.analyses.grid`), closed forms
(:mod:`comem.analyses.symbolic`), a budget search (:mod:`comem.analyses.solve`)
— reads its numbers from :func:`headline` over the walk's
:class:`~comem.model.walk.Totals`, and a budget's cost from :func:`budget_cost`.
The values may be Python ints (exact), sympy expressions or numpy arrays
(one per grid point): only arithmetic is used.
"""
from __future__ import annotations

from fractions import Fraction

from comem.accounting.conventions import weigh
from comem.core import shim

#: quantities in floats; each has a ``_bytes`` twin (``bytes_columns``)
FLOAT_COLUMNS = ("state_floats", "transient_floats", "total_floats", "regular_total_floats",
                 "regular_transient_floats")


def frame_average(t, convention: str):
    """Work per input frame averaged over a steady stream: each layer's work
    per step divided by how often it runs (every ``rate``-th frame behind a
    temporal stride).  Exact (an int or a Fraction) for Python ints; sympy
    keeps it rational; numpy grids get float64."""
    parts = [(weigh(work, convention), rate) for rate, work in t.work_by_rate.items()]
    if not parts:
        return 0
    if all(shim.is_concrete(w) and isinstance(w, int) for w, _ in parts):
        avg = sum((Fraction(w, rate) for w, rate in parts), Fraction(0))
        return int(avg) if avg.denominator == 1 else avg
    return sum(w / rate for w, rate in parts)


def headline(t, continual: bool, convention: str, batch=1) -> dict:
    """``{quantity: value}`` for ``batch`` streams: state, transient and their
    total (continual models), the regular model's worst case on a stream, work
    per step, per frame on average and per clip (weighed by ``convention``),
    params (per model, not per stream), delay and receptive field."""
    out = {}
    if continual:
        out["state_floats"] = t.state * batch
        out["transient_floats"] = t.transient() * batch
        out["total_floats"] = out["state_floats"] + out["transient_floats"]
        out["ops_per_step"] = weigh(t.work_step, convention) * batch
        out["ops_per_frame_avg"] = frame_average(t, convention) * batch
        out["delay"] = t.delay
        out["receptive_field"] = t.rf
    out["regular_total_floats"] = t.regular_worst_case() * batch
    out["regular_transient_floats"] = t.regular_transient() * batch
    out["ops_per_clip"] = weigh(t.work_clip, convention) * batch
    out["params"] = t.params
    return out


def bytes_columns(values: dict, bytes_per_float) -> dict:
    """``values`` with a ``_bytes`` twin of every float quantity."""
    out = dict(values)
    for k in FLOAT_COLUMNS:
        if k in values:
            out[k.replace("_floats", "_bytes")] = values[k] * bytes_per_float
    return out


def budget_cost(values: dict, what: str, continual: bool, weights_bytes=0):
    """What a budget is spent on (values from :func:`headline` with
    :func:`bytes_columns`): memory — the continual model's state + transient,
    or the regular model's worst case, plus ``weights_bytes`` when the budget
    holds the weights; ops — work per step (continual) or per clip."""
    if what == "memory":
        return values["total_bytes" if continual else "regular_total_bytes"] + weights_bytes
    return values["ops_per_step" if continual else "ops_per_clip"]
