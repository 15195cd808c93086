"""Closed forms: every total as a sympy expression of ``clip`` and ``size``
(and of spec parameters the user marks symbolic).

The expressions come from the very same walker and formulas as the numbers
(:mod:`comem.model.walk` over :mod:`comem.core.shim`), evaluated with sympy symbols
instead of integers, so they equal the numeric results at every point —
sizes that are not multiples of the network stride included (shapes use
``floor``).  Maxima are exact, unevaluated ``Max`` of the candidate terms.
"""
from __future__ import annotations

from comem.errors import ComemError, MissingExtraError, arg, suggest
from comem.model.headline import bytes_columns, headline
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
    from comem.spec.domain import param_value

    both = sorted(set(spec_syms) & set(params or {}))
    if both:
        raise ComemError(f"parameter {both[0]} is both symbolic ({arg('symbols', '--symbol')}) and set "
                         f"({arg('params', '--set')}); give it once")
    values = {k: param_value(spec, k, v) for k, v in (params or {}).items()}
    graph = build_graph(spec, values, spec_syms)
    setup = prepare(spec, profile, knobs, None, convention, graph=graph)
    prof, conv, continual = setup.profile, setup.convention, setup.continual
    if spec.dims == 1:
        syms.pop("size")
        size = 1
    width = size if spec.dims == 3 else 1
    t = evaluate_graph(graph, clip, size, prof, record=False, continual=continual, bytes_per_float=nbytes,
                       width=width)
    out = bytes_columns(headline(t, continual, conv, batch), nbytes)
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


# readable closed forms: ⌈size/2⌉ rather than floor(size/2 - 1/2) + 1,
# sub-expressions used more than once named, long sums wrapped

def _split_quotient(arg):
    """``arg`` as ``(N + c) / d``: N an integer-valued expression without a
    constant term, c and d integers (d > 0); None when it is not one."""
    sympy = _sympy()
    arg = sympy.expand(arg)
    d = 1
    for term in sympy.Add.make_args(arg):
        coeff, _ = term.as_coeff_Mul()
        if not coeff.is_Rational:
            return None
        d = sympy.ilcm(d, coeff.q)
    c, n = sympy.expand(arg * d).as_coeff_Add()
    if n == 0 or not c.is_Integer or n.is_integer is not True:
        return None
    return n, int(c), int(d)


def _rounded(f, n, d):
    """f(n / d) for f = floor or ceiling, folding f(f(y) / d) = f(y / d)."""
    if d == 1:
        return n
    if isinstance(n, f):
        return f(n.args[0] / d)
    return f(n / d)


def tidy_rounding(expr):
    """Rewrite floors and ceilings of integer quotients in their simplest
    form, exactly: floor((n - 1)/d) + 1 = ceil(n/d) for an integer n (the
    output size of a strided layer), floor(floor(y)/d) = floor(y/d)."""
    sympy = _sympy()
    if not getattr(expr, "args", None):
        return expr
    args = [tidy_rounding(a) for a in expr.args]
    if isinstance(expr, (sympy.floor, sympy.ceiling)):
        split = _split_quotient(args[0])
        if split is not None:
            n, c, d = split
            if isinstance(expr, sympy.floor):
                if c % d == 0:  # floor(n/d + k) = floor(n/d) + k
                    return _rounded(sympy.floor, n, d) + c // d
                if (c + 1) % d == 0:  # floor((m)/d) = ceil((m - d + 1)/d)
                    return _rounded(sympy.ceiling, n, d) + (c + 1) // d - 1
            else:
                if c % d == 0:
                    return _rounded(sympy.ceiling, n, d) + c // d
                if (c - 1) % d == 0:  # ceil(m/d) = floor((m + d - 1)/d)
                    return _rounded(sympy.floor, n, d) + (c - 1) // d + 1
        return expr.func(*args)
    return expr.func(*args)


