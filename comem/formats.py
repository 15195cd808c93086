"""Rendering: every command's output as table, JSON, CSV, Markdown or LaTeX.

Commands build :class:`Table` objects (a title, headers, rows of cells) and
notes; one renderer per format turns them into text.  Cells are plain
Python values: exact integers are printed with thousands separators in
human formats and as bare digits in CSV/JSON.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ComemError
from .units import grouped, human_bytes

FORMATS = ("table", "json", "csv", "markdown", "latex")


@dataclass
class Table:
    title: str
    headers: list
    rows: list
    notes: list = field(default_factory=list)
    #: columns holding exact numbers (right-aligned, separators in human formats)
    numeric: tuple = ()


def check_format(fmt: str) -> str:
    key = ("table" if fmt is None else str(fmt)).strip().lower()
    aliases = {"md": "markdown", "tex": "latex", "text": "table", "txt": "table"}
    key = aliases.get(key, key)
    if key not in FORMATS:
        from .spec import suggest

        raise ComemError(f"unknown format {fmt!r}{suggest(key, FORMATS)}; choose one of: {', '.join(FORMATS)}")
    return key


def _cell(v, human: bool):
    if v is None:
        return "–" if human else ""
    if isinstance(v, bool):
        return ("yes" if v else "no") if human else ("true" if v else "false")
    if isinstance(v, int):
        return grouped(v) if human else str(v)
    from fractions import Fraction

    if isinstance(v, Fraction):
        return grouped(v) if human else (str(v.numerator) if v.denominator == 1 else f"{float(v):.6g}")
    if isinstance(v, float):
        return f"{v:,.4g}" if human else repr(v)
    return str(v)


def render_tables(tables: list[Table], fmt: str, data: dict | None = None) -> str:
    """Render tables in ``fmt``; JSON prints ``data`` when given."""
    fmt = check_format(fmt)
    if fmt == "json":
        import json

        if data is None:
            data = {t.title or f"table{i}": [dict(zip(t.headers, r)) for r in t.rows] for i, t in enumerate(tables)}
        return json.dumps(data, indent=2, default=_json_default)
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        multi = len(tables) > 1
        for t in tables:
            w.writerow((["table"] if multi else []) + list(t.headers))
            for r in t.rows:
                w.writerow(([t.title] if multi else []) + [_cell(c, False) for c in r])
        return buf.getvalue().rstrip("\n")
    if fmt == "latex":
        return "\n\n".join(_latex(t) for t in tables)
    if fmt == "markdown":
        return "\n\n".join(_markdown(t) for t in tables)
    return "\n\n".join(_plain(t) for t in tables)


def _json_default(v):
    from fractions import Fraction

    if isinstance(v, Fraction):
        return int(v) if v.denominator == 1 else float(v)
    if hasattr(v, "item"):
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


def _plain(t: Table) -> str:
    """A plain-text table: header, dashes, rows; numeric columns right-aligned."""
    rows = [[_cell(c, True) for c in r] for r in t.rows]
    headers = [str(h) for h in t.headers]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))

    def line(cells):
        out = []
        for i, c in enumerate(cells):
            out.append(c.rjust(widths[i]) if i in t.numeric else c.ljust(widths[i]))
        return "  ".join(out).rstrip()

    body = "\n".join([line(headers), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])
    out = (t.title + "\n" if t.title else "") + body
    if t.notes:
        out += "\n" + "\n".join(t.notes)
    return out


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def _markdown(t: Table) -> str:
    lines = []
    if t.title:
        lines.append(f"**{t.title}**\n")
    lines.append("| " + " | ".join(_md_escape(str(h)) for h in t.headers) + " |")
    lines.append("|" + "|".join("---:" if i in t.numeric else "---" for i in range(len(t.headers))) + "|")
    for r in t.rows:
        lines.append("| " + " | ".join(_md_escape(_cell(c, True)) for c in r) + " |")
    if t.notes:
        lines.append("")
        lines.extend(f"- {n}" for n in t.notes)
    return "\n".join(lines)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "×": r"$\times$", "−": "-", "²": r"$^2$", "⚠": r"(!)", "–": "--", "·": r"$\cdot$"}


def latex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(s))


def _latex(t: Table) -> str:
    cols = "".join("r" if i in t.numeric else "l" for i in range(len(t.headers)))
    lines = [r"\begin{table}[t]", r"\centering"]
    if t.title:
        lines.append(r"\caption{" + latex_escape(t.title) + "}")
    lines += [r"\begin{tabular}{" + cols + "}", r"\toprule",
              " & ".join(latex_escape(h) for h in t.headers) + r" \\", r"\midrule"]
    for r in t.rows:
        lines.append(" & ".join(latex_escape(_cell(c, True)).replace(",", "{,}") for c in r) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    for n in t.notes:
        lines.append(r"\par\footnotesize " + latex_escape(n))
    lines.append(r"\end{table}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# the main report

def report_tables(r, view: str = "breakdown", top: int | None = None) -> list[Table]:
    from .report import headline_lines

    views = ("breakdown", "layers", "stages", "summary")
    if view not in views:
        from .spec import suggest

        raise ComemError(f"unknown view {view!r}{suggest(view, views)}; choose one of: {', '.join(views)}")
    title = (f"{r.title} ({r.model}), clip {r.clip} x {r.size}x{r.size}, profile {r.profile}, {r.dtype}"
             + (f", batch {r.batch}" if r.batch != 1 else "") + f", counts: {r.count}")
    tables = []
    if top:
        rows = []
        by = "state" if r.continual else "macs"
        for row in r.top_layers(top, by):
            rows.append([row.path, row.kind, row.count, (row.state or 0) * row.count * r.batch if r.continual else None,
                         r.macs_step_of(row) if r.continual else None, r.macs_clip_of(row)])
        tables.append(Table(f"Top {top} layers by {'state' if r.continual else 'MACs'} — {title}",
                            ["layer", "kind", "count", "state (floats)", f"per step ({r.count})",
                             f"per clip ({r.count})"], rows, numeric=(2, 3, 4, 5)))
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
            rows.append([row.path, row.kind, row.count, "x".join(map(str, (row.y.c, row.y.t, row.y.h, row.y.w))),
                         row.params * row.count,
                         (row.state or 0) * row.count * r.batch if r.continual else None,
                         r.macs_step_of(row) if r.continual else None, r.macs_clip_of(row)])
        tables.append(Table(f"Layers — {title}", ["layer", "kind", "count", "output CxTxHxW", "params",
                                                 "state (floats)", f"per step ({r.count})", f"per clip ({r.count})"],
                            rows, numeric=(2, 4, 5, 6, 7)))
    elif view == "stages" or (view == "breakdown" and not r.continual):
        rows = [[s["stage"], "x".join(map(str, s["output"])), s["params"], s["state_floats"], s["macs_per_step"],
                 s["macs_per_clip"]] for s in r.stages]
        tables.append(Table(f"Stages — {title}", ["stage", "output CxTxHxW", "params", "state (floats)",
                                                 f"per step ({r.count})", f"per clip ({r.count})"], rows,
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
             f"<code>{html.escape(r.profile)}</code>, {r.dtype}, counts: {r.count}</div>"]
    for t in report_tables(r, "breakdown"):
        parts.append(f"<p><b>{html.escape(t.title)}</b></p><table><thead><tr>"
                     + "".join(f"<th>{html.escape(str(h))}</th>" for h in t.headers) + "</tr></thead><tbody>")
        for row in t.rows:
            parts.append("<tr>" + "".join(
                f"<td style='text-align:{'right' if i in t.numeric else 'left'}'>{html.escape(_cell(c, True))}</td>"
                for i, c in enumerate(row)) + "</tr>")
        parts.append("</tbody></table>")
        for n in t.notes:
            parts.append(f"<p style='font-size:smaller'>{html.escape(n)}</p>")
    return "".join(parts)


__all__ = ["Table", "render_tables", "render_report", "check_format", "FORMATS", "human_bytes"]
