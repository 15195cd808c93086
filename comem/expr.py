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
from fractions import Fraction
from typing import Any, Callable, Mapping

from . import shim
from .errors import ComemError

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
    """A parsed spec expression; evaluate with :meth:`evaluate`."""

    __slots__ = ("text", "_tree", "names")

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise ComemError(f"expression must be text, got {type(text).__name__}")
        if len(text) > MAX_EXPR_LEN:
            raise ComemError(f"expression is longer than {MAX_EXPR_LEN} characters; simplify it")
        self.text = text
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ComemError(f"cannot parse expression {text!r}: {exc.msg}") from None
        self._tree = tree
        self.names = set()
        self._check(tree.body)

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
            return self._eval(self._tree.body, env)
        except ComemError:
            raise
        except ZeroDivisionError:
            raise ComemError(f"expression {self.text!r} divides by zero") from None
        except (TypeError, ValueError, OverflowError) as exc:
            raise ComemError(f"expression {self.text!r} cannot be evaluated: {exc}") from None

    def _eval(self, node, env):
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, float):
                seg = ast.get_source_segment(self.text.strip(), node)
                return shim.as_int(Fraction(seg)) if seg else to_exact(v)
            return v
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id in ("True", "False"):
                return node.id == "True"
            known = ", ".join(sorted(k for k in env if not k.startswith("_"))) or "none"
            raise ComemError(f"expression {self.text!r}: unknown name {node.id!r} (known: {known})")
        if isinstance(node, ast.BinOp):
            a = self._eval(node.left, env)
            b = self._eval(node.right, env)
            if isinstance(node.op, ast.Div):
                return _divide(a, b)
            if isinstance(node.op, ast.Pow):
                if not (isinstance(b, int) and 0 <= b <= MAX_POWER):
                    raise ComemError(f"expression {self.text!r}: exponents must be whole numbers 0..{MAX_POWER}")
                return a ** b
            if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and isinstance(b, (int, Fraction)) and b == 0:
                raise ZeroDivisionError
            return shim.as_int(_BINOPS[type(node.op)](a, b))
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, env)
            if isinstance(node.op, ast.USub):
                return -v
            if isinstance(node.op, ast.Not):
                return not _truth(v, self.text)
            return v
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(_truth(self._eval(v, env), self.text) for v in node.values)
            return any(_truth(self._eval(v, env), self.text) for v in node.values)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, env)
            for op, comp in zip(node.ops, node.comparators):
                right = self._eval(comp, env)
                if not _truth(_CMPOPS[type(op)](left, right), self.text):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self._eval(node.body, env) if _truth(self._eval(node.test, env), self.text) else self._eval(node.orelse, env)
        if isinstance(node, ast.Call):
            args = [self._eval(a, env) for a in node.args]
            return FUNCTIONS[node.func.id](*args)
        raise ComemError(f"expression {self.text!r}: unsupported syntax")  # pragma: no cover


def _truth(value, text):
    if isinstance(value, bool):
        return value
    if shim.is_concrete(value):
        return bool(value)
    raise ComemError(f"expression {text!r}: a condition cannot depend on a symbolic parameter")


_CACHE: dict[str, Expression] = {}


def evaluate(value, env: Mapping[str, Any], what: str = "value"):
    """Evaluate a spec value: numbers pass through (made exact), strings are
    parsed as expressions, lists are evaluated element-wise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return to_exact(value)
    if isinstance(value, str):
        expr = _CACHE.get(value)
        if expr is None:
            try:
                expr = Expression(value)
            except ComemError as exc:
                raise ComemError(f"{what}: {exc}") from None
            if len(_CACHE) < 4096:
                _CACHE[value] = expr
        try:
            return expr.evaluate(env)
        except ComemError as exc:
            raise ComemError(f"{what}: {exc}") from None
    if isinstance(value, list):
        return [evaluate(v, env, what) for v in value]
    raise ComemError(f"{what}: expected a number or an expression string, got {type(value).__name__}")
