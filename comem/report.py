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
from .errors import ComemError, suggest
from .formats import Table, cell, check_format, render_tables
from .units import grouped, human_bytes, human_count

#: JSON keys renamed in 0.2; the old names stay beside the new ones for one release
LEGACY_KEYS = {"count": "convention", "macs_per_step": "ops_per_step", "macs_per_clip": "ops_per_clip",
               "macs_per_frame_avg": "ops_per_frame_avg"}
#: per-layer rows: ``count`` was the multiplicity of repeated blocks
LEGACY_LAYER_KEYS = {"count": "multiplicity", "macs_per_step": "ops_per_step", "macs_per_clip": "ops_per_clip"}


@dataclass
class BreakdownRow:
    stage: str
    group: str
    formula: str
    value: int
    multiplicity: int
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
        key = (r.stage, name, r.state, r.state_text[1], r.erratum, r.role)
        if key not in groups:
            groups[key] = {"rows": [], "blocks": [], "count": 0}
            order.append(key)
        g = groups[key]
        g["rows"].append(r)
        g["count"] += r.multiplicity
        if r.blocks:
            g["blocks"].extend(r.blocks)
    out = []
    by_stage: dict = {}
    for key in order:
        by_stage.setdefault(key[0], []).append(key)
    for stage, keys in by_stage.items():
        keys.sort(key=lambda k: (0 if k[5] == "alignment" else 1, min(groups[k]["blocks"] or [0])))
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
    convention: str
    continual: bool
    continual_note: str
    params: int
    state_floats: Any
    transient_floats: Any
    regular_total_floats: int
    ops_per_clip: int
    ops_per_step: Any
    ops_per_frame_avg: Any
    delay: Any
    receptive_field: Any
    temporal_padding: Any
    temporal_stride: Any
    rows: list
    breakdown: list
    errata: list
    state_floats_consistent: Any = None
    transient_floats_consistent: Any = None
    regular_transient_floats: int = 0
    work_clip: dict = field(default_factory=dict)
    work_step: dict = field(default_factory=dict)
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

    def ops(self, convention: str, step: bool = False):
        """The per-clip (regular) or per-step (continual) count under any
        convention, without recomputing the model."""
        conv = conventions.check_convention(convention)
        work = self.work_step if step else self.work_clip
        if step and not self.continual:
            return None
        return conventions.weigh(work, conv) * self.batch

    # -- names of 0.1, kept for one release ---------------------------------
    macs = ops

    @property
    def count(self):
        return self.convention

    @property
    def macs_per_clip(self):
        return self.ops_per_clip

    @property
    def macs_per_step(self):
        return self.ops_per_step

    @property
    def macs_per_frame_avg(self):
        return self.ops_per_frame_avg

    @property
    def stages(self) -> list[dict]:
        """Per-stage groups: params, state, operations per step and per clip."""
        out: dict = {}
        for r in self.rows:
            s = out.setdefault(r.stage, {"stage": r.stage, "params": 0, "state_floats": 0, "ops_per_step": 0,
                                         "ops_per_clip": 0, "output": None})
            s["params"] += r.params * r.multiplicity
            s["state_floats"] += (r.state or 0) * r.multiplicity
            s["ops_per_clip"] += self.ops_clip_of(r)
            if self.continual:
                s["ops_per_step"] += self.ops_step_of(r)
            s["output"] = [r.y.c, r.y.t, r.y.h, r.y.w]
        for s in out.values():
            s["state_floats"] *= self.batch
            if not self.continual:
                s["state_floats"] = None
                s["ops_per_step"] = None
            s["macs_per_step"], s["macs_per_clip"] = s["ops_per_step"], s["ops_per_clip"]  # 0.1 names
        return list(out.values())

    def layer_dicts(self) -> list[dict]:
        """One dict per layer row; a row stands for ``count`` identical layers
        (repeated blocks) and its numbers are totals over them, with the
        per-layer value beside (``*_each``)."""
        out = []
        for r in self.rows:
            n = r.multiplicity
            d = {
                "path": r.path, "stage": r.stage, "kind": r.kind.name, "label": r.label,
                "blocks": list(r.blocks or []), "multiplicity": n,
                "input": [r.x.c, r.x.t, r.x.h, r.x.w], "output": [r.y.c, r.y.t, r.y.h, r.y.w],
                "params": r.params * n, "params_each": r.params,
                "ops_per_clip": self.ops_clip_of(r),
            }
            if self.continual:
                d.update({
                    "state_floats": r.state * n * self.batch,
                    "state_floats_each": r.state * self.batch,
                    "state_formula": r.state_text[1] if r.state else "",
                    "ops_per_step": self.ops_step_of(r),
                    "runs_every": r.rate,
                    "receptive_field": r.rf, "temporal_padding": r.padding, "temporal_stride": r.stride,
                })
                if r.erratum:
                    d["erratum"] = r.erratum
                    d["state_floats_consistent"] = r.state_consistent * n * self.batch
            for old, new in LEGACY_LAYER_KEYS.items():
                if new in d:
                    d[old] = d[new]
            out.append(d)
        return out

    def ops_step_of(self, row):
        return conventions.weigh(row.work_step, self.convention) * row.multiplicity * self.batch

    def ops_clip_of(self, row):
        return conventions.weigh(row.work_clip, self.convention) * row.multiplicity * self.batch

    def top_layers(self, n: int, by: str = "state"):
        """The ``n`` heaviest layer rows by ``state``, ``ops`` or ``params``."""
        keys = {
            "state": lambda r: (r.state or 0) * r.multiplicity,
            "ops": lambda r: self.ops_step_of(r) if self.continual else self.ops_clip_of(r),
            "params": lambda r: r.params * r.multiplicity,
        }
        keys["macs"] = keys["ops"]  # 0.1 name
        if by not in keys:
            raise ComemError(f"top_layers(by={by!r}): choose state, ops or params")
        return sorted(self.rows, key=keys[by], reverse=True)[:n]

    def summary(self) -> dict:
        """The headline numbers (no per-layer rows)."""
        d = {
            "model": self.model, "title": self.title, "clip": self.clip, "size": self.size,
            "profile": self.profile, "knobs": self.knobs, "convention": self.convention, "dtype": self.dtype,
            "bytes_per_float": self.bytes_per_float, "batch": self.batch, "continual": self.continual,
            "state_floats": self.state_floats, "transient_floats": self.transient_floats,
            "total_floats": self.total_floats, "regular_total_floats": self.regular_total_floats,
            "regular_transient_floats": self.regular_transient_floats,
            "state_bytes": self.bytes(self.state_floats), "transient_bytes": self.bytes(self.transient_floats),
            "total_bytes": self.bytes(self.total_floats), "regular_total_bytes": self.bytes(self.regular_total_floats),
            "ops_per_step": self.ops_per_step, "ops_per_clip": self.ops_per_clip,
            "ops_per_frame_avg": _jsonable(self.ops_per_frame_avg),
            "params": self.params, "delay": self.delay, "receptive_field": self.receptive_field,
            "temporal_padding": self.temporal_padding, "transient_at": self.transient_at,
        }
        if not self.continual:
            d["continual_note"] = self.continual_note
        if self.errata:
            d["state_floats_consistent"] = self.state_floats_consistent
            d["transient_floats_consistent"] = self.transient_floats_consistent
            d["total_floats_consistent"] = self.total_floats_consistent
        for old, new in LEGACY_KEYS.items():
            d[old] = d[new]
        return d

    def to_dict(self) -> dict:
        d = self.summary()
        d["breakdown"] = [dict(b.__dict__, count=b.multiplicity) for b in self.breakdown]  # count: 0.1 name
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
        lines.append((f"per frame, continual ({r.convention})", grouped(r.ops_per_step), human_count(r.ops_per_step)))
        if r.temporal_stride != 1:
            lines.append((f"per input frame, average ({r.convention})", grouped(r.ops_per_frame_avg),
                          f"layers behind a temporal stride of {r.temporal_stride} run every {r.temporal_stride}th frame"))
    lines.append((f"per clip, regular ({r.convention})", grouped(r.ops_per_clip), human_count(r.ops_per_clip)))
    if r.continual and r.ops_per_step:
        ratio = Fraction(r.ops_per_clip) / Fraction(r.ops_per_step)
        lines.append(("clip / frame cost", f"{float(ratio):.2f}x", "regular clip vs one continual step"))
    lines.append(("params", grouped(r.params), human_count(r.params)))
    if r.continual:
        lines.append(("delay", f"{r.delay} frames", f"receptive field {r.receptive_field}, temporal padding "
                                                    f"{r.temporal_padding}"))
    return lines


