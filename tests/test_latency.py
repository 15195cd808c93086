"""The latency model (comem.device.latency), comem calibrate and the fitted
platform profiles (comem.device.calibrate).

Sources: hand derivations written here (a layer's FLOPs, bytes and calls
under a profile whose parameters the test chooses), synthetic data with
known coefficients (the fits must recover them), Spearman's coefficient
worked by hand.  No timing is asserted: speed targets are checked by
benchmarks/latency_accuracy.py."""
from __future__ import annotations

import json
import textwrap
import tomllib

import pytest

import comem
from comem.device.latency import DeviceProfile, get_profile, model_terms, predict, profile_toml, read_profile
from comem.layers.base import OP_CLASSES


def _spec(stages, clip=4, size=8, channels=4):
    from comem.spec.load import spec_from_dict

    text = f'[model]\nname = "tiny"\nclip = {clip}\nsize = {size}\nin_channels = {channels}\n' + stages
    return spec_from_dict(tomllib.loads(text), "<tiny>")


def _profile(clip=None, step=None):
    base = {"fixed_us": 10.0, "gflops": 1.0, "gbs": 1.0}
    return DeviceProfile("hand", "a profile chosen by the test", "calibrated", peak_gflops={"fp32": 4.0},
                         classes={"clip": {"default": base, **(clip or {})},
                                  "step": {"default": base, **(step or {})}})


TINY = textwrap.dedent("""
    [[stages]]
    name = "s"
    layers = [ { kind = "conv", out = 8, kernel = [3, 3, 3], padding = [1, 1, 1], bias = false },
               { kind = "relu" } ]
""")


def test_a_clip_by_hand():
    prof = _profile(clip={"conv3d_dense": {"fixed_us": 100.0, "gflops": 2.0, "gbs": 4.0},
                          "model": {"fixed_us": 50.0, "gflops": 1.0, "gbs": 1.0}})
    pr = predict(_spec(TINY), prof)
    # conv: 27·4·8 MACs at 4·8·8 positions, twice; bytes: 864 weights, the 4x4x8x8 clip in, 8x4x8x8 out,
    # and the unfolded input written and read (2 · 27·4 floats per position), 4 bytes each
    positions = 4 * 8 * 8
    conv_flops = 2 * 27 * 4 * 8 * positions
    conv_bytes = 4 * (27 * 4 * 8 + 4 * positions + 8 * positions + 2 * 27 * 4 * positions)
    conv = 100e-6 + conv_flops / 2e9 + conv_bytes / 4e9
    # ReLU (the default class): one operation per element, reads and writes 2048 floats
    relu = 10e-6 + 2048 / 1e9 + 4 * 2 * 2048 / 1e9
    assert pr.regular["seconds"] == pytest.approx(50e-6 + conv + relu, rel=1e-12)
    assert pr.regular["flops"] == conv_flops + 2048
    assert pr.regular["per_s"] == pytest.approx(1 / (50e-6 + conv + relu), rel=1e-12)
    # layers inside a network: the profile's in_network factor scales the sum
    prof.in_network = {"clip": 1.25}
    assert predict(_spec(TINY), prof).regular["seconds"] == pytest.approx(1.25 * (50e-6 + conv + relu), rel=1e-12)


def test_a_step_averages_the_layers_behind_a_temporal_stride():
    spec = _spec(textwrap.dedent("""
        [[stages]]
        name = "s"
        layers = [ { kind = "conv", out = 8, kernel = [3, 1, 1], stride = [2, 1, 1], padding = [1, 0, 0], bias = false },
                   { kind = "relu" } ]
    """))
    prof = _profile(step={"default": {"fixed_us": 0.0, "gflops": 1e6, "gbs": 1e6},   # containers: free
                          "conv3d_dense": {"fixed_us": 200.0, "gflops": 1e6, "gbs": 1e6},
                          "activation": {"fixed_us": 40.0, "gflops": 1e6, "gbs": 1e6}})
    pr = predict(spec, prof)
    weights = {lt.kind: lt.weight for lt in pr.continual["layers"]}
    assert weights["conv"] == 1 and weights["relu"] == 0.5     # the ReLU runs every 2nd step
    # by hand: the conv's fixed cost every step, the ReLU's every other; work at 1e6 GFLOP/s, 1e6 GB/s
    conv = [lt for lt in pr.continual["layers"] if lt.kind == "conv"][0]
    relu = [lt for lt in pr.continual["layers"] if lt.kind == "relu"][0]
    assert pr.continual["seconds_per_frame"] == pytest.approx(conv.seconds + relu.seconds / 2, rel=1e-12)
    assert conv.seconds == pytest.approx(200e-6, rel=1e-3) and relu.seconds == pytest.approx(40e-6, rel=1e-3)


