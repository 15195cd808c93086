"""The domain of a spec parameter: the values it may take.

A spec declares them in a ``[domains]`` table beside ``[params]``, in
interval notation over exact numbers::

    [domains]
    width_factor = "(0, 64]"      # open at 0, closed at 64
    stem_kt = "[1, 15]"           # a whole-number parameter: whole numbers in [1, 15]
    adaptive = "{0, 1}"           # a set of values

A parameter whose default is a whole number takes whole numbers only.  A
parameter without a declared domain gets the default of its type: whole
numbers in [0, 1000000] for a whole-number default, numbers in
(0, 1000000] for a decimal one; a parameter defined by an expression of
others is not checked here (the layers it feeds check their fields).

:func:`check_param` is the one check: loading validates every default
against its domain, and every path that sets a parameter (analyze, sweeps
and design grids, solve, pareto, compare, closed forms) calls it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from comem.errors import ComemError, suggest

#: the bound of the default domains
DEFAULT_LIMIT = 1_000_000
#: a decimal a user may write: 2.5, .5, -1, 1e9, 11/5 (exponents of at most two digits)
NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,2})?"


def exact(text: str) -> Fraction | None:
    """A number written as text -> an exact Fraction (None if it is not one)."""
    t = text.strip().replace("_", "")
    m = re.fullmatch(rf"({NUMBER})(?:\s*/\s*(\d+))?", t)
    if not m:
        return None
    v = Fraction(m.group(1))
    if m.group(2) is not None:
        if int(m.group(2)) == 0:
            return None
        v /= int(m.group(2))
    return v


def _text(v) -> str:
    v = Fraction(v)
    if v.denominator == 1:
        return str(v.numerator)
    f = float(v)
    return repr(f) if Fraction(repr(f)) == v else f"{v.numerator}/{v.denominator}"


@dataclass(frozen=True)
class Domain:
    """Numbers between ``lo`` and ``hi`` (each bound open or closed, None:
    unbounded), whole numbers only when ``whole``; or the set ``values``."""
    lo: Fraction | None = None
    hi: Fraction | None = None
    lo_open: bool = False
    hi_open: bool = False
    whole: bool = False
    values: tuple = ()
    declared: bool = True

    def __contains__(self, v) -> bool:
        if isinstance(v, bool):
            return False
        try:
            v = Fraction(v)
        except (TypeError, ValueError, OverflowError):
            return False
        if self.values:
            return v in self.values
        if self.whole and v.denominator != 1:
            return False
        if self.lo is not None and (v < self.lo or (self.lo_open and v == self.lo)):
            return False
        if self.hi is not None and (v > self.hi or (self.hi_open and v == self.hi)):
            return False
        return True

    @property
    def notation(self) -> str:
        if self.values:
            return "{" + ", ".join(_text(v) for v in self.values) + "}"
        lo = "-inf" if self.lo is None else _text(self.lo)
        hi = "inf" if self.hi is None else _text(self.hi)
        return f"{'(' if self.lo_open or self.lo is None else '['}{lo}, {hi}{')' if self.hi_open or self.hi is None else ']'}"

    def describe(self) -> str:
        """'a number in (0, 64]', 'a whole number in [1, 15]', 'one of {0, 1}'."""
        if self.values:
            return f"one of {self.notation}"
        return f"{'a whole number' if self.whole else 'a number'} in {self.notation}"


def parse_domain(text, whole: bool) -> Domain:
    """``"(0, 64]"``, ``"[1, 15]"``, ``"[0, inf)"``, ``"{0, 1}"`` -> a
    :class:`Domain` (ValueError with the reason otherwise)."""
    if not isinstance(text, str):
        raise ValueError(f"expected a string like \"(0, 64]\" or \"{{0, 1}}\", got {type(text).__name__}")
    t = text.strip()
    m = re.fullmatch(r"\{(.*)\}", t)
    if m:
        items = [x.strip() for x in m.group(1).split(",")]
        vals = [exact(x) for x in items]
        if not items or any(v is None for v in vals):
            raise ValueError(f"{text!r} is not a set of numbers like {{0, 1}}")
        return Domain(values=tuple(sorted(set(vals))), whole=whole)
    m = re.fullmatch(r"([\[(])\s*([^,]+?)\s*,\s*([^,]+?)\s*([\])])", t)
    if not m:
        raise ValueError(f"{text!r} is not an interval like \"(0, 64]\", \"[1, 15]\" or \"[0, inf)\", "
                         "nor a set like \"{0, 1}\"")
    lb, a, b, rb = m.groups()
    lo = None if a.lower() in ("-inf", "-infinity") else exact(a)
    hi = None if b.lower() in ("inf", "+inf", "infinity") else exact(b)
    if (lo is None and a.lower() not in ("-inf", "-infinity")) or (hi is None and b.lower() not in
                                                                      ("inf", "+inf", "infinity")):
        raise ValueError(f"{text!r}: the bounds must be numbers (or -inf / inf)")
    if lo is None and lb == "[" or hi is None and rb == "]":
        raise ValueError(f"{text!r}: an infinite bound is open: write ( or )")
    d = Domain(lo, hi, lb == "(", rb == ")", whole)
    if lo is not None and hi is not None and (hi < lo or (hi == lo and (d.lo_open or d.hi_open))):
        raise ValueError(f"{text!r} is empty")
    return d


def default_domain(value) -> Domain | None:
    """The domain of a parameter that declares none, by its default's type."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Domain(Fraction(0), Fraction(DEFAULT_LIMIT), whole=True, declared=False)
    if isinstance(value, (float, Fraction)):
        return Domain(Fraction(0), Fraction(DEFAULT_LIMIT), lo_open=True, whole=False, declared=False)
    return None  # an expression of other parameters


