"""What-if engine: closed forms, sweeps, solving, comparisons, knobs.

Reference values are comem's exact integer evaluation (a different code
path: Python ints, one point at a time) and hand derivations written here.
"""
import json

import pytest
import sympy

import comem
from comem.errors import ComemError
from comem.analyses.symbolic import closed_forms, substitute
from comem.analyses.sweep import sweep
from comem.analyses.solve import solve
from comem.core.units import parse_bytes, parse_count, parse_range

POINTS = [(16, 224), (7, 75), (13, 161), (64, 33), (3, 250)]  # 75, 161, 33, 250: not multiples of 32


@pytest.mark.parametrize("model,profile", [("x3d-m", None), ("x3d-m", "continual-inference"), ("i3d-r50", None),
                                           ("slow-8x8-r50", "continual-inference"), ("x3d-l", None)])
def test_closed_forms_equal_numbers_everywhere(model, profile):
    f = closed_forms(model, profile)
    syms = f["_symbols"]
    assert set(syms) == {"clip", "size"}
    for clip, size in POINTS:
        try:
            r = comem.analyze(model, clip=clip, size=size, profile=profile)
        except ComemError:
            continue  # e.g. size below the stride
        for q in ("state_floats", "transient_floats", "total_floats", "regular_total_floats", "ops_per_step",
                  "ops_per_clip", "delay", "receptive_field", "params"):
            assert substitute(f[q], {"clip": clip, "size": size}, syms) == getattr(r, q), (q, clip, size)


