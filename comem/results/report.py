"""The result of one analysis: totals, per-layer rows, a Table-4-style
breakdown, per-stage groups, errata — and every way to print them.

:class:`Report` is what :func:`comem.analyze` returns and what every CLI
command prints; the CLI never computes anything itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from comem.accounting import conventions
from comem import _compat
from comem.errors import ComemError, suggest
from comem.results.formats import Percent, Table, cell, check_format, json_default, json_value, render_tables
from comem.core.units import grouped, human_bytes, human_count

#: JSON keys renamed in 0.2; the old names stay beside the new ones for one release


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
class Report(_compat.ReportNames):
    """Everything comem knows about one model at one setting.

    Attributes hold exact Python integers (``Fraction`` only for averages
    that are not whole).  Use :meth:`to_dict`, :meth:`to_json`,
    :meth:`render` (``table``/``json``/``csv``/``markdown``/``latex``) or
    display it in Jupyter.
    """

    model: str
    title: str
    clip: int
    size: int  # the frame height (joints of a 2D model, 1 for 1D)
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
    #: state / transient / total under the paper (printed), the paper's
    #: equations and continual-inference (continual models)
    accountings: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    #: the transient rule in force (the knob's, or an erratum's correction)
    transient_rule: str = "stage-output"
    #: how the layers' own allocations are counted (``library`` rule)
    transient_notes: list = field(default_factory=list)
    #: the predicted PyTorch peak (``analyze(runtime="pytorch")``): a comem.model.runtime.RuntimePeak
    runtime: Any = None
    width: int = 0
    dims: int = 3
    #: the layer tree the report walked (for :attr:`state_tensors`)
    graph: Any = field(default=None, repr=False, compare=False)

    @property
    def state_tensors(self):
        """The state manifest: every state tensor of the continual step in the
        profile's order, with owner, role, shape, dtype, bytes and initial value
        (:mod:`comem.results.state_manifest`)."""
        from comem.results.state_manifest import manifest_of

        return manifest_of(self, self.graph)

    @property
    def height(self):
        return self.size

    @property
    def frame(self) -> str:
        from comem.core.units import frame_text

        return frame_text(self.dims, self.size, self.width or self.size)

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

    @property
    def state_bytes(self):
        return self.bytes(self.state_floats)

    @property
    def transient_bytes(self):
        return self.bytes(self.transient_floats)

    @property
    def total_bytes(self):
        return self.bytes(self.total_floats)

    @property
    def regular_total_bytes(self):
        return self.bytes(self.regular_total_floats)

    @property
    def weights(self) -> dict:
        """Bytes the device holds for the model's modules (once, shared by
        every stream), by how they hold them — each layer kind's ``held``
        counts: ``trainable`` (the params, what ptflops and the papers
        count), ``frozen`` (parameters not trained: a GCN's fixed
        adjacency), ``buffers`` (batch norms' running statistics; int64
        counters at 8 bytes) — and their ``total``."""
        b = self.bytes_per_float
        frozen = buffers = int64 = 0
        for row in self.rows:
            h = row.kind.held(row.cfg, row.x)
            frozen = frozen + h["frozen"] * row.multiplicity
            buffers = buffers + h["buffers"] * row.multiplicity
            int64 = int64 + h["int64"] * row.multiplicity
        out = {"trainable": self.params * b, "frozen": frozen * b, "buffers": buffers * b + int64 * 8}
        out["total"] = out["trainable"] + out["frozen"] + out["buffers"]
        return out

    @property
    def params_bytes(self):
        """The trainable parameters' bytes: params × bytes per value."""
        return self.params * self.bytes_per_float

    @property
    def weights_bytes(self):
        """What the device holds for the modules (shared by every stream):
        trainable and frozen parameters and buffers (:attr:`weights`)."""
        return self.weights["total"]

    @property
    def total_bytes_incl_weights(self):
        return None if self.total_bytes is None else self.total_bytes + self.weights_bytes

    @property
    def regular_total_bytes_incl_weights(self):
        return self.regular_total_bytes + self.weights_bytes

    def headline(self) -> dict:
        """The headline quantities (:func:`comem.model.headline.headline`'s
        names, for the report's batch) with the byte twin of each float count."""
        from comem.model.headline import bytes_columns

        values = {"regular_total_floats": self.regular_total_floats,
                  "regular_transient_floats": self.regular_transient_floats, "ops_per_clip": self.ops_per_clip,
                  "params": self.params}
        if self.continual:
            values.update(state_floats=self.state_floats, transient_floats=self.transient_floats,
                          total_floats=self.total_floats, ops_per_step=self.ops_per_step,
                          ops_per_frame_avg=self.ops_per_frame_avg, delay=self.delay,
                          receptive_field=self.receptive_field)
        return bytes_columns(values, self.bytes_per_float)

    def ops(self, convention: str, step: bool = False):
        """The per-clip (regular) or per-step (continual) count under any
        convention, without recomputing the model."""
        conv = conventions.check_convention(convention)
        work = self.work_step if step else self.work_clip
        if step and not self.continual:
            return None
        return conventions.weigh(work, conv) * self.batch

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
            _compat.add_keys(s, _compat.STAGE_KEYS)
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
            _compat.add_keys(d, _compat.LAYER_KEYS)
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
        by = _compat.TOP_BY.get(by, by)
        if by not in keys:
            raise ComemError(f"top_layers(by={by!r}): choose state, ops or params")
        return sorted(self.rows, key=keys[by], reverse=True)[:n]

    def summary(self) -> dict:
        """The headline numbers (no per-layer rows)."""
        d = {
            "model": self.model, "title": self.title, "clip": self.clip, "size": self.size,
            "height": self.size, "width": self.width or self.size, "dims": self.dims,
            "profile": self.profile, "knobs": self.knobs, "convention": self.convention, "dtype": self.dtype,
            "bytes_per_float": self.bytes_per_float, "batch": self.batch, "continual": self.continual,
            "state_floats": self.state_floats, "transient_floats": self.transient_floats,
            "total_floats": self.total_floats, "regular_total_floats": self.regular_total_floats,
            "regular_transient_floats": self.regular_transient_floats,
            "state_bytes": self.state_bytes, "transient_bytes": self.transient_bytes,
            "total_bytes": self.total_bytes, "regular_total_bytes": self.regular_total_bytes,
            "weights_bytes": self.weights_bytes, "weights": self.weights,
            "total_bytes_incl_weights": self.total_bytes_incl_weights,
            "regular_total_bytes_incl_weights": self.regular_total_bytes_incl_weights,
            "ops_per_step": self.ops_per_step, "ops_per_clip": self.ops_per_clip,
            "ops_per_frame_avg": json_value(self.ops_per_frame_avg),
            "params": self.params, "delay": self.delay, "receptive_field": self.receptive_field,
            "temporal_padding": self.temporal_padding, "transient_at": self.transient_at,
        }
        if not self.continual:
            d["continual_note"] = self.continual_note
        if self.errata:
            d["state_floats_consistent"] = self.state_floats_consistent
            d["transient_floats_consistent"] = self.transient_floats_consistent
            d["total_floats_consistent"] = self.total_floats_consistent
        if self.continual:
            d["accountings"] = self.accountings
        if self.notes:
            d["notes"] = self.notes
        if self.runtime is not None:
            rt = self.runtime.as_dict()
            d["peak_allocated_bytes"] = {"regular": rt["regular"], "continual": rt["continual"]}
            d["peak_allocated_terms"] = rt["terms"]
            d["runtime"] = {"name": "pytorch", "device": rt["device"]}
        return _compat.add_keys(d, _compat.SUMMARY_KEYS)

    def to_dict(self) -> dict:
        d = self.summary()
        d["breakdown"] = [_compat.add_keys(dict(b.__dict__), _compat.BREAKDOWN_KEYS) for b in self.breakdown]
        d["errata"] = self.errata
        d["stages"] = self.stages
        d["layers"] = self.layer_dicts()
        d["references"] = self.references
        if self.params_overrides:
            d["params_overrides"] = {k: json_value(v) for k, v in self.params_overrides.items()}
        return d

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent, default=json_default)

    def render(self, fmt: str = "table", view: str = "breakdown", top: int | None = None,
               depth: int | None = None) -> str:
        return render_report(self, fmt, view, top, depth)

    def to_csv(self, view: str = "breakdown") -> str:
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

    def __repr__(self):
        if self.continual:
            what = (f"state_floats={self.state_floats}, transient_floats={self.transient_floats}, "
                    f"ops_per_step={self.ops_per_step}")
        else:
            what = f"regular_total_floats={self.regular_total_floats}"
        return (f"<Report {self.model} clip={self.clip} frame={self.frame} profile={self.profile!r} {self.dtype} "
                f"batch={self.batch}: {what}, ops_per_clip={self.ops_per_clip}, params={self.params} "
                f"({self.convention}); print() it or .to_dict() for the rest>")


