"""Outputs people and programs read: machine formats carry plain values,
every format shows the same view, tables are drawn by tabulate, sweeps
stream, and the bugs a new user hit stay fixed."""
import ast
import csv
import io
import json
import operator
import re
import subprocess
import sys

import pytest

import comem
from comem.errors import ComemError


def _formula_value(text):
    """Evaluate a printed formula such as ``[(3−1)×54×56×56]×3×4`` (a tiny
    arithmetic reader written here: no eval)."""
    t = text.rstrip(" =").replace("×", "*").replace("−", "-").replace("[", "(").replace("]", ")")
    t = t.replace("²", "**2").replace("³", "**3")
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Pow: operator.pow}

    def ev(n):
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.BinOp):
            return ops[type(n.op)](ev(n.left), ev(n.right))
        raise ValueError(ast.dump(n))

    return ev(ast.parse(t, mode="eval").body)


@pytest.mark.parametrize("model,batch", [("x3d-m", 1), ("x3d-m", 4), ("i3d-r50", 3)])
def test_breakdown_formulas_equal_their_values(cli, model, batch):
    r = comem.analyze(model, batch=batch)
    rc, out, err = cli(model, "--batch", str(batch), "-f", "csv")
    rows = [row for row in csv.reader(io.StringIO(out)) if row[0] == "state"]
    assert rows and all(_formula_value(row[3]) == int(row[4]) for row in rows), rows[:3]
    assert sum(int(row[4]) for row in rows) == r.state_floats


def test_machine_formats_carry_plain_values(cli):
    rc, out, _ = cli("x3d-m", "-f", "csv")
    for row in csv.reader(io.StringIO(out)):
        if row[0] in ("total", "accounting") and row[4]:
            assert "floats" not in row[4] and "×" not in row[4] and "," not in row[4], row
    rc, out, _ = cli("compare", "x3d-s", "x3d-m", "-f", "csv")
    ratios = [row[3] for row in csv.reader(io.StringIO(out))][1:]
    assert all(x == "" or float(x) > 0 for x in ratios) and not any("×" in x for x in ratios)
    rc, out, _ = cli("list", "-f", "json")
    models = json.loads(out)["Known models"]
    assert all(isinstance(m["continual"], bool) and isinstance(m["aliases"], list) for m in models)
    assert {m["model"]: m["continual"] for m in models}["r2plus1d-18"] is False


@pytest.mark.parametrize("args,key", [(["--view", "layers"], "layers"), (["--view", "stages"], "stages"),
                                      (["--top", "3"], "top_layers"), (["--view", "summary"], None)])
