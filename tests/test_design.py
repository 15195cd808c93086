"""The design space: sweeps over spec parameters, Pareto fronts, solving for
a parameter.  Every design-sweep value is checked against the point-by-point
path (``comem.analyze``, itself validated against instrumented models);
structure groups against repeat counts derived by hand from the spec's
``ceil(depth_factor * n)``; fronts against a brute-force dominance check."""
import csv
import io
import itertools
import json
import math
import random
from fractions import Fraction as F

import pytest

import comem
from comem.analyses.grid import Grid
from comem.analyses.sweep import design_sweep
from comem.analyses.pareto import pareto
from comem.analyses.solve import solve_param
from comem.core.units import parse_values

QUANTITIES = ("state_floats", "transient_floats", "total_floats", "state_bytes", "transient_bytes", "total_bytes",
              "ops_per_step", "ops_per_clip", "regular_total_floats", "regular_total_bytes", "params",
              "ops_per_frame_avg")
#: a design space over X3D-M's parameters is one accounting: the paper's equations at every point — Eq. (5)'s
#: state (errata = consistent) and Sec. 3.6's largest feature map as the transient
EQUATIONS = {"errata": "consistent", "transient": "largest-map"}


def _check_points(model, grid, r, n, seed=0, **kw):
    rows = r.rows()
    random.seed(seed)
    for row in random.sample(rows, min(n, len(rows))):
        got = dict(zip(r.headers(), row))
        if not got["valid"]:
            continue
        params = {k: F(str(got[k])) for k in grid}
        rep = comem.analyze(model, clip=got["clip"], size=got.get("size"), batch=got["batch"], dtype=got["dtype"],
                            params=params, **kw)
        for q in QUANTITIES:
            if q in got:
                assert got[q] == getattr(rep, q), (q, got, getattr(rep, q))


def test_parse_values_are_exact():
    assert parse_values("1..2:0.25", "w") == [1, F(5, 4), F(3, 2), F(7, 4), 2]
    assert parse_values("2.2", "d") == [F(11, 5)]
    assert parse_values("0.1..0.3:0.1", "x") == [F(1, 10), F(1, 5), F(3, 10)]   # no float drift: 3 values
    assert parse_values("1,2,2.5", "b") == [1, 2, F(5, 2)]
    for bad in ("", "a..b", "3..1", "1..2:0", "1..2:-1"):
        with pytest.raises(comem.ComemError):
            parse_values(bad, "w")


@pytest.mark.parametrize("profile", ["paper", "continual-inference"])
def test_x3d_design_sweep_equals_point_analyses(profile):
    grid = {"width_factor": parse_values("1..3:0.5", "w"), "depth_factor": parse_values("1.5..3:0.5,2.2", "d"),
            "bottleneck_factor": [F(3, 2), F(9, 4)]}
    r = design_sweep("x3d-m", grid, clips=[4, 16, 64], sizes=[96, 224], batches=[1, 3], dtypes=["fp32", "fp16"],
                     profile=profile)
    assert r.param_names == list(grid) and r.designs == 5 * 5 * 2
    assert r.valid.all()
    _check_points("x3d-m", grid, r, 40, profile=profile, knobs=EQUATIONS if profile == "paper" else None)


def test_the_spec_own_design_uses_the_equations_like_its_neighbours():
    # width 2, depth 2.2, bottleneck 2.25 is X3D-M itself: Appendix A prints 4,771,632 state floats (Table 4) and a
    # 301,056-float transient, but Eq. (5) gives 5,279,664 (the res2 rows with (3-1), not (3-1-1)) and res2's
    # expansion is 54 x 112 x 112 = 677,376 floats: a design space uses the equations at every point
    r = design_sweep("x3d-m", {"width_factor": [2, F(9, 4)], "depth_factor": [F(11, 5)]}, clips=[16], sizes=[224])
    assert int(r.columns["state_floats"][0, 0, 0, 0, 0]) == 5_279_664
    assert int(r.columns["transient_floats"][0, 0, 0, 0, 0]) == 54 * 112 * 112
    assert any("the published network (width_factor=2.0, depth_factor=2.2)" in n for n in r.notes)