def test_a_step_charges_every_module_its_depth():
    """continual-inference sets the call mode on every module below each
    container it calls: the root and stage sequences, a residual's
    BroadcastReduce, Parallel and branch Sequential (by hand: the ReLU inside
    the residual sits under 5 containers)."""
    spec = _spec(textwrap.dedent("""
        [blocks.res]
        type = "residual"
        shortcut = "auto"
        main = [ { kind = "relu" } ]

        [[stages]]
        name = "s"
        layers = [ { name = "r", block = "res" } ]
    """))
    terms = model_terms(spec).step
    depth = {t.path: t.calls for t in terms if t.op_class == "nesting"}
    assert depth["s.r.relu0 (nesting)"] == 5         # root, stage, BroadcastReduce, Parallel, branch
    assert sum(depth.values()) == 1 + (2 + 3 * 3 + 4) + 4 + 5   # stage; merge modules; branch; ReLU


def test_batch_shares_the_fixed_cost_and_fp16_needs_the_device():
    prof = _profile()
    one, many = predict("x3d-xs", prof, batch=1), predict("x3d-xs", prof, batch=8)
    assert many.regular["per_s"] > one.regular["per_s"]
    assert many.regular["flops"] == 8 * one.regular["flops"]
    with pytest.raises(comem.ComemError, match="no fp16 figures"):
        predict("x3d-xs", prof, dtype="fp16")
    prof.peak_gflops["fp16"] = 8.0                                # twice the fp32 peak: compute twice as fast
    half = predict("x3d-xs", prof, dtype="fp16")
    assert half.dtype == "fp16" and half.regular["per_s"] > one.regular["per_s"]


def test_every_layer_of_every_built_in_model_names_an_operation_class():
    from comem.spec.registry import builtin_names

    for name in builtin_names():
        r = comem.analyze(name)
        for row in r.rows:
            assert row.kind.op_class(row.cfg, row.x, row.y) in OP_CLASSES, (name, row.path)
            assert row.kind.op_calls(row.cfg, False) >= 1


def test_convolutions_by_their_shape():
    r = comem.analyze("x3d-xs")
    cls = {row.path: row.kind.op_class(row.cfg, row.x, row.y) for row in r.rows}
    assert cls["conv_1.conv_xy"] == "conv3d_dense"          # 1x3x3, groups 1
    assert cls["conv_1.conv_t"] == "conv3d_depthwise_temporal"   # groups = channels, a 5x1x1 kernel
    assert cls["res2.block1.res.b"] == "conv3d_depthwise_strided"    # 3x3x3, spatial stride 2
    assert cls["res2.block2.res.b"] == "conv3d_depthwise"
    assert cls["res2.block1.res.a"] == "conv3d_pointwise"   # 1x1x1
    g = comem.analyze("st-gcn")
    assert {row.kind.op_class(row.cfg, row.x, row.y) for row in g.rows if row.kind.name == "conv"} \
        <= {"conv2d_dense", "conv2d_pointwise"}


def test_profile_toml_round_trip(tmp_path):
    prof = _profile(clip={"conv3d_depthwise": {"fixed_us": 3.5, "gflops": 12.25, "gbs": 7.0}})
    prof.provenance = {"cpu": "a CPU", "threads": 1, "torch": "2.x", "date": "2026-01-01T00:00:00+00:00"}
    prof.in_network = {"clip": 1.5, "step": 1.25}
    path = tmp_path / "p.toml"
    path.write_text(profile_toml(prof))
    back = read_profile(path)
    assert back.classes == prof.classes and back.provenance == prof.provenance and back.in_network == prof.in_network
    assert back.params("clip", "conv2d_depthwise") == prof.classes["clip"]["default"]   # no family entry
    path.write_text("[device]\nname = 'x'\n[classes.clip]\nconv3d_dense = { fixed_us = -1, gflops = 1, gbs = 1 }\n")
    with pytest.raises(comem.ComemError, match="non-negative"):
        read_profile(path)
    with pytest.raises(comem.ComemError, match="comem calibrate"):
        read_profile(tmp_path / "missing.toml")