def _printer():
    sympy = _sympy()
    from sympy.printing.str import StrPrinter

    superscripts = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")

    class Readable(StrPrinter):
        """⌈x⌉ and ⌊x⌋, max(...), a·b, x², (a if c else b)."""

        def _print_ceiling(self, e):
            return "⌈" + self._print(e.args[0]) + "⌉"

        def _print_floor(self, e):
            return "⌊" + self._print(e.args[0]) + "⌋"

        def _print_Max(self, e):
            return "max(" + ", ".join(self._print(a) for a in e.args) + ")"

        def _print_Min(self, e):
            return "min(" + ", ".join(self._print(a) for a in e.args) + ")"

        def _print_Piecewise(self, e):
            parts = []
            for val, cond in e.args:
                if cond == sympy.true:
                    parts.append(self._print(val))
                else:
                    parts.append(f"{self._print(val)} if {self._print(cond)} else ")
            return "(" + "".join(parts) + ")"

        def _print_Pow(self, e, rational=False):
            base, exp = e.args
            if exp.is_Integer and 2 <= int(exp) <= 9:
                text = self._print(base)
                if not (base.is_Atom or isinstance(base, (sympy.floor, sympy.ceiling, sympy.Max, sympy.Min))):
                    text = f"({text})"
                return text + str(int(exp)).translate(superscripts)
            return super()._print_Pow(e, rational)

        def _print_Mul(self, e):
            return super()._print_Mul(e).replace("*", "·")

    return Readable()


def readable_text(expr) -> str:
    """One expression in the readable notation (one line)."""
    text = _printer().doprint(expr)
    return text.replace(" - ", " − ")


def wrap_expression(text: str, width: int, indent: str = "  ") -> str:
    """Break a long expression at its ``+`` / ``−`` and after its commas,
    never inside a name or number."""
    if len(text) <= width:
        return text
    stops = []
    for i in range(len(text) - 2):
        if text.startswith(", ", i):
            stops.append(i + 2)
        elif text[i] == " " and text[i + 1] in "+−" and text[i + 2] == " ":
            stops.append(i + 1)
    lines, start, last, prefix = [], 0, None, ""
    for stop in stops + [len(text)]:
        if len(prefix) + stop - start > width and last is not None and last > start:
            lines.append(prefix + text[start:last].rstrip())
            start, prefix = last, indent
        last = stop
    lines.append(prefix + text[start:].rstrip())
    return "\n".join(lines)


def named_forms(forms: dict, min_chars: int = 30):
    """``(definitions, quantities)``: the closed forms with their floors
    tidied and every sub-expression that recurs (sympy.cse) and is at
    least ``min_chars`` long given a name — a quantity's own name where it
    is a whole quantity (``total_floats = state_floats + transient_floats``),
    ``t1, t2…`` otherwise.  Both are lists of (name, sympy expression)."""
    sympy = _sympy()
    keys = [k for k in forms if not k.startswith("_")]
    tidy = [tidy_rounding(forms[k]) for k in keys]
    reps, reduced = sympy.cse(tidy, symbols=sympy.numbered_symbols("_cse"), order="none")
    reps = list(reps)
    printer = _printer()
    changed = True
    while changed:  # inline what is used once or too short to deserve a name
        changed = False
        for sym, val in reps:
            uses = sum(e.count(sym) for e in reduced) + sum(v.count(sym) for _, v in reps)
            if uses < 2 or len(printer.doprint(val)) < min_chars:
                reduced = [e.xreplace({sym: val}) for e in reduced]
                reps = [(s, v.xreplace({sym: val})) for s, v in reps if s != sym]
                changed = True
                break
    names, definitions = {}, []
    whole = {}
    for k, e in zip(keys, reduced):
        if e.is_Symbol and e in dict(reps) and e not in whole:
            whole[e] = k
    n = 0
    for sym, _ in reps:
        if sym in whole:
            names[sym] = sympy.Symbol(whole[sym])
        else:
            n += 1
            names[sym] = sympy.Symbol(f"t{n}")
    quantities = []
    for sym, val in reps:
        if sym not in whole:
            definitions.append((str(names[sym]), val.xreplace(names)))
    value_of = dict(reps)
    for k, e in zip(keys, reduced):
        if e.is_Symbol and whole.get(e) == k:
            quantities.append((k, value_of[e].xreplace(names)))
        else:
            quantities.append((k, e.xreplace(names)))
    return definitions, quantities


