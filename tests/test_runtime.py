"""On the device: peak allocated memory, the executed convention, the
roofline, the paper's hardware tables.

Peak terms are checked against a real eager run on CPU (parameters and
buffers, the input, ``get_state()``, and a live-tensor tracker over the
forward); executed work against the convolutions the library dispatches;
roofline arithmetic against hand derivations written here; published
figures come from the paper (Table 1, Table 6, Appendix C).
"""
import json
import textwrap

import pytest

import comem
from comem.device.roofline import predict
from comem.model.runtime import round_block, runtime_peak

# --- the runtime peak, term by term ------------------------------------------------


def test_cuda_blocks_round_to_512_bytes():
    assert [round_block(n, 512) for n in (0, 1, 512, 513, 8)] == [0, 512, 512, 1024, 512]
    # X3D-M: 505 parameter and buffer tensors, each its own block under CUDA, none under the CPU allocator
    cuda, cpu = runtime_peak("x3d-m", device="cuda"), runtime_peak("x3d-m", device="cpu")
    assert cpu.regular.rounding == 0 and cuda.regular.rounding > 0
    assert cuda.regular.weights == cpu.regular.weights == comem.analyze("x3d-m").params * 4 + _bn_buffers("x3d-m")


def _bn_buffers(model):
    """running mean + variance (2C floats) and an int64 counter per batch norm, by hand from the rows."""
    r = comem.analyze(model)
    return sum((2 * row.cfg["c"] * 4 + 8) * row.multiplicity for row in r.rows if row.kind.name == "batchnorm")


def test_weights_and_input_terms_by_hand():
    rt = runtime_peak("x3d-m", clip=16, size=224, dtype="fp16", batch=4, device="cpu")
    assert rt.regular.input == 4 * 3 * 16 * 224 * 224 * 2
    assert rt.continual.input == 4 * 3 * 224 * 224 * 2
    r = comem.analyze("x3d-m", profile="continual-inference", dtype="fp16", batch=4)
    assert rt.continual.state == r.state_floats * 2              # the library's buffers, per stream x 4
    assert rt.continual.activations == r.transient_floats * 2


@pytest.mark.validation
@pytest.mark.parametrize("model,clip,size,batch", [("x3d-xs", 4, 64, 1), ("x3d-m", 8, 64, 2), ("i3d-r50", 8, 64, 1),
                                                    ("slow-8x8-r50", 8, 64, 2), ("i3d-r50", 6, (48, 80), 3)])
def test_runtime_peak_equals_a_real_cpu_run(model, clip, size, batch):
    pytest.importorskip("torch")
    pytest.importorskip("continual")
    from comem.pytorch.measure import measure_peak

    measured = measure_peak(model, clip, size, batch=batch)
    pred = runtime_peak(model, clip, size, batch=batch, device="cpu")
    for part in ("regular", "continual"):
        m, p = getattr(measured, part), getattr(pred, part).as_dict()
        for term in ("input", "state", "activations"):
            assert m[term] == p[term], (part, term, m[term], p[term])
        # continual-inference also gives each zero-frame alignment co.Delay an int64 index (8 bytes)
        assert 0 <= m["weights"] - p["weights"] <= 8 * 64, (part, m["weights"], p["weights"])