def _ordinal(n) -> str:
    n = int(n)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


_RULE_TEXT = {"stage-output": "largest stage output", "largest-map": "largest map of any layer",
              "liveness": "peak of live maps", "library": "peak of live maps and library temporaries"}


def weights_line(r: Report) -> tuple[str, str, str]:
    """The weights the device holds, split: trainable (the params), frozen, buffers."""
    w = r.weights
    return ("weights", f"{grouped(w['total'])} bytes",
            f"{human_bytes(w['total'])}: trainable {human_bytes(w['trainable'])}, frozen {human_bytes(w['frozen'])}, "
            f"buffers {human_bytes(w['buffers'])}")


def headline_lines(r: Report) -> list[tuple[str, str, str]]:
    """(what, exact value, human) lines of the totals block."""
    b = r.bytes_per_float
    lines = []

    def mem(label, floats, note=""):
        lines.append((label, f"{grouped(floats)} floats", f"{human_bytes(floats * b)} ({r.dtype}){note}"))

    if r.continual:
        mem("state", r.state_floats)
        where = f"  at {r.transient_at}" if r.transient_at else ""
        for note in r.transient_notes:
            where += f"; {note}"
        mem("worst-case transient", r.transient_floats, where)
        mem("total (state + transient)", r.total_floats)
        if r.errata and r.state_floats_consistent is not None and r.total_floats_consistent != r.total_floats:
            mem("total, equation-consistent", r.total_floats_consistent, "  [errata applied above]")
        lines.append(weights_line(r))
        lines.append(("total incl. weights", f"{grouped(r.total_bytes_incl_weights)} bytes",
                      f"{human_bytes(r.total_bytes_incl_weights)}"))
    what = _RULE_TEXT.get(r.transient_rule, r.transient_rule)
    mem("regular model worst case", r.regular_total_floats, f"  ({r.clip - 1} stored input frames + {what} "
                                                            "of the clip)")
    if not r.continual:
        lines.append(weights_line(r))
    lines.append(("regular incl. weights", f"{grouped(r.regular_total_bytes_incl_weights)} bytes",
                  f"{human_bytes(r.regular_total_bytes_incl_weights)}"))
    if r.continual:
        lines.append((f"per frame, continual ({r.convention})", grouped(r.ops_per_step), human_count(r.ops_per_step)))
        if r.temporal_stride != 1:
            lines.append((f"per input frame, average ({r.convention})", grouped(r.ops_per_frame_avg),
                          f"layers behind a temporal stride of {r.temporal_stride} run every "
                          f"{_ordinal(r.temporal_stride)} frame"))
    lines.append((f"per clip, regular ({r.convention})", grouped(r.ops_per_clip), human_count(r.ops_per_clip)))
    if r.continual and r.ops_per_step:
        ratio = Fraction(r.ops_per_clip) / Fraction(r.ops_per_step)
        lines.append(("clip / frame cost", f"{float(ratio):.2f}×", "regular clip vs one continual step"))
    lines.append(("params", grouped(r.params), human_count(r.params)))
    if r.continual:
        lines.append(("delay", f"{r.delay} frames", f"receptive field {r.receptive_field}, temporal padding "
                                                    f"{r.temporal_padding}"))
    return lines