def _expression_width() -> int:
    import shutil

    return max(40, shutil.get_terminal_size((100, 24)).columns - 26)


def forms_tables(forms: dict, fmt: str, width: int | None = None):
    """(tables, json-data) for printing.  People read the tidy forms
    (⌈size/2⌉, named sub-expressions, wrapped to ``width`` or the terminal
    in the table format); CSV and JSON carry each quantity as one
    self-contained string sympy can parse (floors tidied, nothing named)."""
    from comem.results.formats import Table

    meta = forms["_meta"]
    data = {"model": meta["model"], "profile": meta["profile"], "convention": meta["convention"],
            "dtype": meta["dtype"],
            "batch": meta["batch"], "symbols": sorted(forms["_symbols"]), "valid_for": meta["valid_for"],
            "expressions": {}, "readable": {}}
    keys = [k for k in forms if not k.startswith("_")]
    for k in keys:
        data["expressions"][k] = str(tidy_rounding(forms[k]))
    definitions, quantities = named_forms(forms)
    for k, v in definitions + quantities:
        data["readable"][k] = readable_text(v)
    from comem import _compat

    _compat.add_keys(data["expressions"], _compat.SUMMARY_KEYS)
    _compat.add_keys(data, {old: new for old, new in _compat.SUMMARY_KEYS.items() if old not in data["expressions"]})
    if fmt == "csv":
        rows = [[k, data["expressions"][k]] for k in keys]
    else:
        wide = width or _expression_width()
        rows = [[k, wrap_expression(readable_text(v), wide) if fmt == "table" else readable_text(v)]
                for k, v in definitions + quantities]
    notes = [f"symbols: {', '.join(sorted(forms['_symbols']))} (clip, size: positive integers); "
             f"valid for {meta['valid_for']}",
             "⌈x⌉ rounds up and ⌊x⌋ down (the layers' output shapes); max(...) is the largest of its terms"]
    if definitions:
        notes.append(f"{', '.join(k for k, _ in definitions)}: sub-expressions that recur, named once")
    if fmt == "csv":
        notes = []
    title = f"Closed forms — {meta['model']}, profile {meta['profile']}, counts: {meta['convention']}, {meta['dtype']}"
    return [Table(title, ["quantity", "expression"], rows, notes)], data


def forms_latex(forms: dict) -> str:
    """The closed forms as a LaTeX ``align*`` block (math, not escaped text):
    the named sub-expressions first, then every quantity."""
    sympy = _sympy()
    meta = forms["_meta"]
    definitions, quantities = named_forms(forms)
    lines = [f"% comem closed forms: {meta['model']}, profile {meta['profile']}, counts {meta['convention']}, "
             f"{meta['dtype']}; valid for {meta['valid_for']}", r"\begin{align*}"]
    items = definitions + quantities

    def tex_name(k):
        return r"\mathrm{" + k.replace("_", r"\_") + "}" if len(k) > 1 and not k[1:].isdigit() \
            else sympy.latex(sympy.Symbol(k))

    for i, (k, v) in enumerate(items):
        names = {x: tex_name(x.name) for x in v.free_symbols}
        end = r" \\" if i < len(items) - 1 else ""
        lines.append(f"{tex_name(k)} &= {sympy.latex(v, symbol_names=names, mul_symbol='dot')}{end}")
    lines.append(r"\end{align*}")
    return "\n".join(lines)