# ---------------------------------------------------------------------------
# views of a report as tables

def report_tables(r, view: str = "breakdown", top: int | None = None) -> list[Table]:
    views = ("breakdown", "layers", "stages", "summary")
    if view not in views:
        raise ComemError(f"unknown view {view!r}{suggest(view, views)}; choose one of: {', '.join(views)}")
    title = (f"{r.title} ({r.model}), clip {r.clip} x {r.size}x{r.size}, profile {r.profile}, {r.dtype}"
             + (f", batch {r.batch}" if r.batch != 1 else "") + f", counts: {r.convention}")
    tables = []
    if top:
        rows = []
        by = "state" if r.continual else "ops"
        for row in r.top_layers(top, by):
            rows.append([row.path, row.kind.name, row.multiplicity,
                         (row.state or 0) * row.multiplicity * r.batch if r.continual else None,
                         r.ops_step_of(row) if r.continual else None, r.ops_clip_of(row)])
        tables.append(Table(f"Top {top} layers by {'state' if r.continual else 'MACs'} — {title}",
                            ["layer", "kind", "count", "state (floats)", f"per step ({r.convention})",
                             f"per clip ({r.convention})"], rows, numeric=(2, 3, 4, 5)))
    elif view == "breakdown" and r.continual:
        rows = []
        notes = []
        for b in r.breakdown:
            mark = ""
            if b.erratum:
                mark = f"⚠ {b.erratum}: Eq. (5) gives {b.consistent_formula} = {grouped(b.consistent)}"
            rows.append([b.stage, b.group, b.formula + " =", b.value * r.batch, mark])
        rows.append(["Total", "", "", r.state_floats, ""])
        tables.append(Table(f"State memory by layer — {title}", ["Stage", "Layer", "Mem. (floats)", "", "note"],
                            rows, notes, numeric=(3,)))
    elif view == "layers":
        rows = []
        for row in r.rows:
            rows.append([row.path, row.kind.name, row.multiplicity,
                         "x".join(map(str, (row.y.c, row.y.t, row.y.h, row.y.w))), row.params * row.multiplicity,
                         (row.state or 0) * row.multiplicity * r.batch if r.continual else None,
                         r.ops_step_of(row) if r.continual else None, r.ops_clip_of(row)])
        tables.append(Table(f"Layers — {title}", ["layer", "kind", "count", "output CxTxHxW", "params",
                                                 "state (floats)", f"per step ({r.convention})",
                                                 f"per clip ({r.convention})"],
                            rows, numeric=(2, 4, 5, 6, 7)))
    elif view == "stages" or (view == "breakdown" and not r.continual):
        rows = [[s["stage"], "x".join(map(str, s["output"])), s["params"], s["state_floats"], s["ops_per_step"],
                 s["ops_per_clip"]] for s in r.stages]
        tables.append(Table(f"Stages — {title}", ["stage", "output CxTxHxW", "params", "state (floats)",
                                                 f"per step ({r.convention})", f"per clip ({r.convention})"], rows,
                            numeric=(2, 3, 4, 5)))
    lines = headline_lines(r)
    notes = []
    for e in r.errata:
        if "printed" in e:
            notes.append(f"⚠ {e['id']} ({e['source']}): {e['note']} Printed {grouped(e['printed'])}, "
                         f"consistent {grouped(e['consistent'])}.")
        else:
            notes.append(f"⚠ {e['id']} ({e['source']}): {e['note']}")
    if not r.continual:
        notes.append(f"no continual form: {r.continual_note}")
    tables.append(Table("Totals", ["quantity", "exact", "human"], [list(x) for x in lines], notes, numeric=(1,)))
    return tables