def test_structure_groups_at_repeat_count_boundaries():
    # X3D-M's stages repeat ceil(depth_factor * n) blocks, n = 1, 2, 5, 3 (the spec): values on both sides of
    # every boundary between 1.9 and 2.5
    depths = [F(19, 10), 2, F(201, 100), F(11, 5), F(12, 5), F(241, 100), F(5, 2)]
    structures = {tuple(math.ceil(d * n) for n in (1, 2, 5, 3)) for d in depths}
    ds = Grid("x3d-m", {"depth_factor": depths, "width_factor": [F(3, 2), 2]}, [8, 16], [160])
    r = next(ds.blocks())
    # one tree per distinct repeat tuple, and X3D-M itself (2, 2.2) told apart from its network's twins (the
    # equations hold there too: same formulas, checked below)
    assert ds.groups_built == len(structures) + 1
    for p, (d, w) in enumerate(r.param_rows):
        rep = comem.analyze("x3d-m", clip=16, size=160, params={"depth_factor": d, "width_factor": w},
                            knobs=EQUATIONS)
        assert int(r.columns["state_floats"][p, 1, 0, 0, 0]) == rep.state_floats
        assert int(r.columns["ops_per_step"][p, 1, 0, 0, 0]) == rep.ops_per_step
        assert int(r.columns["params"][p, 0, 0, 0, 0]) == rep.params


def test_kernel_parameters_split_by_structure():
    grid = {"stem_kt": [3, 5, 7], "block_kt": [1, 3, 5]}
    r = design_sweep("x3d-m", grid, clips=[8, 16], sizes=[160], profile="continual-inference")
    assert r.valid.all()
    _check_points("x3d-m", grid, r, 18, profile="continual-inference")


def test_resnet_and_slowfast_parameters():
    grid = {"width": [32, 64], "res2_kt": [1, 3]}
    r = design_sweep("i3d-r50", grid, clips=[8, 16], sizes=[112])
    _check_points("i3d-r50", grid, r, 8)
    # SlowFast: alpha sets the slow pathway's stride, and the spec requires clip % alpha == 0
    grid = {"alpha": [2, 4, 8], "beta_inv": [4, 8]}
    r = design_sweep("slowfast-8x8-r50", grid, clips=[16, 24, 32], sizes=[128])
    for p, (alpha, _) in enumerate(r.param_rows):
        for i, clip in enumerate([16, 24, 32]):
            assert bool(r.valid[p, i, 0]) == (clip % alpha == 0)
    _check_points("slowfast-8x8-r50", grid, r, 18)


def test_blocks_stream_in_order():
    grid = {"width_factor": parse_values("1..2:0.25", "w"), "depth_factor": [1, 2, 3]}
    ds = Grid("x3d-m", grid, [8, 16], [128, 160])
    blocks = list(ds.blocks(block_points=8))   # two designs a block
    rows = [tuple(row) for b in blocks for row in b.param_rows]
    assert rows == list(itertools.product(*grid.values()))
    whole = next(Grid("x3d-m", grid, [8, 16], [128, 160]).blocks())
    joined = "\n".join(b.text_rows("csv") for b in blocks)
    assert joined == whole.text_rows("csv")


def test_solve_for_a_parameter_is_exact_at_the_boundary():
    budget = 8 * 2 ** 20
    r = solve_param("x3d-m", "width_factor", budget, "memory", size=112, batch=4, dtype="fp16")
    best, nxt = r["value"], r["next"]
    assert nxt - best == F(1, 100)

    def cost(w):
        rep = comem.analyze("x3d-m", size=112, batch=4, dtype="fp16", params={"width_factor": w}, knobs=EQUATIONS)
        return rep.total_bytes

    assert cost(best) <= budget < cost(nxt)
    assert r["cost"] == cost(best) and r["cost_next"] == cost(nxt)
    # an integer parameter, under an operations budget
    r = solve_param("x3d-m", "conv5_dim", 320_000_000, "ops")
    ops = [comem.analyze("x3d-m", params={"conv5_dim": v}).ops_per_step for v in (r["value"], r["value"] + 1)]
    assert ops[0] <= 320_000_000 < ops[1]


def test_solve_reports_non_monotone_costs():
    # widths round to multiples of 8: the cost can fall again above the first value that does not fit;
    # whatever the answer, no value it says fits may exceed the budget
    budget = 30 * 2 ** 20
    r = solve_param("x3d-m", "width_factor", budget, "memory", size=160, step=F(1, 20), hi=4)
    rep = comem.analyze("x3d-m", size=160, params={"width_factor": r["value"]}, knobs=EQUATIONS)
    assert rep.total_bytes <= budget
    if "largest_fitting" in r:
        rep = comem.analyze("x3d-m", size=160, params={"width_factor": r["largest_fitting"]}, knobs=EQUATIONS)
        assert rep.total_bytes <= budget