def test_json_honours_view_and_top(cli, args, key):
    rc, out, err = cli("x3d-m", *args, "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["state_floats"] == 4_771_632
    if key == "top_layers":
        assert len(d[key]) == 3 and d[key][0]["layer"] == "conv_1.conv_t"
        assert "layers" not in d and "breakdown" not in d
    elif key:
        assert d[key] and "breakdown" not in d
    else:
        assert "layers" not in d and "stages" not in d


def test_to_csv_and_cli_csv_give_the_same_view(cli):
    r = comem.analyze("x3d-m")
    for view in ("breakdown", "layers", "stages"):
        rc, out, _ = cli("x3d-m", "--view", view, "-f", "csv")
        assert out.rstrip("\n") == r.to_csv(view), view


def test_layer_rows_share_and_depth(cli):
    rc, out, _ = cli("x3d-m", "--view", "layers", "-f", "json")
    layers = json.loads(out)["layers"]
    assert abs(sum(x["state_share"] or 0 for x in layers) - 100) < 1e-6
    rc, out, _ = cli("x3d-m", "--depth", "1", "-f", "json")
    by_stage = {x["layer"]: x for x in json.loads(out)["layers"]}
    for s in comem.analyze("x3d-m").stages:
        assert by_stage[s["stage"]]["state_floats"] == s["state_floats"]
        assert by_stage[s["stage"]]["ops_per_clip"] == s["ops_per_clip"]


def test_tables_are_drawn_by_tabulate():
    from tabulate import tabulate

    from comem.results.formats import Table, render_tables

    t = Table("t", ["a", "b"], [["x", 1234567]], numeric=(1,))
    assert render_tables([t], "markdown").endswith(tabulate([["x", "1,234,567"]], ["a", "b"], tablefmt="pipe",
                                                           colalign=["left", "right"], disable_numparse=True))
    assert "<table>" in render_tables([t], "html")
    latex = render_tables([t], "latex")
    assert r"\toprule" in latex and r"1{,}234{,}567" in latex


# ---------------------------------------------------------------------------
# the bugs a new user hit

def test_plot_stages_of_a_regular_only_model(cli, tmp_path):
    pytest.importorskip("matplotlib")
    rc, out, err = cli("plot", "stages", "r2plus1d-18", "-o", str(tmp_path / "s.png"))
    assert rc == 0 and (tmp_path / "s.png").stat().st_size > 0, err


def test_plot_models_keeps_regular_only_models():
    pytest.importorskip("matplotlib")
    from comem import plot

    fig = plot.continual_vs_regular(["x3d-m", "r2plus1d-18"])
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert len(labels) == 2 and "regular only" in labels[1]
    fig = plot.continual_vs_regular(["r2plus1d-18", "slowfast-8x8-r50"])
    assert len(fig.axes[0].patches) == 2  # two regular bars, not an empty figure


def test_bare_comem_prints_its_help():
    p = subprocess.run([sys.executable, "-m", "comem"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == ""
    assert len(p.stdout.splitlines()) > 10 and "Commands:" in p.stdout


@pytest.mark.parametrize("kwargs,needle", [({"knobs": "a=b"}, "knobs must be a dict"),
                                           ({"params": ["depth_factor", 2]}, "params must be a dict")])
def test_api_type_errors_are_comem_errors(kwargs, needle):
    with pytest.raises(ComemError, match=needle):
        comem.analyze("x3d-m", **kwargs)


def test_top_layers_by_an_unknown_key():
    with pytest.raises(ComemError, match="choose state, ops or params"):
        comem.analyze("x3d-m").top_layers(3, by="flops")


def test_repr_is_short():
    assert len(repr(comem.analyze("x3d-m"))) < 400


def test_no_syntax_warning_leaks(tmp_path):
    spec = tmp_path / "w.toml"
    spec.write_text('[model]\nname = "w"\nclip = 4\nsize = 32\n[params]\nc = "2 if 1else 3"\n[[stages]]\n'
                    'name = "a"\nlayers = [ { kind = "conv", out = "8 * c", kernel = [1, 1, 1] } ]\n')
    p = subprocess.run([sys.executable, "-W", "default", "-m", "comem", str(spec), "-f", "json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr


def test_slowfast_clip_rule_is_named(cli):
    rc, out, err = cli("slowfast-8x8-r50", "--clip", "30")
    assert rc == 2 and "multiple of alpha" in err and "concatenate" not in err


def test_knob_without_equals_gets_a_name_value_hint(cli):
    rc, out, err = cli("x3d-m", "--knob", "conv_state", "library-buffer")
    assert rc == 2 and "NAME=VALUE" in err and "conv_state=library-buffer" in err


def test_validate_install_hint_names_fvcore():
    from comem.pytorch import INSTALL_HINT

    assert "fvcore" in INSTALL_HINT


def test_ordinals_in_the_totals(cli):
    rc, out, _ = cli("i3d-r50")
    assert "every 2nd frame" in out and "2th" not in out


def test_readme_ptflops_wording():
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert 'backend_specific_config={"count_functional": False}' in readme
    assert "`count_functional=False`" not in readme


# ---------------------------------------------------------------------------
# sweeps stream in blocks

def test_streamed_blocks_equal_the_whole_sweep():
    from comem.analyses.sweep import iter_sweep, sweep

    whole = sweep("x3d-m", [4, 5, 16, 31], [31, 64, 225], [1, 2], ["fp32", "fp16"])
    rows = []
    for block in iter_sweep("x3d-m", [4, 5, 16, 31], [31, 64, 225], [1, 2], ["fp32", "fp16"], block_points=4):
        assert len(block.clips) == 1
        rows.extend(block.rows())
    assert rows == whole.rows()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_streamed_text_equals_the_rows(cli, fmt):
    from comem.analyses.sweep import sweep

    rc, out, err = cli("sweep", "slowfast-8x8-r50", "--clip", "28..33", "--size", "64,97", "-f", fmt)
    assert rc == 0, err
    r = sweep("slowfast-8x8-r50", list(range(28, 34)), [64, 97])
    if fmt == "csv":
        got = list(csv.reader(io.StringIO(out)))
        assert got[0] == r.headers()
        assert got[1:] == [[("" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))) for v in row]
                           for row in r.rows()]
    else:
        d = json.loads(out)
        assert d["columns"] == r.headers() and d["rows"] == r.rows()
        assert any("multiple of alpha" in x for x in d["invalid_reasons"])


def test_huge_grids_need_a_machine_format(cli):
    rc, out, err = cli("sweep", "x3d-m", "--clip", "1..1000", "--size", "32..100")
    assert rc == 2 and "-f csv" in err and re.search(r"69,000 points", err)


# ---------------------------------------------------------------------------
# issue 21.3: machine formats carry numbers as numbers, the unit in its own column

_DISPLAY = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?(\s|$)"  # grouped digits: 4,771,632
                      r"|\d\s*(KiB|MiB|GiB|TiB|KB|MB|GB|ms|us|µs|clips/s|frames/s|%|×)$"  # a number with a unit
                      r"|^\d[\d.,]*\s+(floats|values|bytes|frames|M|G|K|T)\b"  # 4771632 floats, 312.39 M
                      r"|^[-+]?\d+(\.\d+)?\s*±")  # 1.2 ± 0.1


def _display_strings_in(value):
    if isinstance(value, dict):
        return [x for v in value.values() for x in _display_strings_in(v)]
    if isinstance(value, list):
        return [x for v in value for x in _display_strings_in(v)]
    return [value] if isinstance(value, str) and _DISPLAY.search(value.strip()) else []


MACHINE_COMMANDS = [
    ["x3d-m"], ["x3d-m", "--view", "summary"], ["x3d-m", "--view", "layers"], ["x3d-m", "--view", "stages"],
    ["x3d-m", "--top", "3", "--batch", "2"], ["oadtr", "--view", "summary"], ["st-gcn", "--view", "summary"],
    ["compare", "x3d-s", "x3d-m"], ["sweep", "x3d-m", "--clip", "4,8"],
    ["pareto", "x3d-m", "--set", "width_factor=1..2:0.5"], ["solve", "x3d-m", "--for", "size", "--budget", "8MiB"],
    ["solve", "x3d-m", "--for", "width_factor", "--budget", "8MiB"], ["list"], ["profiles"], ["kinds"],
    ["paper", "--table", "1"], ["paper", "--table", "mem"], ["paper", "--table", "speed"],
    ["paper", "--paper", "cost-gcn"], ["paper", "--paper", "continual-transformers"], ["formula", "x3d-m"],
    ["predict", "x3d-m", "--device", "rtx2080ti"],
]


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("args", MACHINE_COMMANDS, ids=[" ".join(a) for a in MACHINE_COMMANDS])
def test_machine_formats_hold_no_display_strings(cli, args, fmt):
    """No '4,771,632 floats', '18.20 MiB', '15.91×' or '25.2%' in CSV or JSON:
    numbers are numbers (the regex is checked on the human table below)."""
    rc, out, err = cli(*args, "-f", fmt)
    assert rc == 0, err
    if fmt == "csv":
        bad = [c for row in csv.reader(io.StringIO(out)) for c in row if _DISPLAY.search(c.strip())]
    else:
        bad = _display_strings_in(json.loads(out))
    assert not bad, bad[:5]


def test_the_display_pattern_catches_the_human_table(cli):
    """The pattern above is not vacuous: the human summary is full of display strings."""
    rc, out, _ = cli("x3d-m", "--view", "summary")
    cells = [c.strip() for line in out.splitlines() for c in re.split(r"\s{2,}", line)]
    assert len([c for c in cells if _DISPLAY.search(c)]) >= 10


def test_summary_csv_is_quantity_value_unit(cli):
    """Every headline number in the summary CSV is a plain number with its unit
    beside it, and equals the same key of the JSON (two views, one number)."""
    rc, out, _ = cli("x3d-m", "--view", "summary", "-f", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["quantity", "value", "unit"]
    got = {q: (v, u) for q, v, u in rows[1:]}
    d = json.loads(cli("x3d-m", "--view", "summary", "-f", "json")[1])
    for key, unit in (("state_floats", "floats"), ("transient_floats", "floats"), ("total_bytes", "bytes"),
                      ("weights_bytes", "bytes"), ("params", "parameters"), ("delay", "frames"),
                      ("ops_per_step", "operations (ptflops)"), ("clip", "frames"), ("size", "pixels")):
        value, u = got[key]
        assert int(value) == d[key] and u == unit, (key, value, u)
    assert got["accounting.paper-consistent.total_bytes"][1] == "bytes"
    # the breakdown CSV: each state row in floats, the totals with their units
    rows = list(csv.reader(io.StringIO(cli("x3d-m", "-f", "csv")[1])))
    assert rows[0][5] == "unit" and all(r[5] == "floats" for r in rows if r[0] == "state")
    assert ["total", "", "total_bytes", "", str(d["total_bytes"]), "bytes", ""] in rows


def test_paper_table1_prints_gflops_to_the_published_precision(cli):
    """Issue 21.9: each GFLOPs figure of Table 1 has the decimals the paper
    printed for its row (read from the literal in the published data, e.g.
    '6.90'), says so, and CSV keeps comem's figure unrounded."""
    from pathlib import Path

    text = (Path(comem.__file__).resolve().parent.parent / "specs" / "published" / "co3d-eccv2022.toml").read_text()
    table1 = text[text.index("[[table1]]"):text.index("[[table1_hw]]") if "[[table1_hw]]" in text else None]
    printed = [m.group(1) for m in re.finditer(r"^gflops = ([0-9.]+)", table1, re.M)]
    decimals = [len(p.split(".")[1]) if "." in p else 0 for p in printed]
    rc, out, err = cli("paper", "--table", "1", "-f", "json")
    rows = json.loads(out)[next(k for k in json.loads(out) if k.startswith("Table 1"))]
    assert len(rows) == len(printed)
    rc, out, err = cli("paper", "--table", "1")
    body = [line for line in out.splitlines() if re.search(r"  [✓✗]", line)][:len(printed)]
    assert len(body) == len(printed)
    for line, places, row in zip(body, decimals, rows):
        numbers = re.findall(r"(?<![\d,])(\d+\.\d+)(?![\d])", line)
        # params (M, paper), then the GFLOPs columns: comem, [toolchain], paper
        assert all(len(n.split(".")[1]) == places for n in numbers[1:]), (line, places)
        assert numbers[-1] == f"{row['GFLOPs (paper)']:.{places}f}"
        assert row["GFLOPs (comem)"] != round(row["GFLOPs (comem)"], places)  # unrounded in machine formats
    assert f"GFLOPs to {decimals[0]} decimals, the precision the paper prints" in out


# ---------------------------------------------------------------------------
# issue 21.8: closed forms people can read

def test_formula_reads_as_ceilings_named_and_wrapped():
    from comem.analyses.symbolic import closed_forms, forms_tables
    from comem.results.formats import render_tables

    forms = closed_forms("x3d-m")
    tables, data = forms_tables(forms, "table", width=60)
    text = render_tables(tables, "table")
    assert "⌈size/2⌉" in text and "⌈size/32⌉" in text  # five stride-2 stages: 224 -> 112 ... -> 7
    assert "floor(" not in text and "size/2 - 1/2" not in text
    rows = dict((r[0], r[1]) for r in tables[0].rows)
    assert rows["total_floats"] == "state_floats + transient_floats"
    width = max(len(line) for r in tables[0].rows for line in r[1].split("\n"))
    assert width <= 60, width
    assert max(len(line) for line in text.splitlines()) < 120
    # before: thousands of characters on one line
    assert max(len(str(v)) for k, v in forms.items() if not k.startswith("_")) > 1000


@pytest.mark.parametrize("model", ["x3d-m", "st-gcn", "slowfast-8x8-r50", "r2plus1d-18", "movinet-a0-stream"])
def test_tidy_and_named_forms_are_the_same_functions(model):
    """Tidying floors and naming sub-expressions changes the text, never a value:
    at sizes that are not multiples of any stride and at odd clips."""
    sympy = pytest.importorskip("sympy")
    from comem.analyses.symbolic import closed_forms, named_forms, substitute, tidy_rounding

    forms = closed_forms(model)
    syms = forms["_symbols"]
    definitions, quantities = named_forms(forms)
    back = {sympy.Symbol(k): v for k, v in definitions}
    names = dict(quantities)
    for _ in range(len(definitions) + len(names)):  # resolve names of names
        back.update({sympy.Symbol(k): v.xreplace(back) for k, v in names.items()})
    points = [{"clip": c, "size": s} for c in (8, 13, 33) for s in (25, 113, 161)] if "size" in syms \
        else [{"clip": c} for c in (8, 13, 64)]
    for k, v in forms.items():
        if k.startswith("_"):
            continue
        tidy = tidy_rounding(v)
        named = names[k].xreplace(back).xreplace(back)
        for pt in points:
            try:
                want = substitute(v, pt, syms)
            except (ZeroDivisionError, ValueError):
                continue
            assert substitute(tidy, pt, syms) == want, (model, k, pt)
            assert substitute(named, pt, syms) == want, (model, k, pt)


def test_formula_json_is_tidy_sympy_and_matches_appendix_a(cli):
    sympy = pytest.importorskip("sympy")
    rc, out, _ = cli("formula", "x3d-m", "-f", "json")
    d = json.loads(out)
    clip, size = sympy.symbols("clip size", positive=True, integer=True)
    state = sympy.sympify(d["expressions"]["state_floats"], locals={"clip": clip, "size": size})
    assert "floor" not in d["expressions"]["state_floats"]
    # Appendix A (as printed): 4,771,632 floats of state at 16 x 224^2
    assert state.subs({clip: 16, size: 224}) == 4_771_632
    assert d["readable"]["total_floats"] == "state_floats + transient_floats"


def test_formula_latex_is_math_with_ceilings(cli):
    rc, out, _ = cli("formula", "x3d-m", "-f", "latex")
    assert rc == 0 and out.count(r"\begin{align*}") == out.count(r"\end{align*}") == 1
    assert r"\left\lceil{\frac{\mathrm{size}}{2}}\right\rceil" in out
    assert r"\mathrm{total\_floats} &= \mathrm{state\_floats} + \mathrm{transient\_floats}" in out


# ---------------------------------------------------------------------------
# issue 21.7: what solve says it used

def test_solve_settings_name_the_dtype_and_the_clip_used(cli):
    d = json.loads(cli("solve", "x3d-m", "--for", "size", "--budget", "8MiB", "--dtype", "fp16", "-f", "json")[1])
    assert d["settings"]["dtype"] == "fp16" and d["settings"]["clip"] == 16
    rc, out, _ = cli("solve", "x3d-m", "--for", "size", "--budget", "8MiB", "--dtype", "fp16")
    assert "dtype=fp16" in out
    d = json.loads(cli("solve", "x3d-m", "--for", "width_factor", "--budget", "8MiB", "-f", "json")[1])
    assert d["settings"]["clip"] == 16 and d["settings"]["size"] == 224  # the spec's, not null
    # solving inside the declared domain: se_ratio's is (0, 1]
    d = json.loads(cli("solve", "x3d-m", "--for", "se_ratio", "--budget", "1GiB", "-f", "json")[1])
    assert d["value"] == 1 and "top of its domain (0, 1]" in d["note"]


def test_bench_table_carries_numbers():
    """bench's table (here from a hand-made measurement, no torch): CSV holds
    plain numbers, the spread and the unit in their own columns."""
    from comem.device.bench import bench_table
    from comem.results.formats import render_tables

    d = {"model": "m", "device": "cpu", "threads": 1, "dtype": "fp32", "clip": 4, "runs": 3, "fps": 30,
         "peak_gflops": 100.0, "speedup": 2.5, "keeps_up": {"regular": False, "continual": True},
         "regular": {"clips_per_s": 12.5, "clips_per_s_std": 0.5, "latency_ms": 80.0, "batch": 1, "mfu": 0.125,
                     "achieved_gflops": 12.5, "peak_allocated_bytes": 1_234_567},
         "continual": {"frames_per_s": 31.25, "frames_per_s_std": 1.0, "latency_ms": 32.0, "batch": 1,
                       "mfu": 0.05, "achieved_gflops": 5.0, "peak_allocated_bytes": 2_000_000},
         "predicted": {"device": "p", "origin": "fitted", "speedup": 2.0,
                       "regular": {"clips_per_s": 10.0, "peak_allocated_bytes": 1_234_567},
                       "continual": {"frames_per_s": 20.0, "peak_allocated_bytes": 1_999_488}}}
    out = render_tables([bench_table(d)], "csv")
    rows = {r[0]: r[1:] for r in csv.reader(io.StringIO(out))}
    assert rows["regular: throughput"] == ["12.5", "0.5", "10", "clips/s"]
    assert rows["regular: latency"] == ["80", "", "100", "ms"]  # predicted: 1 clip / 10 clips/s
    assert rows["continual: peak allocated"] == ["2000000", "", "1999488", "bytes"]
    assert rows["regular: MFU (achieved / peak FLOP/s)"][0] == "12.5"
    assert rows["speed-up (frames/s over clips/s)"] == ["2.5", "", "2", "ratio"]
    assert rows["continual: keeps up with 30 fps"][:3] == ["true", "", "false"]
    assert not [c for r in csv.reader(io.StringIO(out)) for c in r if _DISPLAY.search(c.strip())]
