"""Accounting that never shifts under a what-if (issue: "One truth per
number"): errata tied to their network and accounting, three accountings side
by side, weights, the ResNet heads as the SlowFast reference builds them, and
the int64 indices of continual max pools.

Expected numbers are hand derivations written here, the paper (Appendix A),
or measurements of PyTorch / continual-inference modules built in this file
from the reference code's own formulas.
"""
import json

import pytest

import comem

# Appendix A (printed) and the res2 erratum by hand: (3-1)x54x56x56x3 replaces (3-1-1)x54x56x56x3
PAPER_STATE = 4_771_632
CONSISTENT_STATE = PAPER_STATE - (3 - 1 - 1) * 54 * 56 * 56 * 3 + (3 - 1) * 54 * 56 * 56 * 3
SE_CHANNELS = 2 * 54 + 3 * 108 + 6 * 216 + 4 * 432  # SE in every other block of res2-res5 (3/5/11/7 blocks)


@pytest.mark.parametrize("knob,value", [("transient", "liveness"), ("transient", "largest-map"),
                                        ("transient", "library"), ("se_pool", "frame")])
def test_errata_do_not_move_with_an_unrelated_knob(knob, value):
    r = comem.analyze("x3d-m", knobs={knob: value})
    assert r.state_floats == PAPER_STATE                      # the printed Table 4 state stays
    assert r.knobs["errata"] == "printed"
    assert any(e["id"] == "A.T4.res2-conv" for e in r.errata)


