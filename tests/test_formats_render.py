"""Every table in every human format survives a real reader: Markdown read
by markdown-it (GFM tables), HTML by html.parser, LaTeX parsed for balanced
environments and braces, escaped specials and the column count of every
row.  Each rendered table must have exactly the rows and columns of the
:class:`~comem.results.formats.Table` it renders (counted from the data,
not from the text), a name in every header, and each cell's text."""
import re
from html.parser import HTMLParser

import pytest

import comem
from comem.results.formats import Table, cell, render_tables
from comem.results.report import VIEWS, report_tables


# ---------------------------------------------------------------------------
# readers written here (markdown-it for Markdown; html.parser; a LaTeX parser)

def md_tables(text):
    """[(header cells, body rows)] of every table in a Markdown document."""
    import markdown_it  # the test extra (pyproject.toml): a missing reader fails, never skips
    md = markdown_it.MarkdownIt("commonmark").enable("table")
    tables, cur, part, row, cell_parts = [], None, None, None, None
    for tok in md.parse(text):
        if tok.type == "table_open":
            cur = {"thead": [], "tbody": []}
        elif tok.type == "table_close":
            tables.append((cur["thead"][0] if cur["thead"] else [], cur["tbody"]))
            cur = None
        elif tok.type in ("thead_open", "tbody_open"):
            part = tok.type[:-5]
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close":
            cur[part].append(row)
        elif tok.type in ("th_open", "td_open"):
            cell_parts = []
        elif tok.type in ("th_close", "td_close"):
            row.append("".join(cell_parts))
        elif tok.type == "inline" and cur is not None:
            for child in tok.children or []:
                if child.type in ("text", "code_inline"):
                    cell_parts.append(child.content)
                elif child.type == "html_inline" and child.content.lower().startswith("<br"):
                    cell_parts.append("\n")
                elif child.type in ("em_open", "strong_open", "link_open", "image"):
                    cell_parts.append(f"<{child.type}>")  # markup a cell never means
    return tables


class _HTMLTables(HTMLParser):
    VOID = {"br", "hr", "img", "meta", "link", "input", "col", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.tables, self.errors = [], [], []
        self.row = self.cell = None

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            if tag == "br" and self.cell is not None:
                self.cell.append("\n")
            return
        self.stack.append(tag)
        if tag == "table":
            self.tables.append(([], []))
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else ''}>")
            return
        self.stack.pop()
        if tag in ("td", "th"):
            self.row.append((tag, "".join(self.cell)))
            self.cell = None
        elif tag == "tr":
            head, body = self.tables[-1]
            if all(kind == "th" for kind, _ in self.row) and not head:
                head.extend(text for _, text in self.row)
            else:
                body.append([text for _, text in self.row])

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def html_tables(text):
    p = _HTMLTables()
    p.feed(text)
    p.close()
    assert not p.errors and not p.stack, (p.errors, p.stack)
    return p.tables


_LATEX_TEXT = {r"\textbackslash{}": "\\", r"\&": "&", r"\%": "%", r"\$": "$", r"\#": "#", r"\_": "_",
               r"\{": "{", r"\}": "}", r"\textasciitilde{}": "~", r"\textasciicircum{}": "^", "{,}": ","}


def latex_tables(text):
    """[(header cells, body rows)] of every tabular; asserts environments and
    braces balance, every row has the column spec's cells and no special
    character is left unescaped outside math."""
    stack = []
    for m in re.finditer(r"\\(begin|end)\{([^}]*)\}", text):
        if m.group(1) == "begin":
            stack.append(m.group(2))
        else:
            assert stack and stack[-1] == m.group(2), f"\\end{{{m.group(2)}}} closes {stack[-1:]}"
            stack.pop()
    assert not stack, f"unclosed environments {stack}"
    depth, i = 0, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        assert depth >= 0, "a } closes nothing"
        i += 1
    assert depth == 0, "unbalanced braces"
    out = []
    for m in re.finditer(r"\\begin\{tabular\}\{([^}]*)\}(.*?)\\end\{tabular\}", text, re.S):
        ncols = len(re.findall(r"[lcrp]", m.group(1)))
        body = re.sub(r"\\(toprule|midrule|bottomrule|hline)", "", m.group(2))
        rows = []
        for line in re.split(r"\\\\", body):
            if not line.strip():
                continue
            cells = re.split(r"(?<!\\)&", line)
            assert len(cells) == ncols, (ncols, line)
            for c in cells:
                plain = re.sub(r"\$[^$]*\$", "", c)
                for k in (r"\textasciitilde{}", r"\textasciicircum{}", r"\textbackslash{}"):
                    plain = plain.replace(k, "")
                assert not re.search(r"(?<!\\)[%#_^~&$]", plain), c
            rows.append([_latex_text(c) for c in cells])
        out.append((rows[0], rows[1:]))
    return out


