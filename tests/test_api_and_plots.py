"""The Python API, report formats, plots and notebooks."""
import json
import os
import re

import pytest

import comem


def test_api_report_object():
    r = comem.analyze("x3d-m", clip=64)
    assert isinstance(r, comem.Report)
    assert (r.state_floats, r.transient_floats, r.total_floats) == (4_792_368, 301_056, 5_093_424)  # Appendix A
    d = json.loads(r.to_json())
    assert d["total_floats"] == 5_093_424 and d["layers"] and d["stages"] and d["breakdown"]
    assert sum(s["state_floats"] for s in d["stages"]) == r.state_floats
    assert sum(row["state_floats"] for row in d["layers"]) == r.state_floats
    assert re.search(r"\| res2 +\| conv_1-3 +\|", r._repr_markdown_())
    html = r._repr_html_()
    assert "<table>" in html and "1,204,224" in html
    assert r.to_latex().startswith(r"\begin{table}")
    # to_csv and `comem -f csv` show the same view (breakdown by default)
    assert r.to_csv().splitlines()[0] == "section,stage,layer,formula,value,unit,note"
    assert r.to_csv("layers").splitlines()[0].startswith("layer,kind,count")
    assert r.macs("macs", step=True) < r.macs("ptflops", step=True)


def test_top_and_views(cli):
    rc, out, _ = cli("x3d-m", "--top", "3")
    assert rc == 0 and "Top 3 layers" in out and "conv_1.conv_t" in out   # the stem's temporal conv holds the most
    for view in ("layers", "stages", "summary"):
        rc, out, err = cli("x3d-m", "--view", view)
        assert rc == 0, err
    rc, out, err = cli("x3d-m", "--view", "nope")
    assert rc == 2 and "unknown view" in err


@pytest.fixture
def mpl():
    """matplotlib (the plot extra), or a skip of this test alone."""
    return pytest.importorskip("matplotlib")


def test_plot_functions_return_figures(mpl):
    from matplotlib.figure import Figure

    from comem import plot

    assert isinstance(plot.memory_by_stage(comem.analyze("x3d-m")), Figure)
    assert isinstance(plot.against("x3d-m", "clip", range(4, 33)), Figure)
    assert isinstance(plot.against("i3d-r50", "size", range(64, 257, 32), profile="continual-inference"), Figure)
    assert isinstance(plot.continual_vs_regular(["x3d-s", "x3d-m"]), Figure)


@pytest.mark.parametrize("args,ext,magic", [
    (["stages", "x3d-m"], ".png", b"\x89PNG"),
    (["clip", "x3d-m", "--range", "4..32"], ".svg", b"<?xml"),
    (["models", "x3d-s", "x3d-m", "i3d-r50"], ".png", b"\x89PNG"),
])
def test_plot_cli(cli, tmp_path, args, ext, magic, mpl):
    out = tmp_path / f"p{ext}"
    rc, stdout, err = cli("plot", *args, "-o", str(out))
    assert rc == 0, err
    assert out.read_bytes().startswith(magic)


def test_plot_cli_errors(cli, tmp_path, mpl):
    rc, out, err = cli("plot", "stages", "x3d-m", "-o", str(tmp_path / "p.gif"))
    assert rc == 2 and ".png or .svg" in err
    rc, out, err = cli("plot", "stages", "x3d-m", "-o", str(tmp_path / "missing-dir" / "p.png"))
    assert rc == 2 and "cannot write" in err


def _bars(fig, label_start):
    """Heights of the bar series whose legend label starts with ``label_start``."""
    (ax,) = [a for a in fig.axes if a.containers]
    (bars,) = [c for c in ax.containers if c.get_label().startswith(label_start)]
    return [p.get_height() for p in bars.patches]


def _figure_text(fig):
    return " ".join(t.get_text() for t in fig.texts) + " " + " ".join(
        t.get_text() for a in fig.axes for t in ([a.title] + list(a.get_legend().get_texts() if a.get_legend() else [])))


def test_stage_plot_draws_one_accounting_and_says_which(mpl):
    """Issue 21.4: the tallest transient bar is the transient the footer prints, under the rule in force."""
    from comem import plot

    mib = 4 / 2 ** 20
    # paper profile, as Appendix A prints it: the largest stage output, conv_1's 24 x 112 x 112
    fig = plot.memory_by_stage(comem.analyze("x3d-m"))
    assert max(_bars(fig, "one step")) == pytest.approx(24 * 112 * 112 * mib, rel=1e-12)
    text = _figure_text(fig)
    assert "stage-output" in text and "1.15 MiB" in text
    assert "677,376" in text      # the erratum's other reading is named on the figure: res2's 54 x 112 x 112
    # the equations: the largest map of any layer, res2's first 1x1x1 expansion, 54 x 112 x 112
    fig = plot.memory_by_stage(comem.analyze("x3d-m", knobs={"errata": "consistent"}))
    assert max(_bars(fig, "one step")) == pytest.approx(54 * 112 * 112 * mib, rel=1e-12)
    assert "largest-map" in _figure_text(fig) and "2.58 MiB" in _figure_text(fig)
    # a rule over live maps: bars show the largest maps, a line the transient in force
    r = comem.analyze("x3d-m", knobs={"transient": "liveness"})
    fig = plot.memory_by_stage(r)
    (ax,) = [a for a in fig.axes if a.containers]
    (line,) = [ln for ln in ax.lines if "liveness" in ln.get_label()]
    assert line.get_ydata()[0] == pytest.approx(r.transient_floats * mib, rel=1e-12)


def test_pareto_grid_front_is_the_lower_left_and_axes_read_in_units(mpl):
    """Issue 21.5: no hidden third objective; log axes labelled 4, 6, 10 (MiB, G), never 4x10^0."""
    import math

    from comem import plot

    fig = plot.pareto_grid("x3d-m", {"width_factor": [1, 1.5, 2, 2.5, 3], "depth_factor": [1, 2, 3]},
                           sizes=[112, 160])
    ax = fig.axes[0]
    pts = [tuple(p) for p in ax.collections[0].get_offsets()]
    # the non-dominated points under lower x and lower y, by brute force
    expected = {p for p in pts if not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in pts)}
    (front,) = [ln for ln in ax.lines if ln.get_label().startswith("Pareto front")]
    assert {tuple(p) for p in front.get_xydata()} == expected
    assert "max" not in front.get_label()
    fig.canvas.draw()
    labels = [t.get_text() for a in (ax.xaxis, ax.yaxis)
              for t in a.get_majorticklabels() + a.get_minorticklabels() if t.get_text()]
    assert labels
    for text in labels:
        assert "10^" not in text and "times" not in text and "$" not in text, text
        assert math.isfinite(float(text.replace("\N{MINUS SIGN}", "-").replace("\u2212", "-")))


def test_pareto_grid_cli_has_no_hidden_objective(cli, tmp_path, mpl):
    rc, out, err = cli("plot", "pareto-grid", "--help")
    assert rc == 0 and "[default: params]" not in out


NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")


@pytest.mark.parametrize("name", ["01-reproduce-the-paper.ipynb", "02-design-space.ipynb"])
def test_notebooks_run_top_to_bottom(name):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "committed without outputs"
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": NOTEBOOKS}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