def render_report(r, fmt: str, view: str = "breakdown", top: int | None = None) -> str:
    fmt = check_format(fmt)
    if fmt == "json":
        return r.to_json()
    if fmt == "csv" and view == "breakdown" and not top:
        import csv
        import io

        # one flat table: breakdown rows, then totals, machine-readable
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["section", "stage", "layer", "formula", "value", "note"])
        for b in r.breakdown:
            w.writerow(["state", b.stage, b.group, b.formula, b.value * r.batch, b.erratum or ""])
        for k, v in r.summary().items():
            if isinstance(v, dict):
                continue
            w.writerow(["total", "", k, "", "" if v is None else v, ""])
        return buf.getvalue().rstrip("\n")
    tables = report_tables(r, view, top)
    if fmt == "csv":
        tables = tables[:1]  # one flat, machine-readable table; totals are in the breakdown CSV and JSON
    return render_tables(tables, fmt)


def render_html(r) -> str:
    """Jupyter display: the breakdown and totals as HTML tables."""
    import html

    parts = [f"<div><b>{html.escape(r.title)}</b> — clip {r.clip}, {r.size}×{r.size}, profile "
             f"<code>{html.escape(r.profile)}</code>, {r.dtype}, counts: {r.convention}</div>"]
    for t in report_tables(r, "breakdown"):
        parts.append(f"<p><b>{html.escape(t.title)}</b></p><table><thead><tr>"
                     + "".join(f"<th>{html.escape(str(h))}</th>" for h in t.headers) + "</tr></thead><tbody>")
        for row in t.rows:
            parts.append("<tr>" + "".join(
                f"<td style='text-align:{'right' if i in t.numeric else 'left'}'>{html.escape(cell(c, True))}</td>"
                for i, c in enumerate(row)) + "</tr>")
        parts.append("</tbody></table>")
        for n in t.notes:
            parts.append(f"<p style='font-size:smaller'>{html.escape(n)}</p>")
    return "".join(parts)