def test_this_machine_is_never_calibrated_on_the_fly(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COMEM_CONFIG_DIR", str(tmp_path))
    rc, out, err = cli("predict", "x3d-xs")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "comem calibrate" in err and str(tmp_path) in err
    # a profile saved there is what 'this' reads
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "this.toml").write_text(profile_toml(_profile()))
    rc, out, err = cli("predict", "x3d-xs", "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["device"] == "hand" and d["regular"]["per_s"] > 0


def test_nnls_recovers_known_coefficients():
    from comem.device.calibrate import nnls_relative

    truth = [2e-6, 0.0, 3e-9]
    rows = [[1, 1e5 * k, 1e6 / k] for k in (1, 2, 3, 5, 8)]
    t = [sum(a * b for a, b in zip(r, truth)) for r in rows]
    got = nnls_relative(rows, t)
    assert got[1] == 0 and got[0] == pytest.approx(truth[0], rel=1e-9) and got[2] == pytest.approx(truth[2], rel=1e-9)


def test_a_platform_fit_recovers_a_known_device():
    """Rows made by a profile with known parameters: the fit finds them and
    every leave-one-out prediction is exact."""
    from comem.device.calibrate import _profile_from_coef, fit_platform, platform_rows

    rows = platform_rows("xavier")
    truth = _profile_from_coef([1 / 300e9, 1 / 20e9, 1 / 80e9, 40e-6, 150e-6], "xavier", "fp16", {})
    synthetic = []
    for label, co, batch, dtype, _, mt in rows:
        pr = predict(None, truth, batch, dtype, terms=mt)
        synthetic.append((label, co, batch, dtype, pr.continual["per_s"] if co else pr.regular["per_s"], mt))
    prof, loo = fit_platform("xavier", synthetic)
    assert prof.classes["clip"]["default"]["gflops"] == pytest.approx(300, rel=1e-6)
    assert prof.classes["clip"]["conv_depthwise"]["gflops"] == pytest.approx(20, rel=1e-6)
    assert prof.classes["step"]["default"]["fixed_us"] == pytest.approx(150, rel=1e-6)
    assert all(p == pytest.approx(m, rel=1e-6) for _, m, _, p in loo)
    assert prof.loo["median_abs_error"] == 0 and prof.loo["spearman"] == 1


def test_spearman_by_hand():
    from comem.device.calibrate import spearman

    # ranks 1 2 3 4 against 1 2 4 3: 1 - 6·(0+0+1+1)/(4·15) = 0.8
    assert spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)


def test_built_in_platform_profiles_are_fitted(cli):
    for name in ("cpu", "tx2", "xavier", "rtx2080ti"):
        prof = get_profile(name)
        assert prof.origin == "fitted" and prof.loo["rows"] == 20
        assert 0 <= prof.loo["within_25"] <= 1
    assert get_profile("xavier").dtype == "fp16" and get_profile("cpu").dtype == "fp32"
    rc, out, err = cli("calibrate", "--platform", "tx2", "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["origin"] == "fitted" and len(d["rows"]) == 20
    # the printed leave-one-out figures are those of its rows
    errs = sorted(abs(r["leave_one_out"] / r["published"] - 1) for r in d["rows"])
    assert d["loo"]["median_abs_error"] == pytest.approx((errs[9] + errs[10]) / 2, abs=1e-4)
    rc, out, err = cli("predict", "x3d-m", "--device", "gtx480")
    assert rc == 2 and "unknown device profile" in err and "comem calibrate" in err


def test_calibration_cases_cover_the_classes_the_models_use():
    from comem.device.calibrate import load_cases
    from comem.device.latency import features

    covered = {k for c in load_cases() for k in features(c.terms, "clip", lambda k: k)}
    used = {t.op_class for m in ("x3d-xs", "r2plus1d-18", "i3d-r50", "st-gcn", "s-tr", "cooadtr-b2")
            for t in model_terms(m).regular}
    assert used <= covered, used - covered


@pytest.mark.validation
def test_calibrate_times_cases_and_refuses_a_noisy_machine(monkeypatch):
    pytest.importorskip("continual")
    from comem.device import calibrate as cal

    only = ["identity-1", "identity-8", "relu-16", "relu-48"]
    prof, cases = cal.calibrate(threads=1, budget=0.02, only=only, force=True)
    assert prof.provenance["threads"] == 1 and prof.provenance["torch"]
    assert all(c.clip_s > 0 and c.step_s > 0 for c in cases)
    assert {"model", "none", "activation"} <= set(prof.classes["clip"]) and "activation" in prof.classes["step"]
    monkeypatch.setattr(cal, "_time", lambda fn, budget: (fn(), 1e-3, 0.5)[1:])   # every timing spreads 50 %
    with pytest.raises(comem.ComemError, match="too noisy"):
        cal.calibrate(threads=1, budget=0.02, only=only)
