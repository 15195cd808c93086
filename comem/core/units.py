"""Units, human-readable numbers and the small parsers for user text
(budgets, ranges, lists).  Nothing here evaluates user text: every parser is
a hand-written scanner with clear errors."""
from __future__ import annotations

import re
from fractions import Fraction

from comem.errors import ComemError

DTYPES = {"fp32": 4, "float32": 4, "fp16": 2, "float16": 2, "half": 2, "bf16": 2, "bfloat16": 2, "int8": 1,
          "fp64": 8, "float64": 8}
CANONICAL_DTYPE = {"float32": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16", "float64": "fp64"}

MAX_CLIP = 100_000
MAX_SIZE = 100_000
MAX_BATCH = 1_000_000


def dtype_bytes(name: str) -> tuple[str, int]:
    key = ("fp32" if name is None else str(name)).strip().lower()
    if key not in DTYPES:
        from comem.errors import suggest

        raise ComemError(f"unknown dtype {name!r}{suggest(key, DTYPES)}; choose one of: fp32, fp16, bf16, int8, fp64")
    return CANONICAL_DTYPE.get(key, key), DTYPES[key]


def check_int(value, what: str, lo: int = 1, hi: int | None = None) -> int:
    """A positive whole number from user input (int, or text like '64')."""
    if isinstance(value, bool):
        raise ComemError(f"{what} must be a whole number, got {value!r}")
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ComemError(f"{what} must be a whole number, got {value!r}")
        value = int(text)
    elif isinstance(value, float):
        if not value.is_integer():
            raise ComemError(f"{what} must be a whole number, got {value!r}")
        value = int(value)
    elif isinstance(value, Fraction):
        if value.denominator != 1:
            raise ComemError(f"{what} must be a whole number, got {value}")
        value = int(value)
    elif not isinstance(value, int):
        raise ComemError(f"{what} must be a whole number, got {type(value).__name__}")
    if value < lo:
        raise ComemError(f"{what} must be at least {lo}, got {value}")
    if hi is not None and value > hi:
        raise ComemError(f"{what} = {value} is absurdly large (limit {hi:,})")
    return value


def grouped(n) -> str:
    """Exact integer with thousands separators; rationals as a decimal."""
    if isinstance(n, Fraction):
        if n.denominator == 1:
            return f"{int(n):,}"
        return f"{float(n):,.1f}"
    if isinstance(n, int):
        return f"{n:,}"
    if isinstance(n, float):
        return f"{n:,.1f}"
    return str(n)


def human_bytes(n) -> str:
    n = int(n)
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{n:,} B"


def human_count(n, unit="") -> str:
    n = float(n)
    for suffix, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:,.2f} {suffix}{unit}"
    return f"{n:,.0f} {unit}".rstrip()


_BYTE_UNITS = {"": 1, "b": 1, "kb": 10 ** 3, "mb": 10 ** 6, "gb": 10 ** 9, "tb": 10 ** 12,
               "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_COUNT_UNITS = {"": 1, "k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9, "t": 10 ** 12}


def _parse_number_with_unit(text: str, units: dict, what: str, example: str):
    if not isinstance(text, str):
        text = str(text)
    t = text.strip().replace("_", "").replace(",", "")
    m = re.fullmatch(r"([+-]?\d+(?:\.\d+)?)\s*([a-zA-Z]*)", t)
    if not m:
        raise ComemError(f"{what} {text!r} is not a number with an optional unit (e.g. {example})")
    num, unit = m.groups()
    key = unit.lower()
    for suffix in ("macs", "mac", "flops", "flop", "floats", "float"):
        if key.endswith(suffix) and key != suffix and key[: -len(suffix)] in units:
            key = key[: -len(suffix)]
            break
        if key == suffix:
            key = ""
            break
    if key not in units:
        raise ComemError(f"{what} {text!r}: unknown unit {unit!r}; use one of "
                         f"{', '.join(u for u in units if u) or 'none'}")
    value = Fraction(num) * units[key]
    if value <= 0:
        raise ComemError(f"{what} {text!r} must be positive")
    if value < 1:
        raise ComemError(f"{what} {text!r} is less than one; give a whole number of at least 1 (or a unit: 8MiB, 1G)")
    if value.denominator != 1:
        value = Fraction(int(value))  # round down to whole units
    return int(value)


