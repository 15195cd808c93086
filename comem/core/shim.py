"""The tiny arithmetic shim every formula is written over.

Layer formulas use plain ``+ - * //`` plus the helpers below, so the same
code runs on

* Python ``int`` / ``fractions.Fraction`` (exact numeric evaluation),
* sympy expressions (closed forms), and
* numpy arrays (vectorised sweeps, including ``dtype=object`` arrays of
  Python ints when int64 would overflow).

Nothing here imports sympy or numpy: the kind of a value is recognised by
the module its type comes from, so a plain numeric query never pays for
either import.
"""
from __future__ import annotations

import math
from fractions import Fraction


_FAMILIES: dict = {}


def _family(x) -> str:
    """'sympy', 'numpy' or 'python' for one value (cached by type: formulas
    ask this of every operand)."""
    t = type(x)
    fam = _FAMILIES.get(t)
    if fam is None:
        mod = t.__module__
        fam = "sympy" if mod.startswith("sympy") else ("numpy" if mod.startswith("numpy") else "python")
        _FAMILIES[t] = fam
    return fam


def _family_of(values) -> str:
    fams = {_family(v) for v in values}
    if "sympy" in fams:
        return "sympy"
    if "numpy" in fams:
        return "numpy"
    return "python"


def fdiv(a, b):
    """Floor division ``floor(a / b)`` for every value family."""
    return a // b


def cdiv(a, b):
    """Ceiling division ``ceil(a / b)`` for every value family."""
    return -((-a) // b)


def floor(x):
    fam = _family(x)
    if fam == "python":
        return math.floor(x) if isinstance(x, Fraction) else (x if isinstance(x, int) else math.floor(x))
    if fam == "sympy":
        import sympy

        return sympy.floor(x)
    import numpy as np

    return np.floor(x).astype(np.int64) if np.issubdtype(x.dtype, np.floating) else x // 1


def ceil(x):
    fam = _family(x)
    if fam == "python":
        return x if isinstance(x, int) else math.ceil(x)
    if fam == "sympy":
        import sympy

        return sympy.ceiling(x)
    import numpy as np

    return np.ceil(x).astype(np.int64) if np.issubdtype(x.dtype, np.floating) else -((-x) // 1)


def maximum(*xs):
    """Largest of the arguments (``max`` / ``sympy.Max`` / ``numpy.maximum``)."""
    if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
        xs = tuple(xs[0])
    if not xs:
        return 0
    fam = _family_of(xs)
    if fam == "python":
        return max(xs)
    if fam == "sympy":
        return _sympy_max(xs)
    import numpy as np

    out = xs[0]
    for x in xs[1:]:
        out = np.maximum(out, x)
    return out


def to_sympy(v):
    """A value comem computed (int, Fraction or sympy) as a sympy object."""
    import sympy

    if isinstance(v, bool):
        return sympy.true if v else sympy.false
    if isinstance(v, int):
        return sympy.Integer(v)
    if isinstance(v, Fraction):
        return sympy.Rational(v.numerator, v.denominator)
    return v


def _sympy_max(xs):
    """An unevaluated, flattened, de-duplicated ``sympy.Max``.

    comem only takes maxima of non-negative counts (maps, delays, receptive
    fields), so numeric arguments collapse to their largest and nested
    maxima are flattened.  ``evaluate=False`` skips sympy's search for
    dominated arguments, which costs minutes on floor-laden expressions; the
    result is exact and evaluates when numbers are substituted.
    """
    import sympy

    terms = []
    seen = set()
    best_number = None

    def add(x):
        nonlocal best_number
        if isinstance(x, sympy.Max):
            for a in x.args:
                add(a)
            return
        if _family(x) == "python" or (hasattr(x, "is_Number") and x.is_Number):
            best_number = x if best_number is None or x > best_number else best_number
            return
        if x not in seen:
            seen.add(x)
            terms.append(x)

    for x in xs:
        add(x)
    if best_number is not None and (best_number != 0 or not terms):
        terms.append(to_sympy(best_number))
    if len(terms) == 1:
        return terms[0]
    return sympy.Max(*terms, evaluate=False)


def minimum(*xs):
    """Smallest of the arguments (``min`` / ``sympy.Min`` / ``numpy.minimum``)."""
    if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
        xs = tuple(xs[0])
    fam = _family_of(xs)
    if fam == "python":
        return min(xs)
    if fam == "sympy":
        import sympy

        return sympy.Min(*xs)
    import numpy as np

    out = xs[0]
    for x in xs[1:]:
        out = np.minimum(out, x)
    return out


def where(cond, a, b):
    """``a if cond else b`` for every value family."""
    fam = _family_of((cond, a, b))
    if fam == "python":
        return a if cond else b
    if fam == "sympy":
        import sympy

        return sympy.Piecewise((a, cond), (b, True))
    import numpy as np

    return np.where(cond, a, b)


def less(a, b):
    fam = _family_of((a, b))
    if fam == "sympy":
        import sympy

        return sympy.Lt(a, b)
    return a < b


class Split(Exception):
    """A structural decision (a repeat count, a kernel, a ``when``) takes
    different values across a grid of parameter values.  ``values`` holds
    the decision per grid point; a design sweep groups the grid by it and
    builds each group's graph apart (:mod:`comem.analyses.sweep`)."""

    def __init__(self, values):
        super().__init__("a structural value differs across the parameter grid")
        self.values = values


def structural(x):
    """``x`` where the graph's structure depends on it: a numpy array of
    equal values becomes that plain value; unequal values raise
    :class:`Split`.  Numbers and sympy expressions pass through."""
    if _family(x) != "numpy":
        return x
    import numpy as np

    a = np.asarray(x)
    if a.size == 0:
        return x
    first = a.flat[0]
    if a.dtype == object:
        same = all(v == first for v in a.flat)
    else:
        same = bool((a == first).all())
    if not same:
        raise Split(a)
    if isinstance(first, np.bool_):
        return bool(first)
    if isinstance(first, np.integer):
        return int(first)
    return first


def tidy(x):
    """A numpy object array of whole numbers as int64 (the fast path of the
    formulas); anything else unchanged."""
    if _family(x) != "numpy" or getattr(x, "dtype", None) is None or x.dtype != object:
        return x
    import numpy as np

    if all(isinstance(v, int) or (isinstance(v, Fraction) and v.denominator == 1) for v in x.flat):
        if all(-(2 ** 62) < v < 2 ** 62 for v in x.flat):
            return np.asarray([int(v) for v in x.flat], dtype=np.int64).reshape(x.shape)
    return x


def is_concrete(x) -> bool:
    """True for a plain Python number (not a symbol, not an array)."""
    fam = _FAMILIES.get(type(x))
    return (fam or _family(x)) == "python"


def as_int(x):
    """Turn an integral Fraction into int; leave other values alone."""
    if isinstance(x, Fraction) and x.denominator == 1:
        return int(x)
    return x


def round_width(width, multiplier, min_width=8, divisor=8):
    """Channel rounding of X3D / EfficientNet: ``width * multiplier`` to a
    multiple of ``divisor``, at least ``min_width``, and never more than 10 %
    below the unrounded value.  Mirrors ``_round_width`` of the SlowFast code,
    written over the shim so it also works on symbols and arrays."""
    scaled = width * multiplier
    rounded = floor((scaled + Fraction(divisor, 2)) / divisor) * divisor
    rounded = maximum(min_width, rounded)
    bump = less(rounded, Fraction(9, 10) * scaled)
    return as_int(where(bump, rounded + divisor, rounded))