def test_pareto_front_is_exactly_the_non_dominated_set():
    grid = {"width_factor": parse_values("1..3:0.5", "w"), "depth_factor": parse_values("1..4:1", "d")}
    front = pareto("x3d-m", grid, clips=[16], sizes=[128, 160, 224], minimize=["total_bytes", "ops_per_step"],
                   maximize=["params"], where=["total_bytes<=40MiB"], block_points=6)
    r = design_sweep("x3d-m", grid, clips=[16], sizes=[128, 160, 224])
    pts = [dict(zip(r.headers(), row)) for row in r.rows()]
    cand = [p for p in pts if p["valid"] and p["total_bytes"] <= 40 * 2 ** 20]
    assert front.candidates == len(cand)

    def dominates(a, b):
        ge = a["total_bytes"] <= b["total_bytes"] and a["ops_per_step"] <= b["ops_per_step"] and \
            a["params"] >= b["params"]
        gt = a["total_bytes"] < b["total_bytes"] or a["ops_per_step"] < b["ops_per_step"] or \
            a["params"] > b["params"]
        return ge and gt

    brute = [p for p in cand if not any(dominates(q, p) for q in cand)]
    got = [dict(zip(front.headers, row)) for row in front.rows]
    key = ("width_factor", "depth_factor", "size")
    assert sorted(tuple(p[k] for k in key) for p in got) == sorted(tuple(p[k] for k in key) for p in brute)


def test_cli_sweep_with_parameters(cli):
    rc, out, err = cli("sweep", "x3d-m", "--set", "width_factor=1..2:0.5", "--set", "depth_factor=2.2,3",
                       "-T", "16", "-S", "160", "-f", "csv")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0])[:3] == ["width_factor", "depth_factor", "clip"]
    assert [(r["width_factor"], r["depth_factor"]) for r in rows] == [
        ("1", "2.2"), ("1", "3"), ("1.5", "2.2"), ("1.5", "3"), ("2", "2.2"), ("2", "3")]
    rep = comem.analyze("x3d-m", clip=16, size=160, params={"width_factor": F(3, 2), "depth_factor": 3})
    assert int(rows[3]["state_floats"]) == rep.state_floats
    rc, out, err = cli("sweep", "x3d-m", "--set", "width_factor=1,2", "-T", "16", "-S", "160", "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["columns"][0] == "width_factor" and [row[0] for row in d["rows"]] == [1, 2]


def test_cli_pareto_and_solve(cli):
    rc, out, err = cli("pareto", "x3d-m", "--set", "width_factor=1..2:0.5", "--set", "depth_factor=1,2", "-S",
                       "160", "--maximize", "params", "--where", "total_bytes<=16MiB", "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["front"] and all(p["total_bytes"] <= 16 * 2 ** 20 for p in d["front"])
    rc, out, err = cli("solve", "x3d-m", "--for", "width_factor", "--budget", "8MiB", "--dtype", "fp16", "--batch",
                       "4", "--size", "112", "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["cost"] <= 8 * 2 ** 20 < d["cost_next"]


@pytest.mark.parametrize("args,needle", [
    (["sweep", "x3d-m", "--set", "widthfactor=1..2"], "width_factor"),
    (["sweep", "x3d-m", "--set", "width_factor=1..2", "--set", "width_factor=3"], "twice"),
    (["sweep", "x3d-m", "--set", "width_factor=2..1"], "empty"),
    (["sweep", "x3d-m", "--set", "width_factor=1..2:0"], "step"),
    (["pareto", "x3d-m", "--set", "width_factor=2"], "range or a list"),
    (["pareto", "x3d-m", "--set", "width_factor=1,2", "--minimize", "bogus"], "bogus"),
    (["pareto", "x3d-m", "--set", "width_factor=1,2", "--where", "state_bytes~3"], "COLUMN OP NUMBER"),
    (["pareto", "x3d-m", "--set", "width_factor=1,2", "--where", "state_bytes<=lots"], "state_bytes"),
    (["pareto", "x3d-m", "--set", "width_factor=1,2", "--where", "statebytes<=8MiB"], "state_bytes"),
    (["solve", "x3d-m", "--for", "bogus", "--budget", "8MiB"], "bogus"),
    (["solve", "x3d-m", "--for", "width_factor", "--budget", "1KiB"], "nothing fits"),
    (["solve", "x3d-m", "--for", "width_factor", "--budget", "8MiB", "--step", "-1"], "step"),
])
def test_design_bad_inputs(cli, args, needle):
    rc, out, err = cli(*args)
    assert rc == 2, (out, err)
    assert err.strip().count("\n") == 0 and needle in err and "Traceback" not in err, err