def domain_of(spec, name: str) -> Domain | None:
    """The declared domain of parameter ``name``, or the default of its type."""
    declared = getattr(spec, "domains", None) or {}
    if name in declared:
        return declared[name]
    default = spec.params.get(name)
    dom = default_domain(default)
    # a default outside its type's domain (a negative offset, say) says the type's guess is wrong: no check
    return dom if dom is not None and default in dom else None


def param_value(spec, name: str, raw):
    """A parameter override (text such as ``"2.5"``, ``"11/5"``, ``"1e3"``,
    or a number) as an exact value inside the parameter's domain."""
    if name not in spec.params:
        raise ComemError(f"model {spec.name} has no parameter {name!r}{suggest(name, spec.params)}; "
                         f"its parameters: {', '.join(spec.params) or 'none'}")
    if isinstance(raw, bool) or raw is None:
        raise ComemError(f"parameter {name} = {raw!r} is not a number; write e.g. {name}=2.5")
    if isinstance(raw, (int, Fraction)):
        v = Fraction(raw)
    elif isinstance(raw, float):
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise ComemError(f"parameter {name} = {raw!r} is not a finite number; write e.g. {name}=2.5")
        v = Fraction(repr(raw))
    elif hasattr(raw, "item") and not isinstance(raw, str):  # numpy scalars
        return param_value(spec, name, raw.item())
    else:
        v = exact(str(raw))
        if v is None and (".." in str(raw) or "," in str(raw)):
            raise ComemError(f"parameter {name} = {str(raw)!r} is a range or a list; here it takes one value "
                             f"(comem sweep and comem pareto sweep {name}=1..3:0.25)")
        if v is None:
            raise ComemError(f"parameter {name} = {str(raw)!r} is not a number; write e.g. {name}=2.5")
    check_param(spec, name, v)
    return int(v) if v.denominator == 1 else v


def check_param(spec, name: str, value, how: str = "") -> None:
    """The one domain check: ``value`` (a number, or a list or array of them)
    lies in the domain of parameter ``name`` of ``spec``; a one-line
    :class:`ComemError` naming the domain otherwise.  ``how``: where the value
    came from (``"--set width_factor=-1..1:0.5"``), for the message."""
    dom = domain_of(spec, name)
    if dom is None:
        return
    values = _values(value)
    for v in values:
        if v not in dom:
            where = f" (in {how})" if how else ""
            text = _text(v) if isinstance(v, (int, Fraction)) else repr(v)
            raise ComemError(f"parameter {name} = {text}{where} is outside its domain: {name} of {spec.name} "
                             f"must be {dom.describe()}")


def check_params(spec, overrides: dict, how: dict | None = None) -> None:
    """:func:`check_param` for every concrete override (symbolic ones, sympy
    symbols, are a family of networks and are not checked)."""
    for name, value in (overrides or {}).items():
        if name in spec.params:
            check_param(spec, name, value, (how or {}).get(name, ""))


def _values(value) -> list:
    """The distinct concrete numbers of a value, a list or a numpy array."""
    if hasattr(value, "ravel") and hasattr(value, "tolist"):  # numpy
        value = value.ravel().tolist()
    if isinstance(value, (list, tuple, set)):
        out = []
        for v in value:
            out.extend(_values(v))
        return list(dict.fromkeys(out))
    if isinstance(value, bool):
        return [value]
    if isinstance(value, (int, Fraction)):
        return [value]
    if isinstance(value, float):
        return [value] if value != value or value in (float("inf"), float("-inf")) else [Fraction(repr(value))]
    return []  # a symbol or an expression: not a concrete value


def load_domains(raw, params: dict, inherited: dict, fail) -> dict:
    """The ``[domains]`` table of a spec: name -> :class:`Domain`, over the
    inherited ones; every name a parameter, every text a domain, every
    default inside its domain.  ``fail(where, message)`` reports a problem."""
    if not isinstance(raw, dict):
        fail("[domains]", "expected a table of name = \"(0, 64]\" (an interval) or \"{0, 1}\" (a set)")
    out = {k: v for k, v in inherited.items() if k in params}
    for name, text in raw.items():
        if name not in params:
            fail("[domains]", f"{name!r} is not a parameter{suggest(name, params)}; declare it in [params] first")
        default = params[name]
        whole = isinstance(default, int) and not isinstance(default, bool)
        try:
            out[name] = parse_domain(text, whole)
        except ValueError as exc:
            fail(f"[domains].{name}", str(exc))
    for name, dom in out.items():
        default = params[name]
        if isinstance(default, (int, float)) and not isinstance(default, bool) and default not in dom:
            fail(f"[domains].{name}", f"the default {name} = {default!r} is outside its domain {dom.notation}")
    return out
