"""Rendering: every command's output as a table, JSON, CSV, Markdown, LaTeX
or HTML.

Commands build :class:`Table` objects (a title, headers, rows of cells) and
notes; :func:`render_tables` turns them into text.  The human formats are
drawn by ``tabulate`` (long cells wrapped); JSON and CSV carry plain values:
exact integers as digits, ratios and percentages as numbers, booleans and
lists as themselves.  Cells are Python values; :class:`Ratio` and
:class:`Percent` mark numbers that print as ``1.23×`` / ``4.5%`` for people.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from comem.errors import ComemError, suggest
from comem.core.units import grouped

FORMATS = ("table", "json", "csv", "markdown", "latex", "html")
FORMAT_ALIASES = {"md": "markdown", "tex": "latex", "text": "table", "txt": "table", "htm": "html"}


@dataclass
class Table:
    title: str
    headers: list
    rows: list
    notes: list = field(default_factory=list)
    #: columns holding numbers (right-aligned in human formats)
    numeric: tuple = ()
    #: column -> the width its text wraps at in human formats
    wrap: dict = field(default_factory=dict)
    #: machine names of the columns: a blank header takes its key in Markdown, LaTeX and HTML
    keys: list | None = None


@dataclass(frozen=True)
class Ratio:
    """A ratio: ``12.34×`` for people (``places`` decimals), a number in JSON/CSV."""
    value: object
    places: int = 2

    def __float__(self):
        return float(self.value)


@dataclass(frozen=True)
class Percent:
    """A share of a total or a relative error: ``12.3%`` (``-8.1%`` with
    ``signed``) for people, a number (percent) in JSON/CSV."""
    value: object
    places: int = 1
    signed: bool = False

    def __float__(self):
        return float(self.value)


@dataclass(frozen=True)
class Rounded:
    """A number shown to ``places`` decimals for people (a published table's
    precision), carried unrounded in JSON/CSV."""
    value: object
    places: int

    def __float__(self):
        return float(self.value)


def check_format(fmt: str) -> str:
    key = ("table" if fmt is None else str(fmt)).strip().lower()
    key = FORMAT_ALIASES.get(key, key)
    if key not in FORMATS:
        raise ComemError(f"unknown format {fmt!r}{suggest(key, FORMATS)}; choose one of: {', '.join(FORMATS)}")
    return key


def cell(v, human: bool):
    """One table cell as text: human formats group digits; CSV keeps plain
    numbers."""
    if v is None:
        return "–" if human else ""
    if isinstance(v, bool):
        return ("yes" if v else "no") if human else ("true" if v else "false")
    if isinstance(v, Ratio):
        return f"{float(v):,.{v.places}f}×" if human else _plain_float(float(v))
    if isinstance(v, Percent):
        return f"{float(v):{'+' if v.signed else ''}.{v.places}f}%" if human else _plain_float(round(float(v), 4))
    if isinstance(v, Rounded):
        return f"{float(v):,.{v.places}f}" if human else _plain_float(float(v))
    if isinstance(v, int):
        return grouped(v) if human else str(v)
    if isinstance(v, Fraction):
        return grouped(v) if human else (str(v.numerator) if v.denominator == 1 else _plain_float(float(v)))
    if isinstance(v, float):
        return f"{v:,.4g}" if human else repr(v)
    if isinstance(v, (list, tuple)):
        return ", ".join(cell(x, human) for x in v) if human else ";".join(cell(x, False) for x in v)
    return str(v)


def json_value(v):
    """A cell as a JSON value: numbers stay numbers."""
    if isinstance(v, (Ratio, Percent, Rounded)):
        return float(v)
    if isinstance(v, Fraction):
        return int(v) if v.denominator == 1 else float(v)
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if isinstance(v, dict):
        return {k: json_value(x) for k, x in v.items()}
    if hasattr(v, "item") and not isinstance(v, (int, float, str, bool)):  # numpy scalars
        return v.item()
    return v


def _plain_float(x: float) -> str:
    return str(int(x)) if x == int(x) and abs(x) < 2 ** 53 else repr(x)


def json_default(v):
    """``json.dumps(default=...)`` for comem's values."""
    out = json_value(v)
    if out is v:
        if hasattr(v, "tolist"):
            return v.tolist()
        return str(v)
    return out


def to_json(value, indent: int | None = 2) -> str:
    """One JSON document of comem's values (plain numbers; see :func:`json_default`):
    the one way every command writes JSON."""
    import json

    return json.dumps(value, indent=indent, default=json_default)


def render_tables(tables: list[Table], fmt: str, data: dict | None = None) -> str:
    """Render tables in ``fmt``; JSON prints ``data`` when given."""
    fmt = check_format(fmt)
    if fmt == "json":
        import json

        if data is None:
            data = {t.title or f"table{i}": [{h: json_value(c) for h, c in zip(t.headers, r)} for r in t.rows]
                    for i, t in enumerate(tables)}
        return json.dumps(data, indent=2, default=json_default)
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
    return "\n\n".join(_RENDERERS[fmt](t) for t in tables)