def parse_bytes(text) -> int:
    """'8MiB' -> 8388608; '1.5GB' -> 1500000000; '4096' -> 4096 (bytes)."""
    v = _parse_number_with_unit(text, _BYTE_UNITS, "memory budget", "8MiB, 512KB, 1.5GiB")
    if v <= 0:
        raise ComemError(f"memory budget {text!r} must be positive")
    return v


def parse_count(text) -> int:
    """'1G' -> 10**9; '325M' -> 325000000; '2.5GMACs' -> 2500000000."""
    v = _parse_number_with_unit(text, _COUNT_UNITS, "ops budget", "1G, 325M, 5000000")
    if v <= 0:
        raise ComemError(f"ops budget {text!r} must be positive")
    return v


MAX_POINTS = 50_000_000


def parse_range(text, what: str, lo: int = 1, hi: int | None = None) -> list[int]:
    """'4..64' / '4..64:4' / '160,224,312' / '16' -> list of ints."""
    if isinstance(text, int):
        return [check_int(text, what, lo, hi)]
    if not isinstance(text, str) or not text.strip():
        raise ComemError(f"{what} range is empty; write e.g. 4..64, 4..64:4 or 160,224,312")
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ComemError(f"{what} {text!r} has an empty item; write e.g. 160,224,312")
        m = re.fullmatch(r"([+-]?\d+)\s*\.\.\s*([+-]?\d+)(?:\s*:\s*([+-]?\d+))?", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            step = int(m.group(3)) if m.group(3) else 1
            if step <= 0:
                raise ComemError(f"{what} range {part!r}: the step must be positive")
            if b < a:
                raise ComemError(f"{what} range {part!r} is empty: the end is below the start")
            check_int(a, what, lo, hi)
            check_int(b, what, lo, hi)
            if (b - a) // step + 1 > MAX_POINTS:
                raise ComemError(f"{what} range {part!r} has more than {MAX_POINTS:,} values")
            out.extend(range(a, b + 1, step))
        elif re.fullmatch(r"[+-]?\d+", part):
            out.append(check_int(part, what, lo, hi))
        else:
            raise ComemError(f"{what} {part!r} is not a number or a range; write e.g. 4..64, 4..64:4 or 160,224,312")
    return out


_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,2})?"


def parse_values(text, what: str, limit: int = MAX_POINTS) -> list:
    """Exact values of a spec parameter: '2.25', '1,2,2.5', '1..3:0.25'
    (decimals are exact fractions: 0.1 is 1/10; a range's step defaults to
    1 and its end is included when the steps reach it exactly)."""
    from fractions import Fraction

    if not isinstance(text, str) or not text.strip():
        raise ComemError(f"{what}: no values; write e.g. 2.25, 1,2,3 or 1..3:0.25")
    out: list = []
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(rf"({_NUMBER})\s*\.\.\s*({_NUMBER})(?:\s*:\s*({_NUMBER}))?", part)
        if m:
            a, b = Fraction(m.group(1)), Fraction(m.group(2))
            step = Fraction(m.group(3)) if m.group(3) else Fraction(1)
            if step <= 0:
                raise ComemError(f"{what} range {part!r}: the step must be positive")
            if b < a:
                raise ComemError(f"{what} range {part!r} is empty: the end is below the start")
            n = int((b - a) // step) + 1
            if n + len(out) > limit:
                raise ComemError(f"{what} has more than {limit:,} values")
            out.extend(a + i * step for i in range(n))
        elif re.fullmatch(_NUMBER, part):
            out.append(Fraction(part))
        else:
            raise ComemError(f"{what}: {part!r} is not a number or a range; write e.g. 2.25, 1,2,3 or 1..3:0.25")
    return [int(v) if v.denominator == 1 else v for v in out]


def parse_sizes(text, hi: int | None = None) -> list:
    """Frame sizes for a sweep: ranges and lists of numbers (square, or the
    joints of a 2D model) and ``HxW`` items: ``160..320:32,224x398``."""
    out: list = []
    for part in str(text).split(","):
        item = part.strip().lower()
        if "x" in item and ".." not in item:
            h, _, w = item.partition("x")
            out.append((check_int(h, "height (pixels)", 1, hi), check_int(w, "width (pixels)", 1, hi)))
        else:
            out.extend(parse_range(part, "size", 1, hi))
    return out


def frame_text(spec_or_dims, height, width) -> str:
    """``224x224`` (video), ``25 joints`` (2D), ``-`` (1D)."""
    dims = getattr(spec_or_dims, "dims", spec_or_dims)
    return f"{height}x{width}" if dims == 3 else (f"{height} joints" if dims == 2 else "-")