def test_formula_json_parses_with_sympy(cli):
    rc, out, err = cli("formula", "x3d-m", "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["symbols"] == ["clip", "size"]
    clip, size = sympy.symbols("clip size", positive=True, integer=True)
    state = sympy.sympify(d["expressions"]["state_floats"], locals={"clip": clip, "size": size})
    # Appendix A (as printed): 4,771,632 floats of state at 16 x 224^2
    assert state.subs({clip: 16, size: 224}) == 4_771_632
    total = sympy.sympify(d["expressions"]["total_floats"], locals={"clip": clip, "size": size})
    assert total.subs({clip: 64, size: 224}) == 5_093_424
    rc, out, _ = cli("formula", "x3d-m", "-f", "latex")
    assert rc == 0 and r"\left\lceil" in out  # ⌈size/2⌉: the output size of a stride-2 layer


@pytest.mark.parametrize("symbols", [["depth_factor"], ["depth_factor", "bottleneck_factor"]])
def test_symbolic_spec_parameters(symbols):
    # a symbolic parameter describes a family of networks: the errata of X3D-M's
    # published network are off, as they are for analyze at any changed value
    consistent = {"errata": "consistent"}
    f = closed_forms("x3d-m", None, knobs=consistent, symbols=symbols)
    assert closed_forms("x3d-m", None, symbols=symbols)["state_floats"] == f["state_floats"]
    for vals in ({"depth_factor": "2.2", "bottleneck_factor": "2.25"}, {"depth_factor": "5.0", "bottleneck_factor": "3"},
                 {"depth_factor": "0.4", "bottleneck_factor": "1.5"}):
        p = {k: vals[k] for k in symbols}
        for clip, size in [(16, 224), (5, 97)]:
            r = comem.analyze("x3d-m", clip=clip, size=size, params=p, knobs=consistent)
            for q in ("state_floats", "ops_per_step", "ops_per_clip", "params", "delay"):
                assert substitute(f[q], {"clip": clip, "size": size, **p}, f["_symbols"]) == getattr(r, q)
    # X3D-L is X3D-M with depth factor 5.0
    if symbols == ["depth_factor"]:
        assert substitute(f["params"], {"clip": 16, "size": 312, "depth_factor": "5.0"}, f["_symbols"]) == \
            comem.analyze("x3d-l").params


@pytest.mark.slow
def test_symbolic_width_factor():
    # a family of networks has no errata (see test_symbolic_spec_parameters); X3D-M's transient erratum
    # would turn its own stage-output rule into largest-map, so name that rule
    consistent = {"errata": "consistent", "transient": "largest-map"}
    f = closed_forms("x3d-m", None, knobs=consistent, symbols=["width_factor"])
    for w in ("2.0", "1.5", "3.3"):
        r = comem.analyze("x3d-m", params={"width_factor": w}, knobs=consistent)
        for q in ("state_floats", "transient_floats", "ops_per_step", "params"):
            assert substitute(f[q], {"clip": 16, "size": 224, "width_factor": w}, f["_symbols"]) == getattr(r, q)


@pytest.mark.parametrize("model,profile", [("x3d-m", None), ("x3d-m", "continual-inference"), ("i3d-r50", None),
                                           ("r2plus1d-18", None)])
def test_sweep_equals_one_by_one(model, profile):
    clips = [8, 9, 16, 31]
    sizes = [112, 113, 224]
    r = sweep(model, clips, sizes, batches=[1, 3], dtypes=["fp32", "fp16"], profile=profile)
    for row in r.rows():
        clip, size, batch, dtype, valid = row[:5]
        a = comem.analyze(model, clip=clip, size=size, batch=batch, dtype=dtype, profile=profile)
        got = dict(zip(r.headers(), row))
        assert got["ops_per_clip"] == a.ops_per_clip
        assert got["regular_total_bytes"] == a.bytes(a.regular_total_floats)
        if a.continual:
            assert got["total_bytes"] == a.bytes(a.total_floats)
            assert got["ops_per_step"] == a.ops_per_step
            assert got["ops_per_frame_avg"] == a.ops_per_frame_avg


def test_sweep_marks_invalid_points():
    # SlowFast's pathways line up only for clips that are multiples of alpha = 4
    r = sweep("slowfast-8x8-r50", [31, 32, 33], [256])
    assert r.valid[:, 0].tolist() == [False, True, False]
    assert any("concatenate" in reason for reason in r.reasons)


def test_sweep_overflow_falls_back_to_exact_integers():
    r = sweep("x3d-m", [64], [100_000], batches=[1_000_000])
    a = comem.analyze("x3d-m", clip=64, size=100_000, batch=1_000_000)
    assert r.exact_python_ints
    row = dict(zip(r.headers(), r.rows()[0]))
    assert row["ops_per_clip"] == a.ops_per_clip > 2 ** 63
    assert row["total_bytes"] == a.bytes(a.total_floats)


def test_sweep_cli(cli):
    rc, out, err = cli("sweep", "x3d-m", "--clip", "4..64:30", "--size", "160,224", "-f", "csv")
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1 + 3 * 2
    # Appendix A: clip 4 -> 5,067,504 floats; clip 64 -> 5,093,424 at 224^2
    assert "4,224,1,fp32,true" in lines[2] and ",5067504," in lines[2]
    assert ",5093424," in lines[6]


@pytest.mark.parametrize("var,budget,dtype", [("size", 8 * 2 ** 20, "fp16"), ("clip", 20_500_000, "fp32"),
                                               ("batch", 2 ** 30, "fp16")])
def test_solve_memory(var, budget, dtype):
    r = solve("x3d-m", var, budget_bytes=budget, dtype=dtype)
    v = r["value"]
    a = comem.analyze("x3d-m", dtype=dtype, **{var: v})
    assert a.bytes(a.total_floats) <= budget
    a1 = comem.analyze("x3d-m", dtype=dtype, **{var: v + 1})
    assert a1.bytes(a1.total_floats) > budget
    if var == "clip":
        # hand derivation: only pool_5 grows with the clip, (T-1) x 432 floats x 4 bytes
        base = comem.analyze("x3d-m", clip=1)
        assert v == 1 + (budget - base.bytes(base.total_floats)) // (432 * 4)


def test_solve_macs_and_errors(cli):
    r = solve("x3d-m", "size", macs_budget=10 ** 9)
    assert comem.analyze("x3d-m", size=r["value"]).ops_per_step <= 10 ** 9 < \
        comem.analyze("x3d-m", size=r["value"] + 1).ops_per_step
    rc, out, err = cli("solve", "x3d-m", "--budget", "1KiB", "--for", "size")
    assert rc == 2 and "nothing fits" in err and out == ""
    rc, out, err = cli("solve", "x3d-m", "--budget", "8 parsecs", "--for", "size")
    assert rc == 2 and "unknown unit" in err
    rc, out, err = cli("solve", "x3d-m", "--budget", "8MiB", "--for", "size", "--dtype", "fp16", "--batch", "4")
    assert rc == 0 and "largest size" in out


def test_units_parsers():
    assert parse_bytes("8MiB") == 8 * 2 ** 20
    assert parse_bytes("1.5GB") == 1_500_000_000
    assert parse_bytes("4096") == 4096
    assert parse_count("1G") == 10 ** 9 and parse_count("325M") == 325_000_000 and parse_count("2GMACs") == 2 * 10 ** 9
    assert parse_range("4..16:4", "clip") == [4, 8, 12, 16]
    assert parse_range("160,224,312", "size") == [160, 224, 312]
    for bad in ("__import__('os')", "1e9", "5..1", "4..8:0", "", "8 MiB MiB"):
        with pytest.raises(ComemError):
            parse_range(bad, "clip") if ".." in bad or "'" in bad or bad == "" else parse_bytes(bad)


def test_compare(cli):
    rc, out, err = cli("compare", "x3d-m", "x3d-m:clip=64", "x3d-m:profile=continual-inference,dtype=fp16", "-f",
                       "json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["x3d-m"]["total_floats"] == 5_072_688 and d["x3d-m:clip=64"]["total_floats"] == 5_093_424
    assert d["x3d-m:profile=continual-inference,dtype=fp16"]["bytes_per_float"] == 2
    rc, out, err = cli("compare", "x3d-m:clipp=3")
    assert rc == 2 and "unknown key" in err


def test_se_temporal_pooling_what_if():
    base = comem.analyze("x3d-m")
    kept = comem.analyze("x3d-m", knobs={"se_pool": "clip-causal"})
    se_channels = 2 * 54 + 3 * 108 + 6 * 216 + 4 * 432  # SE in every other block of 3/5/11/7
    assert kept.state_floats - base.state_floats == 15 * se_channels == 51_840
    assert kept.delay == base.delay
    # the paper's +85,050 is not what X3D-M's SE blocks can hold: per kept frame it would need 5,670 channels
    assert 85_050 % 15 == 0 and 85_050 // 15 != se_channels
    aligned = comem.analyze("x3d-m", knobs={"se_pool": "clip"})
    assert aligned.delay == base.delay + 15 * 15  # each of the 15 SE pools delays its gate by T-1 = 15 frames


def test_knobs_on_every_command(cli):
    for args in (["x3d-m"], ["formula", "x3d-m"], ["sweep", "x3d-m"], ["compare", "x3d-m"],
                 ["solve", "x3d-m", "--for", "batch", "--budget", "1GiB"]):
        rc, out, err = cli(*args, "--knob", "conv_state=library-buffer", "-f", "json")
        assert rc == 0, (args, err)
        rc, out, err = cli(*args, "--knob", "conv_state=bogus")
        assert rc == 2 and "conv_state" in err, args
