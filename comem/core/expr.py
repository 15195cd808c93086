"""A small, whitelisted expression language for spec files.

Spec values such as ``"round_width(12, width_factor)"`` or ``"kt // 2"`` are
parsed with :func:`ast.parse` and then *interpreted* node by node; only the
node types and functions listed here exist.  Nothing is ever passed to
``eval``, ``exec`` or ``sympify``: a spec cannot run code.

Decimal literals become exact :class:`fractions.Fraction` values (``2.2`` is
11/5, not the nearest binary float), so structural numbers derived from
them (channel widths, block counts) are exact integers.
"""
from __future__ import annotations

import ast
import warnings
from fractions import Fraction
from typing import Any, Callable, Mapping

from comem.core import shim
from comem.errors import ComemError

MAX_EXPR_LEN = 400
MAX_POWER = 64


def _int_floor(x):
    return shim.as_int(shim.floor(x))


def _int_ceil(x):
    return shim.as_int(shim.ceil(x))


def _cdiv(a, b):
    return shim.cdiv(a, b)


def _max(*xs):
    return shim.maximum(*xs)


def _min(*xs):
    return shim.minimum(*xs)


def _round_width(width, multiplier, min_width=8, divisor=8):
    return shim.round_width(width, multiplier, min_width, divisor)


#: The only functions a spec expression may call.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ceil": _int_ceil,
    "floor": _int_floor,
    "int": _int_floor,
    "cdiv": _cdiv,
    "max": _max,
    "min": _min,
    "round_width": _round_width,
}

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
}

_CMPOPS = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}


