"""The command line: main job, formats, and one-line errors."""
import csv
import io
import json
import re

import pytest


def test_main_job_prints_breakdown_and_totals(cli):
    rc, out, err = cli("x3d-m", "--clip", "64")
    assert rc == 0, err
    assert "conv_T" in out and "residual_2-3" in out and "(64−1)×432" in out
    # Appendix A: clip 64 total worst-case memory 5,093,424 floats
    assert "5,093,424 floats" in out
    assert "A.T4.res2-conv" in out  # the erratum is marked
    assert err == ""


def test_json_keys(cli):
    rc, out, err = cli("x3d-m", "--format", "json")
    assert rc == 0, err
    d = json.loads(out)
    for key in ("model", "clip", "size", "profile", "state_floats", "transient_floats", "total_floats",
                "regular_total_floats", "ops_per_step", "ops_per_clip", "params", "delay", "receptive_field",
                "layers"):
        assert key in d, key
    assert d["model"] == "x3d-m" and d["clip"] == 16 and d["size"] == 224 and d["profile"] == "paper"
    assert d["state_floats"] == 4_771_632 and d["total_floats"] == 5_072_688   # Appendix A
    assert isinstance(d["layers"], list) and d["layers"] and "path" in d["layers"][0]


@pytest.mark.parametrize("dtype,bytes_", [("fp32", 4), ("fp16", 2), ("bf16", 2), ("int8", 1)])
def test_dtype_bytes(cli, dtype, bytes_):
    rc, out, _ = cli("x3d-m", "--dtype", dtype, "-f", "json")
    d = json.loads(out)
    assert d["total_bytes"] == 5_072_688 * bytes_


def test_csv_markdown_latex(cli):
    rc, out, _ = cli("x3d-m", "-f", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["section", "stage", "layer", "formula", "value", "unit", "note"]
    assert ["total", "", "state_floats", "", "4771632", "floats", ""] in rows
    rc, out, _ = cli("x3d-m", "-f", "markdown")
    assert rc == 0 and re.search(r"\| conv_1 +\| conv_T +\|", out)
    rc, out, _ = cli("x3d-m", "-f", "latex")
    assert rc == 0 and r"\begin{tabular}" in out and r"\bottomrule" in out


def test_list_and_spec_path(cli, tmp_path):
    rc, out, _ = cli("list")
    for name in ("x3d-xs", "x3d-s", "x3d-m", "x3d-l", "i3d-r50", "slow-8x8-r50"):
        assert name in out
    spec = tmp_path / "tiny.toml"
    spec.write_text("""
[model]
name = "tiny"
clip = 4
size = 32
[[stages]]
name = "s1"
layers = [ { kind = "conv", out = 8, kernel = [3, 3, 3], padding = [1, 1, 1], bias = false } ]
""")
    rc, out, err = cli(str(spec), "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    # one conv 3->8, 3x3x3, no bias: params 8*3*27; state (3-1)*8*32*32 (Eq. 5)
    assert d["params"] == 8 * 3 * 27
    assert d["state_floats"] == 2 * 8 * 32 * 32


@pytest.mark.parametrize("args,needle", [
    (["x3d-q"], "unknown model"),
    (["x3d-m", "--clip", "0"], "clip"),
    (["x3d-m", "--clip", "-3"], "clip"),
    (["x3d-m", "--clip", "2.5"], "whole number"),
    (["x3d-m", "--size", "16"], "stride"),
    (["x3d-m", "--size", "1000000000"], "absurdly large"),
    (["x3d-m", "--profile", "papr"], "unknown profile"),
    (["x3d-m", "--format", "yaml"], "unknown format"),
    (["x3d-m", "--dtype", "fp8"], "unknown dtype"),
    (["x3d-m", "--count", "flopz"], "convention"),
    (["x3d-m", "--clipp", "3"], "no such option"),
])
def test_bad_input_one_line_exit_2(cli, args, needle):
    rc, out, err = cli(*args)
    assert rc == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err
    assert "Traceback" not in err