def _tabulate(t: Table, tablefmt: str, escape=None, wrap: bool = True) -> str:
    """``wrap``: long cells wrap onto more lines (the plain table only: a
    Markdown, LaTeX or HTML row is one line, wrapping would split it into
    rows a reader takes for others)."""
    from tabulate import tabulate

    rows = [[cell(c, True) for c in r] for r in t.rows]
    headers = header_names(t, structured=tablefmt != "simple")
    if escape:
        rows = [[escape(c) for c in r] for r in rows]
        headers = [escape(h) for h in headers]
    align = ["right" if i in t.numeric else "left" for i in range(len(headers))]
    widths = [t.wrap.get(i) for i in range(len(headers))] if t.wrap and wrap else None
    return tabulate(rows, headers, tablefmt=tablefmt, colalign=align, disable_numparse=True,
                    maxcolwidths=widths)


def header_names(t: Table, structured: bool = False) -> list[str]:
    """The column headers; in structured formats (Markdown, LaTeX, HTML) a
    blank header takes the column's machine name (``Table.keys``)."""
    heads = [str(h) for h in t.headers]
    if structured:
        keys = list(t.keys or [])
        heads = [h if h.strip() else (str(keys[i]) if i < len(keys) and keys[i] else f"column {i + 1}")
                 for i, h in enumerate(heads)]
    return heads


def _plain(t: Table) -> str:
    out = (t.title + "\n" if t.title else "") + _tabulate(t, "simple")
    if t.notes:
        out += "\n" + "\n".join(t.notes)
    return out


_MARKDOWN_SPECIAL = set("\\`*[]<>|&")


def markdown_escape(s: str) -> str:
    """Text that a CommonMark/GFM reader shows as written: markup characters
    escaped (an underscore only where it could open or close emphasis: not
    inside a word like ``conv_1``), a line break inside a cell as ``<br>``."""
    s = str(s)
    out = []
    for i, ch in enumerate(s):
        inside_word = ch == "_" and 0 < i < len(s) - 1 and s[i - 1].isalnum() and s[i + 1].isalnum()
        out.append("\\" + ch if ch in _MARKDOWN_SPECIAL or (ch == "_" and not inside_word) else ch)
    return "<br>".join(part.strip() for part in "".join(out).split("\n"))


def _markdown(t: Table) -> str:
    out = [f"**{markdown_escape(t.title)}**\n"] if t.title else []
    out.append(_tabulate(t, "pipe", escape=markdown_escape, wrap=False))
    if t.notes:
        out.append("")
        out.extend(f"- {markdown_escape(n)}" for n in t.notes)
    return "\n".join(out)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "×": r"$\times$", "−": "-", "²": r"$^2$", "⚠": r"(!)", "–": "--", "·": r"$\cdot$",
                  "✓": r"$\checkmark$", "✗": r"$\times$", "≤": r"$\le$", "≥": r"$\ge$", "±": r"$\pm$",
                  "\n": " "}


def latex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(s))


def _latex(t: Table) -> str:
    # latex_raw: tabulate escapes nothing (we did, unicode symbols included); booktabs rules
    body = _tabulate(t, "latex_raw", escape=lambda s: latex_escape(s).replace(",", "{,}"), wrap=False).split("\n")
    rules = [i for i, line in enumerate(body) if line.strip() == r"\hline"]
    for i, rule in zip(rules, (r"\toprule", r"\midrule", r"\bottomrule")):
        body[i] = rule
    lines = [r"\begin{table}[t]", r"\centering"]
    if t.title:
        lines.append(r"\caption{" + latex_escape(t.title) + "}")
    lines.extend(body)
    for n in t.notes:
        lines.append(r"\par\footnotesize " + latex_escape(n))
    lines.append(r"\end{table}")
    return "\n".join(lines)


def _html_escape(s: str) -> str:
    import html

    return "<br>".join(html.escape(part) for part in str(s).split("\n"))


def _html(t: Table) -> str:
    out = [f"<p><b>{_html_escape(t.title)}</b></p>"] if t.title else []
    # unsafehtml: tabulate adds no escaping of its own (we escaped once, above)
    out.append(_tabulate(t, "unsafehtml", escape=_html_escape, wrap=False))
    out.extend(f"<p style='font-size:smaller'>{_html_escape(n)}</p>" for n in t.notes)
    return "\n".join(out)


_RENDERERS = {"table": _plain, "markdown": _markdown, "latex": _latex, "html": _html}


__all__ = ["Table", "Ratio", "Percent", "Rounded", "render_tables", "check_format", "cell", "json_value", "json_default",
           "FORMATS"]
