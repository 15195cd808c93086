"""The result of one analysis: totals, per-layer rows, a Table-4-style
breakdown, per-stage groups, errata — and every way to print them.

:class:`Report` is what :func:`comem.analyze` returns and what every CLI
command prints; the CLI never computes anything itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from . import conventions
from .units import grouped, human_bytes, human_count


@dataclass
class BreakdownRow:
    stage: str
    group: str
    formula: str
    value: int
    count: int
    per_instance: int
    erratum: str | None = None
    consistent: int | None = None
    consistent_formula: str | None = None


def _blocks_label(blocks):
    if not blocks:
        return ""
    b = sorted(set(blocks))
    if len(b) == 1:
        return str(b[0])
    if all(y - x == 1 for x, y in zip(b, b[1:])):
        return f"{b[0]}-{b[-1]}"
    return ",".join(map(str, b))


def build_breakdown(rows) -> list[BreakdownRow]:
    """Group state-bearing rows per stage like Appendix A's Table 4:
    identical layers of a stage are merged (``conv_1-3``, ``residual_2-3``)."""
    groups: dict = {}
    order = []
    for r in rows:
        if not r.state:
            continue
        name = r.label if r.label is not None else r.name
        key = (r.stage, name, r.state, r.state_formula[1], r.erratum, r.role)
        if key not in groups:
            groups[key] = {"rows": [], "blocks": [], "count": 0}
            order.append(key)
        g = groups[key]
        g["rows"].append(r)
        g["count"] += r.count
        if r.blocks:
            g["blocks"].extend(r.blocks)
    out = []
    by_stage: dict = {}
    for key in order:
        by_stage.setdefault(key[0], []).append(key)
    for stage, keys in by_stage.items():
        keys.sort(key=lambda k: (0 if k[5] == "delay" else 1, min(groups[k]["blocks"] or [0])))
        for key in keys:
            g = groups[key]
            stage_, name, per, text, erratum, role = key
            blocks = _blocks_label(g["blocks"])
            label = name if not blocks else f"{name}_{blocks}"
            label = label or "-"
            n = g["count"]
            formula = text if n == 1 else f"[{text}]×{n}"
            value = per * n
            consistent = None
            cformula = None
            if erratum:
                r0 = g["rows"][0]
                consistent = r0.state_consistent * n
                cformula = r0.consistent_text if n == 1 else f"[{r0.consistent_text}]×{n}"
            out.append(BreakdownRow(stage_, label, formula, value, n, per, erratum, consistent, cformula))
    return out


@dataclass
class Report:
    """Everything comem knows about one model at one setting.

    Attributes hold exact Python integers (``Fraction`` only for averages
    that are not whole).  Use :meth:`to_dict`, :meth:`to_json`,
    :meth:`render` (``table``/``json``/``csv``/``markdown``/``latex``) or
    display it in Jupyter.
    """

    model: str
    title: str
    clip: int
    size: int
    profile: str
    knobs: dict
    dtype: str
    bytes_per_float: int
    batch: int
    count: str
    continual: bool
    continual_note: str
    params: int
    state_floats: Any
    transient_floats: Any
    regular_total_floats: int
    macs_per_clip: int
    macs_per_step: Any
    macs_per_frame_avg: Any
    delay: Any
    receptive_field: Any
    temporal_padding: Any
    temporal_stride: Any
    rows: list
    breakdown: list
    errata: list
    state_floats_consistent: Any = None
    transient_floats_consistent: Any = None
    transient_candidates: dict = field(default_factory=dict)
    regular_transient_floats: int = 0
    work_clip: dict = field(default_factory=dict)
    work_step: dict = field(default_factory=dict)
    spec_path: str = ""
    references: list = field(default_factory=list)
    params_overrides: dict = field(default_factory=dict)
    transient_at: str | None = None

    # ---- derived totals ---------------------------------------------------
    @property
    def total_floats(self):
        if not self.continual:
            return None
        return self.state_floats + self.transient_floats

    @property
    def total_floats_consistent(self):
        if not self.continual or self.state_floats_consistent is None:
            return None
        return self.state_floats_consistent + (self.transient_floats_consistent or self.transient_floats)

    def bytes(self, floats):
        return None if floats is None else floats * self.bytes_per_float

    def macs(self, convention: str, step: bool = False):
        """The per-clip (regular) or per-step (continual) count under any
        convention, without recomputing the model."""
        conv = conventions.check_convention(convention)
        work = self.work_step if step else self.work_clip
        if step and not self.continual:
            return None
        return conventions.weigh(work, conv) * self.batch

    @property
    def stages(self) -> list[dict]:
        """Per-stage groups: params, state, MACs per step and per clip."""
        out: dict = {}
        for r in self.rows:
            s = out.setdefault(r.stage, {"stage": r.stage, "params": 0, "state_floats": 0, "macs_per_step": 0,
                                         "macs_per_clip": 0, "output": None})
            s["params"] += r.params * r.count
            s["state_floats"] += (r.state or 0) * r.count
            s["macs_per_clip"] += conventions.weigh(r.work_clip, self.count) * r.count
            if self.continual:
                s["macs_per_step"] += conventions.weigh(r.work_step, self.count) * r.count
            s["output"] = [r.y.c, r.y.t, r.y.h, r.y.w]
        for s in out.values():
            s["state_floats"] *= self.batch
            s["macs_per_step"] *= self.batch
            s["macs_per_clip"] *= self.batch
            if not self.continual:
                s["state_floats"] = None
                s["macs_per_step"] = None
        return list(out.values())

    def layer_dicts(self) -> list[dict]:
        """One dict per layer row; a row stands for ``count`` identical layers
        (repeated blocks) and its numbers are totals over them, with the
        per-layer value beside (``*_each``)."""
        out = []
        for r in self.rows:
            n = r.count
            d = {
                "path": r.path, "stage": r.stage, "kind": r.kind, "label": r.label, "blocks": list(r.blocks or []),
                "count": n,
                "input": [r.x.c, r.x.t, r.x.h, r.x.w], "output": [r.y.c, r.y.t, r.y.h, r.y.w],
                "params": r.params * n, "params_each": r.params,
                "macs_per_clip": conventions.weigh(r.work_clip, self.count) * n * self.batch,
            }
            if self.continual:
                d.update({
                    "state_floats": r.state * n * self.batch,
                    "state_floats_each": r.state * self.batch,
                    "state_formula": r.state_formula[1] if r.state else "",
                    "macs_per_step": conventions.weigh(r.work_step, self.count) * n * self.batch,
                    "runs_every": r.rate,
                    "receptive_field": r.rf, "temporal_padding": r.padding, "temporal_stride": r.stride,
                })
                if r.erratum:
                    d["erratum"] = r.erratum
                    d["state_floats_consistent"] = r.state_consistent * n * self.batch
            out.append(d)
        return out

    def macs_step_of(self, row):
        return conventions.weigh(row.work_step, self.count) * row.count * self.batch

    def macs_clip_of(self, row):
        return conventions.weigh(row.work_clip, self.count) * row.count * self.batch

    def top_layers(self, n: int, by: str = "state"):
        """The ``n`` heaviest layer rows by ``state``, ``macs`` or ``params``."""
        key = {
            "state": lambda r: (r.state or 0) * r.count,
            "macs": lambda r: conventions.weigh(r.work_step if self.continual else r.work_clip, self.count) * r.count,
            "params": lambda r: r.params * r.count,
        }[by]
        return sorted(self.rows, key=key, reverse=True)[:n]

    def summary(self) -> dict:
        """The headline numbers (no per-layer rows)."""
        d = {
            "model": self.model, "title": self.title, "clip": self.clip, "size": self.size,
            "profile": self.profile, "knobs": self.knobs, "count": self.count, "dtype": self.dtype,
            "bytes_per_float": self.bytes_per_float, "batch": self.batch, "continual": self.continual,
            "state_floats": self.state_floats, "transient_floats": self.transient_floats,
            "total_floats": self.total_floats, "regular_total_floats": self.regular_total_floats,
            "state_bytes": self.bytes(self.state_floats), "transient_bytes": self.bytes(self.transient_floats),
            "total_bytes": self.bytes(self.total_floats), "regular_total_bytes": self.bytes(self.regular_total_floats),
            "macs_per_step": self.macs_per_step, "macs_per_clip": self.macs_per_clip,
            "macs_per_frame_avg": _jsonable(self.macs_per_frame_avg),
            "params": self.params, "delay": self.delay, "receptive_field": self.receptive_field,
            "temporal_padding": self.temporal_padding, "transient_at": self.transient_at,
        }
        if not self.continual:
            d["continual_note"] = self.continual_note
        if self.errata:
            d["state_floats_consistent"] = self.state_floats_consistent
            d["transient_floats_consistent"] = self.transient_floats_consistent
            d["total_floats_consistent"] = self.total_floats_consistent
        return d

    def to_dict(self) -> dict:
        d = self.summary()
        d["breakdown"] = [b.__dict__ for b in self.breakdown]
        d["errata"] = self.errata
        d["stages"] = self.stages
        d["layers"] = self.layer_dicts()
        d["references"] = self.references
        if self.params_overrides:
            d["params_overrides"] = {k: _jsonable(v) for k, v in self.params_overrides.items()}
        return d

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent, default=_jsonable)

    def render(self, fmt: str = "table", view: str = "breakdown", top: int | None = None) -> str:
        from .formats import render_report

        return render_report(self, fmt, view, top)

    def to_csv(self, view: str = "layers") -> str:
        return self.render("csv", view)

    def to_markdown(self, view: str = "breakdown") -> str:
        return self.render("markdown", view)

    def to_latex(self, view: str = "breakdown") -> str:
        return self.render("latex", view)

    def _repr_markdown_(self):
        return self.render("markdown", "breakdown")

    def _repr_html_(self):
        from .formats import render_html

        return render_html(self)

    def __str__(self):
        return self.render("table")


def _jsonable(v):
    if isinstance(v, Fraction):
        return int(v) if v.denominator == 1 else float(v)
    if hasattr(v, "item"):
        return v.item()
    return str(v) if not isinstance(v, (int, float, str, bool, type(None), list, dict)) else v


def headline_lines(r: Report) -> list[tuple[str, str, str]]:
    """(what, exact value, human) lines of the totals block."""
    b = r.bytes_per_float
    lines = []
    if r.continual:
        def mem(label, floats, note=""):
            lines.append((label, f"{grouped(floats)} floats", f"{human_bytes(floats * b)} ({r.dtype}){note}"))

        mem("state", r.state_floats)
        mem("worst-case transient", r.transient_floats, f"  at {r.transient_at}" if r.transient_at else "")
        mem("total (state + transient)", r.total_floats)
        if r.errata and r.state_floats_consistent is not None and r.total_floats_consistent != r.total_floats:
            mem("total, equation-consistent", r.total_floats_consistent, "  [errata applied above]")
    what = {"stage-output": "largest stage output of the clip", "largest-map": "largest map of the clip"}.get(
        r.knobs.get("transient"), "peak of the clip forward")
    lines.append(("regular model worst case", f"{grouped(r.regular_total_floats)} floats",
                  f"{human_bytes(r.regular_total_floats * b)} ({r.clip - 1} stored input frames + {what})"))
    if r.continual:
        lines.append((f"per frame, continual ({r.count})", grouped(r.macs_per_step), human_count(r.macs_per_step)))
        if r.temporal_stride != 1:
            lines.append((f"per input frame, average ({r.count})", grouped(r.macs_per_frame_avg),
                          f"layers behind a temporal stride of {r.temporal_stride} run every {r.temporal_stride}th frame"))
    lines.append((f"per clip, regular ({r.count})", grouped(r.macs_per_clip), human_count(r.macs_per_clip)))
    if r.continual and r.macs_per_step:
        ratio = Fraction(r.macs_per_clip) / Fraction(r.macs_per_step)
        lines.append(("clip / frame cost", f"{float(ratio):.2f}x", "regular clip vs one continual step"))
    lines.append(("params", grouped(r.params), human_count(r.params)))
    if r.continual:
        lines.append(("delay", f"{r.delay} frames", f"receptive field {r.receptive_field}, temporal padding "
                                                    f"{r.temporal_padding}"))
    return lines
