"""Rendering: every command's output as table, JSON, CSV, Markdown or LaTeX.

Commands build :class:`Table` objects (a title, headers, rows of cells) and
notes; one renderer per format turns them into text.  Cells are plain
Python values: exact integers are printed with thousands separators in
human formats and as bare digits in CSV/JSON.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ComemError
from .units import grouped

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
        from .errors import suggest

        raise ComemError(f"unknown format {fmt!r}{suggest(key, FORMATS)}; choose one of: {', '.join(FORMATS)}")
    return key


def cell(v, human: bool):
    """One table cell: human formats group digits; CSV/JSON keep plain numbers."""
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
                w.writerow(([t.title] if multi else []) + [cell(c, False) for c in r])
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
    rows = [[cell(c, True) for c in r] for r in t.rows]
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
        lines.append("| " + " | ".join(_md_escape(cell(c, True)) for c in r) + " |")
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
        lines.append(" & ".join(latex_escape(cell(c, True)).replace(",", "{,}") for c in r) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    for n in t.notes:
        lines.append(r"\par\footnotesize " + latex_escape(n))
    lines.append(r"\end{table}")
    return "\n".join(lines)


__all__ = ["Table", "render_tables", "check_format", "cell", "FORMATS"]