def _latex_text(c):
    c = c.strip()
    for k, v in _LATEX_TEXT.items():
        c = c.replace(k, v)
    return c


READERS = {"markdown": md_tables, "html": html_tables, "latex": latex_tables}


def _norm(s):
    """Cell text compared without padding and line breaks (wrapping is allowed
    inside a cell, never across rows)."""
    return " ".join(str(s).replace("\n", " ").split())


def check_rendered(tables: list[Table], fmt: str):
    text = render_tables(tables, fmt)
    got = READERS[fmt](text)
    assert len(got) == len(tables), f"{fmt}: {len(got)} tables read back, {len(tables)} rendered"
    for t, (head, body) in zip(tables, got):
        assert len(head) == len(t.headers), (fmt, t.title, head)
        assert all(_norm(h) for h in head), f"{fmt}: {t.title!r} has an empty header: {head}"
        if fmt != "latex":
            assert [_norm(h) for h, want in zip(head, t.headers) if str(want).strip()] == \
                [_norm(want) for want in t.headers if str(want).strip()], (fmt, head)
        assert len(body) == len(t.rows), f"{fmt}: {t.title!r}: {len(body)} rows read back, {len(t.rows)} in the table"
        for row, want in zip(body, t.rows):
            assert len(row) == len(want), (fmt, row)
            if fmt == "latex":
                continue  # unicode symbols become math: compared by count only
            for got_cell, value in zip(row, want):
                assert _norm(got_cell) == _norm(cell(value, True)), (fmt, t.title, got_cell, cell(value, True))
    return text


MODELS = ["x3d-m", "st-gcn", "oadtr", "cooadtr-b1", "slowfast-8x8-r50"]


@pytest.mark.parametrize("fmt", sorted(READERS))
@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("model", MODELS)
def test_report_views_survive_a_reader(model, view, fmt):
    r = comem.analyze(model, clip=8 if model != "slowfast-8x8-r50" else 32)
    tables = report_tables(r, view)
    check_rendered(tables, fmt)
    assert r.render(fmt, view) == render_tables(tables, fmt)


@pytest.mark.parametrize("fmt", sorted(READERS))
def test_top_layers_and_depth_survive_a_reader(fmt):
    r = comem.analyze("x3d-m", batch=2)
    check_rendered(report_tables(r, "layers", top=5), fmt)
    check_rendered(report_tables(r, "layers", depth=2), fmt)


def test_hostile_cells_survive_every_reader():
    """Pipes, stars, underscores, HTML, TeX specials and line breaks in cells
    stay text; empty headers get a name."""
    t = Table("a | title_with *stars*", ["name", "", "v"],
              [["a|b", "x_y*z*", 1234567], ["<b>bold</b> & co", "50% #1 $5 ~ ^ \\", None],
               ["two\nlines", "[link](http://x)", 3]], notes=["note | with *stars* and a very long " * 6],
              numeric=(2,), wrap={0: 5, 1: 5})
    for fmt in READERS:
        check_rendered([t], fmt)


COMMANDS = [
    ["compare", "x3d-s", "x3d-m"],
    ["sweep", "x3d-m", "--clip", "4,8", "--size", "160"],
    ["pareto", "x3d-m", "--set", "width_factor=1..2:0.5", "--size", "160"],
    ["solve", "x3d-m", "--for", "size", "--budget", "8MiB"],
    ["list"], ["profiles"], ["kinds"],
    ["formula", "st-gcn"],
    ["paper", "--table", "3"],
    ["x3d-m", "--view", "layers", "--top", "4", "--batch", "2"],
]


@pytest.mark.parametrize("fmt", sorted(READERS))
@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_every_command_survives_a_reader(cli, args, fmt):
    """The commands' own tables: the reader accepts them, every header has
    a name, every row has the header's cells."""
    rc, out, err = cli(*args, "-f", fmt)
    assert rc == 0, err
    tables = READERS[fmt](out)
    if args[0] == "formula" and fmt == "latex":
        assert not tables and r"\begin{align*}" in out  # math, not a table
        return
    assert tables, out[:300]
    for head, body in tables:
        assert head and all(_norm(h) for h in head), (fmt, head)
        assert all(len(row) == len(head) for row in body), (fmt, head)
