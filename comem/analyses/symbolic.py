"""Closed forms: every total as a sympy expression of ``clip`` and ``size``
(and of spec parameters the user marks symbolic).

The expressions come from the very same walker and formulas as the numbers
(:mod:`comem.model.walk` over :mod:`comem.core.shim`), evaluated with sympy symbols
instead of integers, so they equal the numeric results at every point —
sizes that are not multiples of the network stride included (shapes use
``floor``).  Maxima are exact, unevaluated ``Max`` of the candidate terms.
"""
from __future__ import annotations

from comem.accounting.conventions import weigh
from comem.errors import ComemError, MissingExtraError, suggest
from comem.spec.registry import resolve
from comem.core.units import dtype_bytes


def _sympy():
    try:
        import sympy
    except ImportError:  # pragma: no cover - sympy is a core dependency
        raise MissingExtraError("closed forms need sympy: pip install sympy") from None
    return sympy


def closed_forms(model, profile=None, knobs=None, params=None, symbols=(), dtype="fp32", batch=1,
                 convention="ptflops") -> dict:
    """``{quantity: sympy expression}`` plus ``"_symbols"`` (name -> Symbol).

    ``symbols``: spec parameters to keep symbolic (e.g. ``["width_factor"]``);
    ``clip`` and ``size`` always are.  With a symbolic parameter the
    expressions describe a family of networks, so a spec's errata (which
    belong to one network, :mod:`comem.spec.errata`) are not applied.  Quantities in floats (or MACs); the
    byte forms multiply by the dtype size and ``batch``.
    """
    sympy = _sympy()
    from comem.api import prepare
    from comem.model.build import build_graph
    from comem.model.walk import evaluate_graph

    spec = resolve(model)
    _, nbytes = dtype_bytes(dtype)
    clip = sympy.Symbol("clip", positive=True, integer=True)
    size = sympy.Symbol("size", positive=True, integer=True)
    syms = {"clip": clip, "size": size}
    spec_syms = {}
    for name in symbols or ():
        if name in ("clip", "size"):
            continue
        if name not in spec.params:
            raise ComemError(f"{spec.name} has no parameter {name!r}{suggest(name, spec.params)}; "
                             f"its parameters: {', '.join(spec.params)}")
        spec_syms[name] = sympy.Symbol(name, positive=True)
    syms.update(spec_syms)
    graph = build_graph(spec, {k: v for k, v in (params or {}).items() if k not in spec_syms}, spec_syms)
    setup = prepare(spec, profile, knobs, None, convention, graph=graph)
    prof, conv, continual = setup.profile, setup.convention, setup.continual
    if spec.dims == 1:
        syms.pop("size")
        size = 1
    width = size if spec.dims == 3 else 1
    t = evaluate_graph(graph, clip, size, prof, record=False, continual=continual, bytes_per_float=nbytes,
                       width=width)
    out = {}
    if continual:
        out["state_floats"] = t.state * batch
        out["transient_floats"] = t.transient() * batch
        out["total_floats"] = out["state_floats"] + out["transient_floats"]
        out["ops_per_step"] = weigh(t.work_step, conv) * batch
        out["delay"] = t.delay
        out["receptive_field"] = t.rf
    out["regular_total_floats"] = t.regular_worst_case() * batch
    out["ops_per_clip"] = weigh(t.work_clip, conv) * batch
    out["params"] = t.params
    for k in list(out):
        if k.endswith("_floats"):
            out[k.replace("_floats", "_bytes")] = out[k] * nbytes
    from comem.core.shim import to_sympy

    out = {k: to_sympy(v) for k, v in out.items()}
    out["_symbols"] = syms
    frame = {3: "size (square frames)", 2: "size (joints)", 1: None}[spec.dims]
    out["_meta"] = {"model": spec.name, "profile": prof.label, "convention": conv, "dtype": dtype, "batch": batch,
                    "valid_for": f"clip >= {graph.temporal_stride}"
                                 + (f", {frame} >= {graph.spatial_stride}" if frame else "")}
    return out


def substitute(expr, values: dict, syms: dict):
    """Evaluate a closed form at a point, exactly (an int when integral).

    ``Max`` nodes are evaluated argument by argument, so sympy never has to
    compare symbolic terms."""
    sympy = _sympy()
    point = {syms[k]: sympy.Integer(x) if isinstance(x, int) else sympy.Rational(str(x)) for k, x in values.items()}
    cache = {}

    def ev(e):
        if e in cache:
            return cache[e]
        if e.is_Number:
            out = e
        elif e.is_Symbol:
            out = point.get(e, e)
        elif isinstance(e, sympy.Max):
            out = max(ev(a) for a in e.args)
        elif isinstance(e, sympy.Min):
            out = min(ev(a) for a in e.args)
        elif isinstance(e, sympy.Piecewise):
            out = None
            for val, cond in e.args:
                c = cond if cond in (sympy.true, sympy.false) else cond.func(*[ev(a) for a in cond.args])
                if bool(c):
                    out = ev(val)
                    break
        else:
            out = e.func(*[ev(a) for a in e.args])
        cache[e] = out
        return out

    from comem.core.shim import to_sympy

    v = ev(to_sympy(expr))
    if getattr(v, "is_Integer", False):
        return int(v)
    return v


def forms_tables(forms: dict, fmt: str):
    """(tables, json-data) for printing."""
    sympy = _sympy()
    from comem.results.formats import Table

    meta = forms["_meta"]
    rows = []
    data = {"model": meta["model"], "profile": meta["profile"], "convention": meta["convention"],
            "dtype": meta["dtype"],
            "batch": meta["batch"], "symbols": sorted(forms["_symbols"]), "valid_for": meta["valid_for"],
            "expressions": {}}
    for k, v in forms.items():
        if k.startswith("_"):
            continue
        text = sympy.latex(v) if fmt == "latex" else str(v)
        rows.append([k, text])
        data["expressions"][k] = str(v)
    from comem.results.report import LEGACY_KEYS

    for old, new in LEGACY_KEYS.items():  # 0.1 names, kept for one release
        if new in data["expressions"]:
            data["expressions"][old] = data["expressions"][new]
        elif new in data:
            data[old] = data[new]
    notes = [f"symbols: {', '.join(sorted(forms['_symbols']))} (clip, size: positive integers); "
             f"valid for {meta['valid_for']}", "floor() is integer division of the layer shapes; Max(...) is the "
             "largest of its terms"]
    title = f"Closed forms — {meta['model']}, profile {meta['profile']}, counts: {meta['convention']}, {meta['dtype']}"
    return [Table(title, ["quantity", "expression"], rows, notes)], data


def forms_latex(forms: dict) -> str:
    """The closed forms as a LaTeX ``align*`` block (math, not escaped text)."""
    sympy = _sympy()
    meta = forms["_meta"]
    lines = [f"% comem closed forms: {meta['model']}, profile {meta['profile']}, counts {meta['convention']}, "
             f"{meta['dtype']}; valid for {meta['valid_for']}", r"\begin{align*}"]
    items = [(k, v) for k, v in forms.items() if not k.startswith("_")]
    for i, (k, v) in enumerate(items):
        name = r"\mathrm{" + k.replace("_", r"\_") + "}"
        end = r" \\" if i < len(items) - 1 else ""
        lines.append(f"{name} &= {sympy.latex(v)}{end}")
    lines.append(r"\end{align*}")
    return "\n".join(lines)