def test_what_if_delta_contains_only_what_was_changed(cli):
    rc, out, err = cli("compare", "x3d-m:knob.se_pool=frame", "x3d-m:knob.se_pool=clip-causal", "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    a, b = d["x3d-m:knob.se_pool=frame"], d["x3d-m:knob.se_pool=clip-causal"]
    # keeping the SE pooling over the past 16 frames: 15 kept pooled frames per SE channel
    assert b["state_floats"] - a["state_floats"] == 15 * SE_CHANNELS == 51_840


def test_errata_knob_alone_decides_printed_or_consistent():
    r = comem.analyze("x3d-m", knobs={"errata": "consistent"})
    assert r.state_floats == CONSISTENT_STATE == 5_279_664
    # the transient erratum's consistent rule: res2's 1x1x1 expansion, 54 x 112 x 112
    assert r.transient_floats == 54 * 112 * 112
    # ... and with a conv_state the printed number was not made under, the erratum does not apply
    lib = comem.analyze("x3d-m", knobs={"conv_state": "library-buffer"})
    assert not any(e["id"] == "A.T4.res2-conv" for e in lib.errata)


def test_same_network_same_numbers_whatever_its_name():
    m = comem.analyze("x3d-m", size=160, clip=16).summary()
    s = comem.analyze("x3d-s", size=160, clip=16).summary()
    for key in ("state_floats", "transient_floats", "ops_per_step", "ops_per_clip", "params", "delay"):
        assert m[key] == s[key], key
    assert comem.analyze("x3d-xs", clip=16, size=160).state_floats == m["state_floats"]
    # X3D-L is another network (depth 5.0): no X3D-M errata there, nor on x3d-m with that depth
    ml = comem.analyze("x3d-m", size=312, params={"depth_factor": "5.0"})
    xl = comem.analyze("x3d-l")
    assert (ml.state_floats, ml.errata, xl.errata) == (xl.state_floats, [], [])
    assert any("not applied" in n for n in ml.notes)
    # setting a parameter to its own value keeps the network
    assert comem.analyze("x3d-m", params={"depth_factor": "2.2"}).state_floats == PAPER_STATE


def test_three_accountings_side_by_side(cli):
    rc, out, err = cli("x3d-m", "-f", "json")
    d = json.loads(out)
    acc = d["accountings"]
    assert (acc["paper"]["state_floats"], acc["paper"]["transient_floats"]) == (PAPER_STATE, 301_056)
    assert acc["paper-consistent"]["state_floats"] == CONSISTENT_STATE
    assert acc["paper-consistent"]["total_floats"] == CONSISTENT_STATE + 54 * 112 * 112
    ci = comem.analyze("x3d-m", profile="continual-inference")
    assert acc["continual-inference"]["state_floats"] == ci.state_floats
    assert 2.4 < acc["continual-inference"]["state_floats"] / PAPER_STATE < 3.0
    assert d["state_floats"] == PAPER_STATE  # the top level is the selected profile's
    rc, out, err = cli("x3d-m")
    assert "Accountings" in out and "paper-consistent" in out and "continual-inference" in out


def test_weights_in_the_memory_picture():
    r = comem.analyze("x3d-m", dtype="fp16", batch=4)
    assert r.weights["trainable"] == 3_794_322 * 2         # Table 1 params x 2 bytes, held once for 4 streams
    # and the batch norms' running statistics (2 x C halves) and int64 num_batches_tracked (8 bytes) of each
    assert r.weights_bytes == 3_794_322 * 2 + r.weights["buffers"] and r.weights["frozen"] == 0
    assert r.total_bytes_incl_weights == r.total_bytes + r.weights_bytes
    assert r.state_bytes == r.state_floats * 2 and r.total_bytes == r.total_floats * 2
    d = r.summary()
    assert d["weights"]["trainable"] == 3_794_322 * 2 and d["weights_bytes"] == r.weights_bytes


def test_solve_with_weights():
    from comem.analyses.solve import solve

    budget = 64 * 2 ** 20
    r = solve("x3d-m", "batch", budget_bytes=budget, dtype="fp16", include_weights=True)
    one = comem.analyze("x3d-m", dtype="fp16")
    per_stream, weights = one.total_bytes, one.weights_bytes
    assert r["value"] == (budget - weights) // per_stream      # by hand: weights once, state per stream
    s = solve("x3d-m", "size", budget_bytes=budget, dtype="fp16", batch=2, include_weights=True)
    a = comem.analyze("x3d-m", dtype="fp16", batch=2, size=s["value"])
    b = comem.analyze("x3d-m", dtype="fp16", batch=2, size=s["value"] + 1)
    assert a.total_bytes_incl_weights <= budget < b.total_bytes_incl_weights


# ---------------------------------------------------------------------------
# ResNet heads: SlowFast's ResNetBasicHead pools [T // pool1_t, crop // 32, crop // 32] with stride 1

def _res5_side(crop):
    """By hand: stem 7x7 s2 p3, max pool 3x3 s2 p1, then three stride-2 3x3 p1 stages."""
    h = (crop + 2 * 3 - 7) // 2 + 1
    h = (h + 2 - 3) // 2 + 1
    for _ in range(3):
        h = (h + 2 - 3) // 2 + 1
    return h


@pytest.mark.parametrize("crop", [112, 176, 200, 224])
def test_resnet_head_is_not_global_off_multiples_of_32(crop):
    r = comem.analyze("i3d-r50", size=crop)
    pool = next(x for x in r.rows if x.path == "pool_5.pool")
    side = _res5_side(crop) - crop // 32 + 1
    assert (pool.y.h, pool.y.w) == (side, side)
    assert side == (2 if crop % 32 else 1)
    proj = next(x for x in r.rows if x.path == "fc.projection")
    assert proj.work_clip["linear_mac"] == 2048 * 400 * side * side  # the projection runs on every position


@pytest.mark.validation
@pytest.mark.parametrize("model,crop,clip", [("i3d-r50", 112, 8), ("i3d-r50", 176, 8), ("slow-8x8-r50", 200, 8),
                                            ("i3d-r50", 200, 6)])
def test_resnet_heads_equal_the_reference_code(model, crop, clip):
    """The head built the way facebookresearch/SlowFast (head_helper.ResNetBasicHead) and
    co3d (CoResNetBasicHead) build it, measured, against comem's pool_5 + fc rows."""
    torch = pytest.importorskip("torch")
    co = pytest.importorskip("continual")
    from ptflops import get_model_complexity_info
    from torch import nn

    pool1_t = 2 if model == "i3d-r50" else 1
    t5, h5 = clip // pool1_t, _res5_side(crop)
    pool_size = [clip // pool1_t, crop // 32, crop // 32]

    class ResNetBasicHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.avg_pool = nn.AvgPool3d(pool_size, stride=1)
            self.dropout = nn.Dropout(0.5)
            self.projection = nn.Linear(2048, 400, bias=True)
            self.act = nn.Softmax(dim=4)

        def forward(self, x):
            x = self.avg_pool(x).permute((0, 2, 3, 4, 1))
            x = self.act(self.projection(self.dropout(x)))
            return x.mean([1, 2, 3]).view(x.shape[0], -1)

    head = ResNetBasicHead().eval()
    with torch.no_grad():
        macs, params = get_model_complexity_info(head, (2048, t5, h5, h5), as_strings=False,
                                                 print_per_layer_stat=False, backend="pytorch",
                                                 backend_specific_config={"count_functional": False}, verbose=False)
    r = comem.analyze(model, size=crop, clip=clip)
    rows = [x for x in r.rows if x.stage in ("pool_5", "fc")]
    assert sum(x.params * x.multiplicity for x in rows) == params
    from comem.accounting.conventions import weigh
    assert sum(weigh(x.work_clip, "ptflops") * x.multiplicity for x in rows) == int(macs)
    # the continual head's pool (co3d: co.AvgPool3d(pool_size, stride=1)) holds its window of pooled maps
    copool = co.AvgPool3d(pool_size, stride=1).eval()
    with torch.no_grad(), co.call_mode("forward_step"):
        for _ in range(pool_size[0] + 2):
            copool(torch.randn(1, 2048, h5, h5))
    held = sum(t.numel() for t in copool.get_state() if t.is_floating_point())
    ci = comem.analyze(model, size=crop, clip=clip, profile="continual-inference")
    assert next(x.state for x in ci.rows if x.path == "pool_5.pool") == held


# ---------------------------------------------------------------------------
# continual max pools hold int64 indices until they return

MAXPOOL_SPEC = """
[model]
name = "maxpool-net"
clip = 4
size = 16
[[stages]]
name = "s"
layers = [
  { kind = "conv", out = 8, kernel = [1, 1, 1], bias = false },
  { kind = "maxpool", kernel = [1, 1, 1] },
  { kind = "conv", out = 4, kernel = [1, 1, 1], bias = false },
]
"""


def test_max_pool_indices_in_the_library_transient(tmp_path):
    spec = tmp_path / "maxpool-net.toml"
    spec.write_text(MAXPOOL_SPEC)
    n = 8 * 16 * 16  # one pooled frame
    # by hand: the pool's input (n), the spatially pooled frame (n), the temporal max (n) and its
    # n int64 indices (8 bytes: 2 fp32 values, 4 fp16 values)
    r32 = comem.analyze(str(spec), profile="continual-inference")
    assert r32.transient_floats == 5 * n and r32.transient_bytes == 5 * n * 4
    r16 = comem.analyze(str(spec), profile="continual-inference", dtype="fp16")
    assert r16.transient_floats == 7 * n and r16.transient_bytes == 7 * n * 2


@pytest.mark.validation
def test_max_pool_indices_measured(tmp_path):
    pytest.importorskip("continual")
    from comem.pytorch.validate import validate

    spec = tmp_path / "maxpool-net.toml"
    spec.write_text(MAXPOOL_SPEC)
    v = validate(str(spec))
    assert v.ok, [(c.group, c.quantity, c.analytic, c.measured) for c in v.failures]
    peak = next(c for c in v.checks if c.quantity.startswith("transient peak"))
    assert peak.measured == 5 * 8 * 16 * 16 * 4
