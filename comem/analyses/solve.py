"""``comem solve``: the largest clip, size, batch — or value of any numeric
spec parameter (``width_factor``, ``depth_factor``...) — that fits a budget.

Memory budgets apply to the worst case a deployment must provision: the
continual model's state + transient (the regular model's worst case for
models without a continual form), times the dtype's bytes and the batch.
Operation budgets (under the chosen counting convention) apply to one continual step (one regular clip for models
without a continual form).  Every total grows with clip, size and batch, so
the answer is found by exponential then binary search over exact integer
evaluations; batch is solved by exact division.

A spec parameter is solved on a grid of ``step``s (1 for a whole-number
parameter, 0.01 otherwise) by exponential then binary search over exact
evaluations (bisection); the answer fits and its next step does not.
Channel rounding can make a cost dip as a parameter grows (X3D's widths
round to multiples of 8), so the whole range above the answer is then
checked in one vectorised design sweep, and any larger value that also
fits is reported.
"""
from __future__ import annotations

from comem.core.units import MAX_BATCH, MAX_CLIP, MAX_SIZE
from comem.errors import ComemError, arg
from comem.model.headline import budget_cost


def _cost(model, var, value, fixed, what, kw, include_weights=False):
    from comem.api import analyze

    args = dict(fixed)
    args[var] = value
    r = analyze(model, **args, **kw)
    weights = r.weights_bytes if include_weights and what == "memory" else 0
    return budget_cost(r.headline(), what, r.continual, weights), r


def solve(model, for_: str, budget_bytes: int | None = None, ops_budget: int | None = None, clip=None,
          size=None, batch=1, dtype="fp32", profile=None, knobs=None, convention="ptflops", params=None,
          macs_budget: int | None = None, include_weights: bool = False) -> dict:
    """``ops_budget`` counts operations under ``convention`` (``macs_budget``
    is its 0.1 name); ``include_weights``: the memory budget also holds the
    weights (params × bytes per value, shared by every stream)."""
    from comem.api import analyze

    from comem import _compat

    ops_budget = _compat.solve_budget(ops_budget, macs_budget)
    if (budget_bytes is None) == (ops_budget is None):
        raise ComemError(f"give exactly one budget: {arg('budget_bytes', '--budget')} (memory, e.g. 8MiB) or "
                         f"{arg('ops_budget')} (e.g. 1G)")
    what = "memory" if budget_bytes is not None else "ops"
    if for_ not in ("size", "clip", "batch"):
        return solve_param(model, for_, budget_bytes if what == "memory" else ops_budget, what, clip=clip,
                           size=size, batch=batch, dtype=dtype, profile=profile, knobs=knobs, convention=convention,
                           params=params, include_weights=include_weights)
    budget = budget_bytes if budget_bytes is not None else ops_budget
    kw = dict(dtype=dtype, profile=profile, knobs=knobs, convention=convention, params=params)
    fixed = {"clip": clip, "size": size, "batch": batch}
    base = analyze(model, clip=clip, size=size, batch=1, **kw)
    square = base.dims != 3 or base.width == base.size
    fixed["clip"], fixed["size"] = base.clip, base.size if square else (base.size, base.width)
    if for_ == "size" and not square:
        raise ComemError(f"{arg('for_', '--for')} size solves for square frames (or the joints of a 2D model); give "
                         f"{arg('size')} as one number")
    if for_ == "size" and base.dims == 1:
        raise ComemError(f"{base.model} is a 1D model: it has no frame size to solve for")
    from comem.spec.registry import resolve
    from comem.api import get_graph

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
           "limit": hi, "settings": {**{k: (v if k != for_ else best) if not isinstance(v, tuple) else f"{v[0]}x{v[1]}"
                                        for k, v in fixed.items()}, "dtype": dtype}}
    if best < hi:
        try:
            nxt, _ = cost(best + 1)
            out["cost_next"] = nxt
        except ComemError:
            out["cost_next"] = None
    else:
        out["note"] = f"every {for_} up to comem's limit of {hi:,} fits"
    return out


MAX_PARAM_STEPS = 1_000_000