def accountings_table(r: Report) -> Table:
    """The three accountings side by side."""
    rows = []
    for key, a in r.accountings.items():
        rows.append([key, a["state_floats"], a["transient_floats"], a["total_floats"],
                     human_bytes(a["total_bytes"]), a["what"]])
    return Table(f"Accountings ({r.dtype}{f', batch {r.batch}' if r.batch != 1 else ''}; floats)",
                 ["accounting", "state", "transient", "total", "total bytes", "what"], rows, numeric=(1, 2, 3))


def _title(r) -> str:
    return (f"{r.title} ({r.model}), clip {r.clip} x {r.frame}, profile {r.profile}, {r.dtype}"
            + (f", batch {r.batch}" if r.batch != 1 else "") + f", counts: {r.convention}")


VIEWS = ("breakdown", "layers", "stages", "summary")


def check_view(view: str) -> str:
    if view not in VIEWS:
        raise ComemError(f"unknown view {view!r}{suggest(view, VIEWS)}; choose one of: {', '.join(VIEWS)}")
    return view


def _share(part, total):
    if total is None or part is None or not total:
        return None
    return Percent(Fraction(part) * 100 / Fraction(total))


def layer_rows(r: Report, depth: int | None = None) -> list[dict]:
    """Per-layer numbers (totals over ``multiplicity`` copies), or with
    ``depth`` summed per path prefix of that many parts (``res2.block1`` at
    depth 2), in order of first appearance."""
    groups: dict = {}
    for row in r.rows:
        key = ".".join(row.path.split(".")[:depth]) if depth else row.path
        g = groups.get(key)
        if g is None:
            single = not depth or key == row.path
            g = groups[key] = {"layer": key, "kind": row.kind.name if single else "group",
                               "multiplicity": row.multiplicity if single else None,
                               "output": [row.y.c, row.y.t, row.y.h, row.y.w],
                               "params": 0, "state_floats": 0 if r.continual else None,
                               "ops_per_step": 0 if r.continual else None, "ops_per_clip": 0}
        g["output"] = [row.y.c, row.y.t, row.y.h, row.y.w]
        g["params"] += row.params * row.multiplicity
        g["ops_per_clip"] += r.ops_clip_of(row)
        if r.continual:
            g["state_floats"] += (row.state or 0) * row.multiplicity * r.batch
            g["ops_per_step"] += r.ops_step_of(row)
    for g in groups.values():
        g["state_share"] = _share(g["state_floats"], r.state_floats)
        g["ops_share"] = _share(g["ops_per_step"] if r.continual else g["ops_per_clip"],
                                r.ops_per_step if r.continual else r.ops_per_clip)
    return list(groups.values())


