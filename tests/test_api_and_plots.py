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
    assert r.to_csv().splitlines()[0] == "section,stage,layer,formula,value,note"
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


pytest.importorskip("matplotlib")


def test_plot_functions_return_figures():
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
def test_plot_cli(cli, tmp_path, args, ext, magic):
    out = tmp_path / f"p{ext}"
    rc, stdout, err = cli("plot", *args, "-o", str(out))
    assert rc == 0, err
    assert out.read_bytes().startswith(magic)


def test_plot_cli_errors(cli, tmp_path):
    rc, out, err = cli("plot", "stages", "x3d-m", "-o", str(tmp_path / "p.gif"))
    assert rc == 2 and ".png or .svg" in err
    rc, out, err = cli("plot", "stages", "x3d-m", "-o", str(tmp_path / "missing-dir" / "p.png"))
    assert rc == 2 and "cannot write" in err


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