def solve_param(model, name: str, budget: int, what: str = "memory", clip=None, size=None, batch=1, dtype="fp32",
                profile=None, knobs=None, convention="ptflops", params=None, include_weights=False, step=None,
                lo=None, hi=None) -> dict:
    """The largest value of spec parameter ``name`` on the grid ``lo, lo +
    step, ... <= hi`` whose cost fits ``budget`` (bytes when ``what`` is
    ``"memory"``, operations under ``convention`` otherwise)."""
    from fractions import Fraction

    from comem.errors import suggest
    from comem.core.expr import to_exact
    from comem.spec.registry import resolve

    spec = resolve(model)
    if name not in spec.params:
        choices = ["size", "clip", "batch"] + list(spec.params)
        raise ComemError(f"{arg('for_', '--for')} {name!r} is not size, clip, batch or a parameter of {spec.name}"
                         f"{suggest(name, choices)}; its parameters: {', '.join(spec.params) or 'none'}")
    params = dict(params or {})
    if name in params:
        raise ComemError(f"{arg('for_', '--for')} {name} and {arg('params', '--set')} {name} both given; drop it from "
                         f"{arg('params', '--set')}")
    raw = spec.params[name]
    whole = isinstance(raw, int) and not isinstance(raw, bool)
    if not isinstance(raw, (int, float)) or isinstance(raw, bool):
        raise ComemError(f"parameter {name!r} of {spec.name} is not a number ({raw!r}); solve needs a numeric one")
    from comem.analyses.sweep import param_text

    default = to_exact(raw)
    step = Fraction(str(step)) if step is not None else (Fraction(1) if whole else Fraction(1, 100))
    if step <= 0:
        raise ComemError(f"{arg('step')} must be positive, got {param_text(step)}")
    from comem.spec.domain import check_param, domain_of

    dom = domain_of(spec, name)  # search inside the parameter's domain only
    if lo is not None:
        check_param(spec, name, Fraction(str(lo)), arg("lo", "--min"))
    if hi is not None:
        check_param(spec, name, Fraction(str(hi)), arg("hi", "--max"))
    lo = Fraction(str(lo)) if lo is not None else step
    hi = Fraction(str(hi)) if hi is not None else max(16 * Fraction(default), lo + step)
    if dom is not None and dom.hi is not None and hi > dom.hi:
        hi = dom.hi - (step if dom.hi_open else 0)
    if hi < lo:
        raise ComemError(f"the search range {param_text(lo)}..{param_text(hi)} is empty")
    n_steps = int((hi - lo) // step) + 1
    if n_steps > MAX_PARAM_STEPS:
        raise ComemError(f"{n_steps:,} steps of {param_text(step)} from {param_text(lo)} to {param_text(hi)}; use a "
                         f"larger {arg('step')} (limit "
                         f"{MAX_PARAM_STEPS:,})")
    from comem.analyses.grid import design_space_knobs
    from comem.api import prepare

    knobs, accounting = design_space_knobs(spec, prepare(spec, profile, knobs, params, convention).profile, knobs,
                                           [name])
    kw = dict(clip=clip, size=size, dtype=dtype, profile=profile, knobs=knobs, convention=convention)

    def value(i):
        v = lo + i * step
        return int(v) if v.denominator == 1 else v

    def text(i):
        return param_text(value(i))

    def cost(i):
        """Exact cost at grid index i; None where the design is not a network."""
        from comem.api import analyze

        try:
            r = analyze(model, batch=batch, params=dict(params, **{name: value(i)}), **kw)
        except ComemError:
            return None
        return budget_cost(r.headline(), what, r.continual, r.weights_bytes if include_weights else 0)

    def fits(i):
        c = cost(i)
        return c is not None and c <= budget

    first = next((i for i in range(min(n_steps, 64)) if cost(i) is not None), None)
    if first is None:
        raise ComemError(f"{spec.name} is not a valid network for {name} from {text(0)} to "
                         f"{text(min(n_steps, 64) - 1)}; give {arg('lo', '--min')}")
    if not fits(first):
        unit = "bytes" if what == "memory" else f"operations ({convention})"
        raise ComemError(f"nothing fits: at {name}={text(first)} {spec.name} needs {cost(first):,} {unit}, over "
                         f"the budget of {budget:,}; raise the budget or lower the other settings")
    good, bad, jump = first, None, 1
    evaluations = 2
    while good < n_steps - 1:  # exponential search for a step that does not fit
        cand = min(n_steps - 1, good + jump)
        evaluations += 1
        if fits(cand):
            good, jump = cand, jump * 2
        else:
            bad = cand
            break
    if bad is not None:  # bisection: good fits, bad does not
        while bad - good > 1:
            mid = (good + bad) // 2
            evaluations += 1
            if fits(mid):
                good = mid
            else:
                bad = mid
    out = {"model": spec.name, "for": name, "value": value(good), "budget": budget, "budget_kind": what,
           "cost": cost(good), "cost_unit": "bytes" if what == "memory" else f"operations ({convention})",
           "step": int(step) if step.denominator == 1 else step, "range": [value(0), value(n_steps - 1)],
           "evaluations": evaluations, "limit": value(n_steps - 1),
           "settings": {"clip": spec.clip if clip is None else clip,
                        "size": (spec.size if spec.dims == 3 and spec.width == spec.size or spec.dims != 3
                                 else f"{spec.size}x{spec.width}") if size is None else size,
                        "batch": batch, "dtype": dtype, **params}}
    if accounting:
        out["accounting"] = accounting
    if good < n_steps - 1:
        out["next"] = value(good + 1)
        out["cost_next"] = cost(good + 1)
        also = _larger_fits(model, name, [value(i) for i in range(good + 2, n_steps)], budget, what, batch,
                            include_weights, kw, params)
        if also is not None:
            out["note"] = (f"costs are not monotone in {name} (channel rounding): {name}={also} also fits; "
                           f"{text(good)} is the largest value below the first step that does not")
            out["largest_fitting"] = also
    else:
        top = dom is not None and dom.hi is not None and value(n_steps - 1) + step > dom.hi
        out["note"] = (f"every {name} up to {text(n_steps - 1)} fits" + (f", the top of its domain {dom.notation}"
                                                                       if top else "; raise the upper end of the search (--max; hi= in Python)"))
    return out


def _larger_fits(model, name, values, budget, what, batch, include_weights, kw, params):
    """The largest of ``values`` that fits, by one design sweep (None if none)."""
    if not values or len(values) > 20_000:
        return None
    from comem.analyses.sweep import design_sweep
    from comem.analyses.sweep import param_value

    try:
        r = design_sweep(model, {name: values}, [kw["clip"]] if kw["clip"] else None,
                         [kw["size"]] if kw["size"] else None, [batch], [kw["dtype"]], kw["profile"], kw["knobs"],
                         kw["convention"], params)
    except ComemError:
        return None
    from comem.core.units import dtype_bytes

    values = {k: v[:, 0, 0, 0, 0] for k, v in r.columns.items()}
    weights = values["params"] * dtype_bytes(kw["dtype"])[1] if include_weights and what == "memory" else 0
    col = budget_cost(values, what, r.continual, weights)
    valid = r.valid[:, 0, 0]
    best = None
    for i, v in enumerate(values):
        if valid[i] and col[i] <= budget:
            best = v
    return param_value(best) if best is not None else None