def report_tables(r, view: str = "breakdown", top: int | None = None, depth: int | None = None) -> list[Table]:
    check_view(view)
    title = _title(r)
    conv = r.convention
    tables = []
    if top or view == "layers":
        rows = layer_rows(r, depth)
        if top:
            key = "state_floats" if r.continual else "ops_per_clip"
            rows = sorted(rows, key=lambda g: g[key] or 0, reverse=True)[:top]
        ops_share = "% step" if r.continual else "% clip"
        cells = [[g["layer"], g["kind"], g["multiplicity"], "x".join(map(str, g["output"])), g["params"],
                  g["state_floats"], g["state_share"], g["ops_per_step"], g["ops_per_clip"], g["ops_share"]]
                 for g in rows]
        what = (f"Top {top} layers by {'state' if r.continual else 'operations per clip'}" if top else "Layers")
        if depth:
            what += f" (depth {depth})"
        tables.append(Table(f"{what} — {title}", ["layer", "kind", "count", "output CxTxHxW", "params",
                                                 "state (floats)", "% state", f"per step ({conv})",
                                                 f"per clip ({conv})", ops_share], cells,
                            numeric=(2, 4, 5, 6, 7, 8, 9)))
    elif view == "breakdown" and r.continual:
        rows = []
        suffix = f"×{r.batch}" if r.batch != 1 else ""
        # each erratum names the equation it departs from ("Eq. (5): ..." in the spec)
        equations = {e["id"]: (e.get("equation") or "").split(":")[0].strip() or "the equations"
                     for e in r.errata}
        for b in r.breakdown:
            mark = ""
            if b.erratum:
                mark = f"⚠ {b.erratum}: {equations.get(b.erratum, 'the equations')} gives {b.consistent_formula} = " \
                       f"{grouped(b.consistent)}"
            formula = (f"[{b.formula}]{suffix}" if suffix and b.multiplicity == 1 else b.formula + suffix)
            rows.append([b.stage, b.group, formula + " =", b.value * r.batch, _share(b.value * r.batch,
                                                                                      r.state_floats), mark])
        rows.append(["Total", "", "", r.state_floats, None, ""])
        tables.append(Table(f"State memory by layer — {title}", ["Stage", "Layer", "Mem. (floats)", "", "%",
                                                                "note"],
                            rows, numeric=(3, 4), wrap={2: 44, 5: 60},
                            keys=["stage", "layer", "formula", "floats", "share", "note"]))
    elif view == "stages" or (view == "breakdown" and not r.continual):
        rows = [[s["stage"], "x".join(map(str, s["output"])), s["params"], s["state_floats"],
                 _share(s["state_floats"], r.state_floats), s["ops_per_step"], s["ops_per_clip"]] for s in r.stages]
        tables.append(Table(f"Stages — {title}", ["stage", "output CxTxHxW", "params", "state (floats)", "% state",
                                                 f"per step ({conv})", f"per clip ({conv})"], rows,
                            numeric=(2, 3, 4, 5, 6)))
    notes = []
    for e in r.errata:
        if "printed" in e:
            notes.append(f"⚠ {e['id']} ({e['source']}): {e['note']} Printed {grouped(e['printed'])}, "
                         f"consistent {grouped(e['consistent'])}.")
        else:
            notes.append(f"⚠ {e['id']} ({e['source']}): {e['note']}")
    notes.extend(f"⚠ {n}" for n in r.notes)
    if not r.continual:
        notes.append(f"no continual form: {r.continual_note}")
    tables.append(Table("Totals", ["quantity", "exact", "human"], [list(x) for x in headline_lines(r)], notes,
                        numeric=(1,), wrap={2: 70}))
    if r.continual and r.accountings:
        tables.append(accountings_table(r))
    if r.runtime is not None:
        tables.append(runtime_table(r.runtime))
    return tables