def test_runtime_in_every_format(cli):
    rc, out, err = cli("x3d-m", "--runtime", "pytorch", "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert set(d["peak_allocated_bytes"]) == {"regular", "continual"}
    terms = d["peak_allocated_terms"]["continual"]
    assert terms["total"] == sum(terms[k] for k in ("weights", "input", "state", "activations", "rounding"))
    assert d["peak_allocated_bytes"]["continual"] == terms["total"]
    rc, out, err = cli("x3d-m", "--runtime", "pytorch", "--device", "cpu")
    assert rc == 0 and "Peak allocated by PyTorch" in out and "requests counted exactly" in out


# --- the executed convention ---------------------------------------------------------


def test_executed_counts_the_zero_taps_by_hand():
    # a 3x3x3 conv, 4 -> 8 channels, padding 1, on 16x16 frames: the ideal step is one output frame, 27*4*8 MACs
    # a position; continual-inference convolves the frame padded by 2 in time into 3 partial frames (3x the
    # MACs), then adds the 2 stored partials to the first: 2*8*16*16 additions, and the bias: 8*16*16
    spec = _tiny_spec(textwrap.dedent("""
        [[stages]]
        name = "s"
        layers = [ { kind = "conv", out = 8, kernel = [3, 3, 3], padding = [1, 1, 1] } ]
    """), in_channels=4, size=16)
    r = comem.analyze(spec, profile="continual-inference")
    ideal = 27 * 4 * 8 * 16 * 16
    assert r.ops("macs", step=True) == ideal
    assert r.ops("executed", step=True) == 3 * ideal + 2 * 8 * 16 * 16 + 8 * 16 * 16


def test_executed_at_full_resolution():
    # the executed count equals what the library dispatches: every validation of
    # tests/test_validation.py checks 'per-step executed' (X3D-M and I3D among them)
    # CoX3D-M at 224: the 'about 386 M conv MACs against 297 M ideal'
    w = comem.analyze("x3d-m", profile="continual-inference").work_step
    assert round((w["conv_mac"] + w["conv_mac_zero_taps"]) / 1e6) == 386 and round(w["conv_mac"] / 1e6) == 297


# --- the roofline ---------------------------------------------------------------------


def _tiny_spec(stages, in_channels=3, size=8, clip=4, path=None):
    from comem.spec.load import spec_from_dict
    import tomllib

    text = f'[model]\nname = "tiny"\nclip = {clip}\nsize = {size}\nin_channels = {in_channels}\n' + stages
    return spec_from_dict(tomllib.loads(text), "<tiny>")


def test_roofline_arithmetic_by_hand():
    spec = _tiny_spec(textwrap.dedent("""
        [[stages]]
        name = "s"
        layers = [ { kind = "conv", out = 8, kernel = [3, 3, 3], padding = [1, 1, 1], bias = false },
                   { kind = "avgpool", global = true },
                   { kind = "linear", out = 2 } ]
    """))
    device = {"peak_gflops": {"fp32": 1.0}, "bandwidth_gbs": 1.0, "efficiency_compute": 1.0,
              "efficiency_memory": 1.0, "overhead_us": 0.0}
    pr = predict(spec, device, batch=1)
    # conv, one step: 3 partial frames x 27*3*8 MACs x 64 positions, plus 2*8*64 partial-sum additions
    conv_flops = 2 * 3 * 27 * 3 * 8 * 64 + 2 * 8 * 64
    # bytes: 648 weights, the 3x8x8 frame in, the 8x8x8 frame out, and the library's traffic (6(k-1)+6) x 512
    conv_bytes = 4 * (648 + 192 + 512 + 18 * 512)
    # the continual global pool (window 4): frame in, pooled frame out, writes one and reads the window of 4
    pool_bytes = 4 * (512 + 8 + 5 * 8)
    # the classifier: 16 MACs and 2 additions; 18 weights, 8 in, 2 out
    lin_flops, lin_bytes = 2 * 16 + 2, 4 * (18 + 8 + 2)
    expected = max(conv_flops, conv_bytes) + pool_bytes + max(lin_flops, lin_bytes)   # ns at 1 GFLOP/s, 1 GB/s
    assert pr.continual["seconds"] == pytest.approx(expected * 1e-9, rel=1e-12)
    assert pr.continual["per_s"] == pytest.approx(1 / (expected * 1e-9), rel=1e-9)
    bounds = {lt.kind: lt.bound for lt in pr.continual["layers"]}
    assert bounds == {"conv": "compute", "avgpool": "memory", "linear": "memory"}
    # the regular clip: 27*3*8 MACs at 4*8*8 positions; the pool reads the clip; weights once
    reg_flops = 2 * 27 * 3 * 8 * 256
    reg = max(reg_flops, 4 * (648 + 768 + 2048)) + 4 * (2048 + 8) + max(lin_flops, lin_bytes)
    assert pr.regular["seconds"] == pytest.approx(reg * 1e-9, rel=1e-12)


def test_roofline_scales_with_batch_and_device():
    one = predict("x3d-m", "rtx2080ti", batch=1)
    many = predict("x3d-m", "rtx2080ti", batch=64)
    assert many.continual["per_s"] > one.continual["per_s"]      # the per-layer overhead is shared
    tx2 = predict("x3d-m", "tx2", batch=32)
    assert tx2.dtype == "fp16"                                    # Table 6: 16-bit on the Jetsons
    with pytest.raises(comem.ComemError, match="unknown device"):
        predict("x3d-m", "gtx480")


def test_cli_predict(cli):
    rc, out, err = cli("predict", "x3d-m", "--device", "xavier", "--batch", "64", "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["dtype"] == "fp16" and d["batch"] == 64 and d["speedup"] > 1
    assert d["peak_allocated_bytes"]["continual"] < d["device_memory_bytes"]
    rc, out, err = cli("predict", "x3d-m", "--device", "nope")
    assert rc == 2 and "unknown device profile" in err


# --- the paper's hardware tables ---------------------------------------------------------


def test_table1_memory_within_twelve_percent():
    from comem.reproduce.co3d import load_published, table1_memory

    t = table1_memory(load_published())
    assert len(t.rows) == 20   # Table 1: 10 clip and 10 frame rows with a Mem. figure
    for row in t.rows:
        assert abs(float(row[3])) <= 12.0, row  # a Percent: the relative error as a number


def test_table6_and_rcu(cli):
    rc, out, err = cli("paper", "--table", "6", "--table", "rcu", "-f", "json")
    assert rc == 0, err
    tables = json.loads(out)
    (t6,) = [v for k, v in tables.items() if k.startswith("Table 6")]
    assert len(t6) == 15                               # Table 6: 10 clip and 5 frame configurations
    x3d_m = next(r for r in t6 if r["model"] == "X3D-M")
    assert [x3d_m[k] for k in ("CPU batch", "TX2 batch", "Xavier batch", "RTX 2080 Ti batch")] == [1, 32, 64, 64]
    (rcu,) = [v for k, v in tables.items() if "RCU" in k][0]
    # Appendix C: 28.6 / 41.0 * 54.0 / 8 = 4.71
    assert rcu["Appendix C recomputed"] == round(28.6 / 41.0 * 54.0 / 8, 2) == 4.71


@pytest.mark.validation
def test_bench_measures_and_compares(cli, tmp_path):
    pytest.importorskip("continual")
    from comem.device.latency import DeviceProfile, profile_toml

    flat = {"fixed_us": 20.0, "gflops": 5.0, "gbs": 5.0}
    prof = DeviceProfile("flat", "a flat profile", "calibrated", peak_gflops={"fp32": 10.0},
                         classes={"clip": {"default": flat}, "step": {"default": flat}})
    (tmp_path / "flat.toml").write_text(profile_toml(prof))
    rc, out, err = cli("bench", "x3d-xs", "--size", "64", "--runs", "3", "--fps", "30", "--profile",
                       str(tmp_path / "flat.toml"), "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    reg, co = d["regular"], d["continual"]
    # MFU: executed FLOPs per second over the profile's 10 GFLOP/s
    assert reg["mfu"] == pytest.approx(reg["flops"] * reg["clips_per_s"] / 10e9, rel=1e-9)
    assert co["mfu"] == pytest.approx(co["flops"] * co["frames_per_s"] / 10e9, rel=1e-9)
    assert d["speedup"] == pytest.approx(co["frames_per_s"] / reg["clips_per_s"], rel=1e-12)
    assert d["keeps_up"] == {"regular": reg["clips_per_s"] >= 30, "continual": co["frames_per_s"] >= 30}
    assert d["predicted"]["device"] == "flat" and d["predicted"]["regular"]["clips_per_s"] > 0
    for key in ("clips_per_s", "peak_allocated_bytes", "latency_ms"):
        assert d["regular"][key] > 0
    assert d["continual"]["frames_per_s"] > 0
    assert d["predicted"]["regular"]["peak_allocated_bytes"] == d["regular"]["peak_allocated_bytes"]
    assert 0 <= d["continual"]["peak_allocated_bytes"] - d["predicted"]["continual"]["peak_allocated_bytes"] <= 512
