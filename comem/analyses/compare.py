"""``comem compare``: models or settings side by side, with ratios.

Items are ``MODEL`` or ``MODEL:key=value,key=value`` with keys ``clip``,
``size``, ``batch``, ``dtype``, ``profile``, ``convention`` (``count``, its
0.1 name), ``knob.NAME`` and ``set.PARAM`` (parsed here, never evaluated).  Shared options apply to every
item unless the item overrides them.
"""
from __future__ import annotations

from fractions import Fraction

from comem import _compat
from comem.errors import ComemError, suggest
from comem.results.formats import Ratio, Table

ITEM_KEYS = ("clip", "size", "batch", "dtype", "profile", "convention")


def parse_item(text: str, defaults: dict) -> tuple[str, dict]:
    if not isinstance(text, str) or not text.strip():
        raise ComemError("compare needs model names like x3d-m or x3d-m:clip=64,profile=continual-inference")
    model, _, rest = text.partition(":")
    args = {k: v for k, v in defaults.items() if v is not None}
    knobs = dict(defaults.get("knobs") or {})
    params = dict(defaults.get("params") or {})
    if rest:
        seen: set = set()
        for part in rest.split(","):
            if "=" not in part:
                raise ComemError(f"compare item {text!r}: {part!r} is not key=value (keys: {', '.join(ITEM_KEYS)}, "
                                 "knob.NAME, set.PARAM)")
            k, v = (x.strip() for x in part.split("=", 1))
            if k in seen:  # the last would silently win
                raise ComemError(f"compare item {text!r}: {k} is given twice; give it once")
            seen.add(k)
            if k.startswith("knob."):
                knobs[k[5:]] = v
            elif k.startswith("set."):
                params[k[4:]] = v
            elif k in ITEM_KEYS or k in _compat.COMPARE_KEYS:
                args[_compat.COMPARE_KEYS.get(k, k)] = v
            else:
                raise ComemError(f"compare item {text!r}: unknown key {k!r}{suggest(k, ITEM_KEYS)}; keys: "
                                 f"{', '.join(ITEM_KEYS)}, knob.NAME, set.PARAM")
    args["knobs"] = knobs or None
    args["params"] = params or None
    return model.strip(), args


ROWS = [
    ("params", "params"), ("state (floats)", "state_floats"), ("transient (floats)", "transient_floats"),
    ("total (floats)", "total_floats"), ("total (bytes)", "total_bytes"),
    ("regular worst case (floats)", "regular_total_floats"), ("per step (ops)", "ops_per_step"),
    ("per clip (ops)", "ops_per_clip"), ("weights (bytes)", "weights_bytes"), ("delay (frames)", "delay"),
    ("receptive field", "receptive_field"),
]


def compare(items, defaults: dict):
    """``[(label, Report)]`` for items that are model names with settings
    (``x3d-m:clip=64``) or :class:`comem.spec.Spec` objects (e.g. from
    :func:`comem.from_module`), analysed under ``defaults``."""
    from comem.api import analyze
    from comem.spec.schema import Spec

    reports = []
    for it in items:
        if isinstance(it, Spec):
            _, args = parse_item(it.name, defaults)
            reports.append((it.name, analyze(it, **args)))
            continue
        model, args = parse_item(it, defaults)
        reports.append((it, analyze(model, **args)))
    if not reports:
        raise ComemError("compare needs at least one model")
    return reports


def compare_table(reports) -> Table:
    labels = [label for label, _ in reports]
    headers = ["quantity"] + labels + [f"{lab} / {labels[0]}" for lab in labels[1:]]
    rows = []
    for name, key in ROWS:
        vals = [r.summary().get(key) for _, r in reports]
        if all(v is None for v in vals):
            continue
        ratios = []
        for v in vals[1:]:
            base = vals[0]
            ratios.append(Ratio(Fraction(v) / Fraction(base)) if v is not None and base else None)
        rows.append([name] + vals + ratios)
    for label, r in reports:
        if r.continual and r.ops_per_step:
            rows.append([f"{label}: regular clip / continual step (ops)"] + [None] * len(reports) +
                        [None] * (len(reports) - 1))
            rows[-1][1 + labels.index(label)] = Ratio(Fraction(r.ops_per_clip, r.ops_per_step))
            rows.append([f"{label}: regular / continual memory"] + [None] * (2 * len(reports) - 1))
            rows[-1][1 + labels.index(label)] = Ratio(Fraction(r.regular_total_floats, r.total_floats))
    notes = [f"{label}: {r.title}, clip {r.clip} x {r.frame}, profile {r.profile}, {r.dtype}, batch {r.batch}, "
             f"counts {r.convention}" for label, r in reports]
    return Table("Comparison", headers, rows, notes, numeric=tuple(range(1, len(headers))))