def runtime_table(rt) -> Table:
    """The predicted PyTorch peak, term by term (bytes and MiB)."""
    cols = [("regular (one clip)", rt.regular)] + ([("continual (one step)", rt.continual)]
                                                    if rt.continual is not None else [])
    rows = []
    for term in ("weights", "input", "state", "activations", "rounding", "total"):
        vals = [getattr(t, term) if term != "total" else t.total for _, t in cols]
        rows.append([term] + [grouped(v) for v in vals] + [human_bytes(v) for v in vals])
    notes = [f"{rt.device}: " + ("every block rounded up to 512 bytes (the CUDA caching allocator)"
                                 if rt.device == "cuda" else "requests counted exactly (the CPU allocator)"),
             "not modelled: convolution workspaces (cuDNN; slow_conv3d's columns on one CPU thread), the CUDA "
             "context, cached-but-free blocks (see comem.model.runtime)"]
    heads = ["term"] + [f"{label} (bytes)" for label, _ in cols] + [label for label, _ in cols]
    return Table(f"Peak allocated by PyTorch (eager, {rt.dtype}, batch {rt.batch}, clip {rt.clip})", heads, rows,
                 notes, numeric=tuple(range(1, 1 + len(cols))))


def report_data(r, view: str = "breakdown", top: int | None = None, depth: int | None = None) -> dict:
    """The JSON of one view: the whole report for the default view, else the
    headline numbers plus the rows the view shows."""
    check_view(view)
    if view == "breakdown" and not top and not depth:
        return r.to_dict()
    d = r.summary()
    if top or view == "layers":
        rows = layer_rows(r, depth)
        if top:
            key = "state_floats" if r.continual else "ops_per_clip"
            rows = sorted(rows, key=lambda g: g[key] or 0, reverse=True)[:top]
        d["top_layers" if top else "layers"] = [{k: json_value(v) for k, v in g.items()} for g in rows]
    elif view == "stages":
        d["stages"] = r.stages
    elif view == "breakdown":
        d["breakdown"] = [dict(b.__dict__) for b in r.breakdown]
    return d