def to_exact(value):
    """Convert a TOML/JSON number to an exact value (int or Fraction)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ComemError(f"number {value!r} is not finite; use a finite number")
        return shim.as_int(Fraction(repr(value)))
    return value


def _divide(a, b):
    if isinstance(b, (int, Fraction)) and not isinstance(b, bool) and b == 0:
        raise ZeroDivisionError("division by zero")
    if isinstance(a, int) and isinstance(b, int):
        return shim.as_int(Fraction(a, b))
    if isinstance(a, (int, Fraction)) and isinstance(b, (int, Fraction)):
        return shim.as_int(Fraction(a) / Fraction(b))
    return a / b


class Expression:
    """A parsed spec expression or formula.

    :meth:`evaluate` computes its value (ints, Fractions, sympy symbols and
    numpy arrays alike); :meth:`render` writes it as text, either with its
    symbols (``d_T×(k_T−1)×c_O×n_H×n_W``) or with their values substituted
    (``(3−1)×54×56×56``).  The tree is checked once and compiled into nested
    closures, so evaluating a formula costs a few microseconds.
    """

    __slots__ = ("text", "_tree", "names", "_fn")

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise ComemError(f"expression must be text, got {type(text).__name__}")
        if len(text) > MAX_EXPR_LEN:
            raise ComemError(f"expression is longer than {MAX_EXPR_LEN} characters; simplify it")
        self.text = text
        try:
            with warnings.catch_warnings():
                # e.g. "2 if 1else 3": Python warns about the literal; a spec is not Python
                warnings.simplefilter("ignore", SyntaxWarning)
                tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ComemError(f"cannot parse expression {text!r}: {exc.msg}") from None
        self._tree = tree
        self.names = set()
        self._check(tree.body)
        self._fn = self._compile(tree.body)

    def _check(self, node):
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or isinstance(node.value, (int, float)):
                return
            raise ComemError(f"expression {self.text!r}: only numbers and names are allowed, not {node.value!r}")
        if isinstance(node, ast.Name):
            self.names.add(node.id)
            return
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS and not isinstance(node.op, (ast.Div, ast.Pow)):
                raise ComemError(f"expression {self.text!r}: operator {type(node.op).__name__} is not allowed")
            self._check(node.left)
            self._check(node.right)
            return
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
                raise ComemError(f"expression {self.text!r}: operator {type(node.op).__name__} is not allowed")
            self._check(node.operand)
            return
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self._check(v)
            return
        if isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _CMPOPS:
                    raise ComemError(f"expression {self.text!r}: comparison {type(op).__name__} is not allowed")
            self._check(node.left)
            for c in node.comparators:
                self._check(c)
            return
        if isinstance(node, ast.IfExp):
            self._check(node.test)
            self._check(node.body)
            self._check(node.orelse)
            return
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = getattr(node.func, "id", None) or "a computed callee"
                raise ComemError(
                    f"expression {self.text!r}: unknown function {name!r}; "
                    f"allowed: {', '.join(sorted(FUNCTIONS))}")
            if node.keywords:
                raise ComemError(f"expression {self.text!r}: keyword arguments are not allowed")
            for a in node.args:
                self._check(a)
            return
        raise ComemError(f"expression {self.text!r}: {type(node).__name__} is not allowed in a spec expression")

    def evaluate(self, env: Mapping[str, Any]):
        try:
            return self._fn(env)
        except ComemError:
            raise
        except ZeroDivisionError:
            raise ComemError(f"expression {self.text!r} divides by zero") from None
        except (TypeError, ValueError, OverflowError) as exc:
            raise ComemError(f"expression {self.text!r} cannot be evaluated: {exc}") from None

    # -- compilation: the checked tree becomes nested closures ----------------
    def _compile(self, node) -> Callable[[Mapping[str, Any]], Any]:
        text = self.text
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, float):
                seg = ast.get_source_segment(text.strip(), node)
                v = shim.as_int(Fraction(seg)) if seg else to_exact(v)
            return lambda env: v
        if isinstance(node, ast.Name):
            name = node.id

            def name_value(env):
                if name in env:
                    return env[name]
                if name in ("True", "False"):
                    return name == "True"
                known = ", ".join(sorted(k for k in env if not k.startswith("_"))) or "none"
                raise ComemError(f"expression {text!r}: unknown name {name!r} (known: {known})")
            return name_value
        if isinstance(node, ast.BinOp):
            left, right = self._compile(node.left), self._compile(node.right)
            if isinstance(node.op, ast.Div):
                return lambda env: _divide(left(env), right(env))
            if isinstance(node.op, ast.Pow):
                def power(env):
                    a, b = left(env), right(env)
                    if not (isinstance(b, int) and 0 <= b <= MAX_POWER):
                        raise ComemError(f"expression {text!r}: exponents must be whole numbers 0..{MAX_POWER}")
                    return a ** b
                return power
            op = _BINOPS[type(node.op)]
            if isinstance(node.op, (ast.FloorDiv, ast.Mod)):
                def div_like(env):
                    a, b = left(env), right(env)
                    if isinstance(b, (int, Fraction)) and b == 0:
                        raise ZeroDivisionError
                    return shim.as_int(op(a, b))
                return div_like
            if isinstance(node.op, ast.Mult):
                return lambda env: shim.as_int(left(env) * right(env))
            return lambda env: shim.as_int(op(left(env), right(env)))
        if isinstance(node, ast.UnaryOp):
            operand = self._compile(node.operand)
            if isinstance(node.op, ast.USub):
                return lambda env: -operand(env)
            if isinstance(node.op, ast.Not):
                return lambda env: not _truth(operand(env), text)
            return operand
        if isinstance(node, ast.BoolOp):
            values = [self._compile(v) for v in node.values]
            if isinstance(node.op, ast.And):
                return lambda env: all(_truth(v(env), text) for v in values)
            return lambda env: any(_truth(v(env), text) for v in values)
        if isinstance(node, ast.Compare):
            first = self._compile(node.left)
            rest = [(_CMPOPS[type(op)], self._compile(c)) for op, c in zip(node.ops, node.comparators)]

            def compare(env):
                left = first(env)
                for op, comp in rest:
                    right = comp(env)
                    if not _truth(op(left, right), text):
                        return False
                    left = right
                return True
            return compare
        if isinstance(node, ast.IfExp):
            test, body, orelse = self._compile(node.test), self._compile(node.body), self._compile(node.orelse)
            return lambda env: body(env) if _truth(test(env), text) else orelse(env)
        if isinstance(node, ast.Call):
            fn = FUNCTIONS[node.func.id]
            args = [self._compile(a) for a in node.args]
            return lambda env: fn(*[a(env) for a in args])
        raise ComemError(f"expression {text!r}: unsupported syntax")  # pragma: no cover

    # -- rendering ------------------------------------------------------------
    def render(self, values: Mapping[str, Any] | None = None, texts: Mapping[str, tuple] | None = None) -> str:
        """The expression as text.

        Without ``values``: with its symbols, ``d_T×(k_T−1)×c_O×n_H×n_W``.
        With ``values``: numbers in, ``(3−1)×54×56×56``; a symbol worth 1 is
        left out of a product and a symbol worth 0 out of a sum, so a
        formula reads as the paper prints it (``d_T = 1`` and a ``1×1``
        pooled map disappear; a compound factor such as ``(3−1−1)`` stays).
        ``texts`` gives a symbol pre-rendered text as ``(text, precedence)``
        (e.g. an alignment delay's ``3−1−1``)."""
        return self.render_parts(values, texts)[0]

    def render_parts(self, values=None, texts=None) -> tuple[str, int]:
        """:meth:`render`'s text and its precedence (to use it inside another
        rendered formula through ``texts``)."""
        return _Renderer(values, texts or {}).render(self._tree.body)


# precedence for rendering: higher binds tighter
_PREC_ATOM, _PREC_POW, _PREC_UNARY, _PREC_MUL, _PREC_ADD, _PREC_CMP = 6, 5, 4, 3, 2, 1
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_RENDER_OPS = {ast.Add: ("+", _PREC_ADD), ast.Sub: ("−", _PREC_ADD), ast.Mult: ("×", _PREC_MUL),
               ast.Div: ("/", _PREC_MUL), ast.FloorDiv: ("//", _PREC_MUL), ast.Mod: (" mod ", _PREC_MUL)}
_RENDER_CMP = {ast.Eq: "=", ast.NotEq: "≠", ast.Lt: "<", ast.LtE: "≤", ast.Gt: ">", ast.GtE: "≥"}


def format_number(v) -> str:
    """A value inside a rendered formula: ints as digits, exact ratios as p/q."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, Fraction):
        return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"
    return str(v)


class _Renderer:
    def __init__(self, values, texts):
        self.values = values
        self.texts = texts

    def _value(self, name):
        if self.values is None or name not in self.values:
            return None
        return self.values[name]

    def _is_leaf_worth(self, node, number) -> bool:
        """A symbol (or literal) whose value is exactly ``number``."""
        if self.values is None:
            return False
        if isinstance(node, ast.Name):
            if node.id in self.texts:
                return False  # a pre-rendered symbol is always shown
            v = self._value(node.id)
        elif isinstance(node, ast.Constant) and not isinstance(node.value, bool):
            return False  # a literal the formula's author wrote stays
        else:
            return False
        return v is not None and shim.is_concrete(v) and not isinstance(v, bool) and v == number

    def render(self, node) -> tuple[str, int]:
        if isinstance(node, ast.Constant):
            return format_number(node.value), _PREC_ATOM
        if isinstance(node, ast.Name):
            if node.id in self.texts:
                return self.texts[node.id]
            v = self._value(node.id)
            if v is None:
                return node.id, _PREC_ATOM
            return format_number(v), _PREC_ATOM
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Mult):
                return self._product(node)
            if isinstance(node.op, (ast.Add, ast.Sub)):
                if self._is_leaf_worth(node.right, 0):
                    return self.render(node.left)
                if isinstance(node.op, ast.Add) and self._is_leaf_worth(node.left, 0):
                    return self.render(node.right)
            if isinstance(node.op, ast.Pow):
                base = self._wrap(node.left, _PREC_POW, strict=True)
                if isinstance(node.right, ast.Constant) and isinstance(node.right.value, int):
                    return base + str(node.right.value).translate(_SUPERSCRIPT), _PREC_POW
                return f"{base}^{self._wrap(node.right, _PREC_POW, strict=True)}", _PREC_POW
            sym, prec = _RENDER_OPS[type(node.op)]
            left = self._wrap(node.left, prec)
            right = self._wrap(node.right, prec, strict=True)
            return f"{left}{sym}{right}", prec
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return "not " + self._wrap(node.operand, _PREC_UNARY), _PREC_UNARY
            sign = "−" if isinstance(node.op, ast.USub) else "+"
            return sign + self._wrap(node.operand, _PREC_UNARY), _PREC_UNARY
        if isinstance(node, ast.Call):
            args = ", ".join(self.render(a)[0] for a in node.args)
            return f"{node.func.id}({args})", _PREC_ATOM
        if isinstance(node, ast.Compare):
            parts = [self._wrap(node.left, _PREC_CMP, strict=True)]
            for op, c in zip(node.ops, node.comparators):
                parts.append(_RENDER_CMP[type(op)])
                parts.append(self._wrap(c, _PREC_CMP, strict=True))
            return " ".join(parts), _PREC_CMP
        if isinstance(node, ast.BoolOp):
            word = " and " if isinstance(node.op, ast.And) else " or "
            return word.join(self._wrap(v, _PREC_CMP) for v in node.values), 0
        if isinstance(node, ast.IfExp):
            return (f"{self.render(node.body)[0]} if {self.render(node.test)[0]} else "
                    f"{self.render(node.orelse)[0]}"), 0
        raise ComemError("cannot render this expression")  # pragma: no cover

    def _wrap(self, node, prec, strict=False):
        text, p = self.render(node)
        if p < prec or (strict and p == prec):
            return f"({text})"
        return text

    def _product(self, node):
        """Flatten a chain of ``×`` and drop the factors worth 1."""
        factors = []

        def collect(n):
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult):
                collect(n.left)
                collect(n.right)
            else:
                factors.append(n)

        collect(node)
        kept = [f for f in factors if not self._is_leaf_worth(f, 1)] or factors[-1:]
        if len(kept) == 1:
            return self.render(kept[0])
        return "×".join(self._wrap(f, _PREC_MUL) for f in kept), _PREC_MUL


def _truth(value, text):
    if isinstance(value, bool):
        return value
    value = shim.structural(value)  # a condition over a parameter grid splits it
    if isinstance(value, bool):
        return value
    if shim.is_concrete(value):
        return bool(value)
    raise ComemError(f"expression {text!r}: a condition cannot depend on a symbolic parameter")


_CACHE: dict[str, Expression] = {}


def parse(text: str, what: str = "value") -> Expression:
    """The parsed (and cached) expression of ``text``; a layer kind's
    formulas and a spec's values share the cache."""
    expr = _CACHE.get(text)
    if expr is None:
        try:
            expr = Expression(text)
        except ComemError as exc:
            raise ComemError(f"{what}: {exc}") from None
        if len(_CACHE) < 4096:
            _CACHE[text] = expr
    return expr


def evaluate(value, env: Mapping[str, Any], what: str = "value"):
    """Evaluate a spec value: numbers pass through (made exact), strings are
    parsed as expressions, lists are evaluated element-wise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return to_exact(value)
    if isinstance(value, str):
        expr = parse(value, what)
        try:
            return expr.evaluate(env)
        except ComemError as exc:
            raise ComemError(f"{what}: {exc}") from None
    if isinstance(value, list):
        return [evaluate(v, env, what) for v in value]
    raise ComemError(f"{what}: expected a number or an expression string, got {type(value).__name__}")
