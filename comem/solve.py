"""``comem solve``: the largest clip, size or batch that fits a budget.

Memory budgets apply to the worst case a deployment must provision: the
continual model's state + transient (the regular model's worst case for
models without a continual form), times the dtype's bytes and the batch.
Operation budgets (under the chosen counting convention) apply to one continual step (one regular clip for models
without a continual form).  Every total grows with clip, size and batch, so
the answer is found by exponential then binary search over exact integer
evaluations; batch is solved by exact division.
"""
from __future__ import annotations

from .errors import ComemError
from .units import MAX_BATCH, MAX_CLIP, MAX_SIZE


def _cost(model, var, value, fixed, what, kw, include_weights=False):
    from .api import analyze

    args = dict(fixed)
    args[var] = value
    r = analyze(model, **args, **kw)
    if what == "memory":
        floats = r.total_floats if r.continual else r.regular_total_floats
        return r.bytes(floats) + (r.weights_bytes if include_weights else 0), r
    return (r.ops_per_step if r.continual else r.ops_per_clip), r


def solve(model, for_: str, budget_bytes: int | None = None, ops_budget: int | None = None, clip=None,
          size=None, batch=1, dtype="fp32", profile=None, knobs=None, convention="ptflops", params=None,
          macs_budget: int | None = None, include_weights: bool = False) -> dict:
    """``ops_budget`` counts operations under ``convention`` (``macs_budget``
    is its 0.1 name); ``include_weights``: the memory budget also holds the
    weights (params × bytes per value, shared by every stream)."""
    from .api import analyze

    if ops_budget is None:
        ops_budget = macs_budget
    if (budget_bytes is None) == (ops_budget is None):
        raise ComemError("give exactly one budget: --budget (memory, e.g. 8MiB) or --ops-budget (e.g. 1G)")
    if for_ not in ("size", "clip", "batch"):
        raise ComemError(f"--for must be size, clip or batch, got {for_!r}")
    what = "memory" if budget_bytes is not None else "ops"
    budget = budget_bytes if budget_bytes is not None else ops_budget
    kw = dict(dtype=dtype, profile=profile, knobs=knobs, convention=convention, params=params)
    fixed = {"clip": clip, "size": size, "batch": batch}
    base = analyze(model, clip=clip, size=size, batch=1, **kw)
    square = base.dims != 3 or base.width == base.size
    fixed["clip"], fixed["size"] = base.clip, base.size if square else (base.size, base.width)
    if for_ == "size" and not square:
        raise ComemError("--for size solves for square frames (or the joints of a 2D model); give --size as one "
                         "number")
    if for_ == "size" and base.dims == 1:
        raise ComemError(f"{base.model} is a 1D model: it has no frame size to solve for")
    from .spec import resolve
    from .api import get_graph

    spec = resolve(model)
    graph = get_graph(spec, params)
    lo = {"size": graph.spatial_stride, "clip": graph.temporal_stride, "batch": 1}[for_]
    hi = {"size": MAX_SIZE, "clip": MAX_CLIP, "batch": MAX_BATCH}[for_]
    fixed[for_] = None

    def cost(v):
        return _cost(model, for_, v, fixed, what, kw, include_weights)

    def valid_cost(v):
        """Cost at v, or at the nearest smaller valid value (pathways may need multiples)."""
        for w in range(v, max(lo, v - 64) - 1, -1):
            try:
                c, _ = cost(w)
                return w, c
            except ComemError:
                continue
        raise ComemError(f"no valid {for_} near {v} for {spec.name}")

    v0, c0 = valid_cost(lo)
    if c0 > budget:
        unit = "bytes" if what == "memory" else f"operations ({convention})"
        raise ComemError(f"nothing fits: at the smallest {for_} ({v0}) {spec.name} needs {c0:,} {unit}, over the "
                         f"budget of {budget:,}; raise the budget or lower the other settings")
    if for_ == "batch":
        # exact: every total is linear in the batch; the weights are held once
        shared = base.weights_bytes if (include_weights and what == "memory") else 0
        best = min(hi, (budget - shared) // (c0 - shared))
    else:
        # fits(v): the largest valid value <= v is within budget.  Costs grow
        # with v over valid values, so fits is true up to the answer, then false.
        def fits(v):
            return valid_cost(v)[1] <= budget

        good, step = v0, 1
        bad = None
        while good < hi:
            cand = min(hi, good + step)
            if fits(cand):
                good = cand
                step *= 2
            else:
                bad = cand
                break
        if bad is not None:
            while bad - good > 1:
                mid = (good + bad) // 2
                if fits(mid):
                    good = mid
                else:
                    bad = mid
        best = valid_cost(good)[0]
    value_cost, r = cost(best)
    out = {"model": spec.name, "for": for_, "value": best, "budget": budget, "budget_kind": what,
           "cost": value_cost, "cost_unit": "bytes" if what == "memory" else f"operations ({convention})",
           "limit": hi, "settings": {k: (v if k != for_ else best) if not isinstance(v, tuple) else f"{v[0]}x{v[1]}"
                                     for k, v in fixed.items()}}
    if best < hi:
        try:
            nxt, _ = cost(best + 1)
            out["cost_next"] = nxt
        except ComemError:
            out["cost_next"] = None
    else:
        out["note"] = f"every {for_} up to comem's limit of {hi:,} fits"
    return out