def quantity_unit(r, key: str) -> str:
    """The unit of a headline quantity of ``r`` (``""`` for names and flags)."""
    base = key.split(".")[-1]
    if base.endswith("_floats") or base.endswith("_floats_consistent"):
        return "floats"
    if "bytes" in base:
        return "bytes"
    if base.startswith("ops_") or base.startswith("macs_"):
        return f"operations ({r.convention})"
    if base == "params":
        return "parameters"
    if base in ("clip", "delay", "receptive_field", "temporal_padding"):
        return "frames"
    if base in ("size", "height", "width"):
        return {3: "pixels", 2: "joints" if base != "width" else "bodies", 1: ""}.get(r.dims, "")
    if base == "batch":
        return "streams"
    return ""


def machine_totals(r) -> list[tuple]:
    """(section, key, value, unit) of every headline number of ``r``: the
    summary's scalars (``total``), its knobs (``knob``) and each accounting
    (``accounting``) — plain values with the unit in its own column."""
    out = []
    for k, v in r.summary().items():
        if isinstance(v, dict):
            if k == "knobs":
                out.extend(("knob", name, value, "") for name, value in v.items())
            continue
        if isinstance(v, list):
            v = "; ".join(map(str, v))
        out.append(("total", k, v, quantity_unit(r, k) if isinstance(v, (int, float, Fraction))
                    and not isinstance(v, bool) else ""))
    for key, a in r.accountings.items():
        for q in ("state_floats", "transient_floats", "total_floats", "total_bytes"):
            out.append(("accounting", f"{key}.{q}", a[q], quantity_unit(r, q)))
    return out


def render_report(r, fmt: str, view: str = "breakdown", top: int | None = None, depth: int | None = None) -> str:
    """One report in one format; every format shows the same view."""
    fmt = check_format(fmt)
    if fmt == "json":
        import json

        return json.dumps(report_data(r, view, top, depth), indent=2, default=json_default)
    if fmt == "csv" and view == "breakdown" and not top and r.continual:
        import csv
        import io

        # one flat table: breakdown rows, then the totals, machine-readable
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["section", "stage", "layer", "formula", "value", "unit", "note"])
        suffix = f"×{r.batch}" if r.batch != 1 else ""
        for b in r.breakdown:
            formula = f"[{b.formula}]{suffix}" if suffix and b.multiplicity == 1 else b.formula + suffix
            w.writerow(["state", b.stage, b.group, formula, b.value * r.batch, "floats", b.erratum or ""])
        for section, key, value, unit in machine_totals(r):
            w.writerow([section, "", key, "", cell(value, False), unit, ""])
        return buf.getvalue().rstrip("\n")
    if fmt == "csv" and view == "summary" and not top:
        import csv
        import io

        # the headline numbers, one per row: a number and its unit, never a display string
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["quantity", "value", "unit"])
        for section, key, value, unit in machine_totals(r):
            w.writerow([key if section == "total" else f"{section}.{key}", cell(value, False), unit])
        return buf.getvalue().rstrip("\n")
    tables = report_tables(r, view, top, depth)
    if fmt == "csv":
        tables = tables[:1]  # the view's rows; the totals are in the breakdown CSV and the JSON
    return render_tables(tables, fmt)


def render_html(r) -> str:
    """Jupyter display: the breakdown, totals and accountings as HTML tables."""
    import html

    head = (f"<div><b>{html.escape(r.title)}</b> — clip {r.clip}, {html.escape(r.frame)}, profile "
            f"<code>{html.escape(r.profile)}</code>, {r.dtype}, counts: {r.convention}</div>")
    return head + render_tables(report_tables(r, "breakdown"), "html")
