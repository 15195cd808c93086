"""Appendix A of Hedegaard & Iosifidis (ECCV 2022), reproduced row by row.

Every expected number below is copied from the paper (the appendix text in
../shared/seed and the main-paper figures in ../shared/reference), never
from comem's output.
"""
import pytest

import comem

# Table 4 "CoX3D-M state memory consumption by layer": (stage, layer, printed value)
TABLE_4 = [
    ("conv_1", "conv_T", 1_204_224),        # (5-1)x24x112x112
    ("res2", "residual_1", 301_056),        # (3-1-1)x24x112x112
    ("res2", "residual_2-3", 150_528),      # [(3-1-1)x24x56x56]x2
    ("res2", "conv_1-3", 508_032),          # [(3-1-1)x54x56x56]x3   (printed; erratum)
    ("res3", "residual_1", 75_264),         # (3-1-1)x24x56x56
    ("res3", "residual_2-5", 150_528),      # [(3-1-1)x48x28x28]x4
    ("res3", "conv_1-5", 846_720),          # [(3-1)x108x28x28]x5
    ("res4", "residual_1", 37_632),         # (3-1-1)x48x28x28
    ("res4", "residual_2-11", 188_160),     # [(3-1-1)x96x14x14]x10
    ("res4", "conv_1-11", 931_392),         # [(3-1)x216x14x14]x11
    ("res5", "residual_1", 18_816),         # (3-1-1)x96x14x14
    ("res5", "residual_2-7", 56_448),       # printed "residual_2-3" with x6 (label erratum)
    ("res5", "conv_1-7", 296_352),          # printed "conv_1-3" with x7 (label erratum)
    ("pool_5", "-", 6_480),                 # (16-1)x432
]


@pytest.fixture(scope="module")
def m16():
    return comem.analyze("x3d-m", clip=16, size=224, profile="paper")


def test_table4_rows(m16):
    got = [(b.stage, b.group, b.value) for b in m16.breakdown]
    assert got == TABLE_4


def test_table4_formulas_printed(m16):
    formulas = {(b.stage, b.group): b.formula for b in m16.breakdown}
    assert formulas[("conv_1", "conv_T")] == "(5−1)×24×112×112"
    assert formulas[("res2", "residual_1")] == "(3−1−1)×24×112×112"
    assert formulas[("res2", "conv_1-3")] == "[(3−1−1)×54×56×56]×3"
    assert formulas[("res3", "conv_1-5")] == "[(3−1)×108×28×28]×5"
    assert formulas[("pool_5", "-")] == "(16−1)×432"


def test_totals_clip16(m16):
    # "The total memory overhead for the network state is 4,771,632"
    assert m16.state_floats == 4_771_632
    # "24 x 112 x 112 = 301,056 floats"
    assert m16.transient_floats == 301_056
    # "The total worst-case memory consumption for CoX3D-M ... is thus 5,072,688 floats"
    assert m16.total_floats == 5_072_688


def test_clip_4_and_64():
    # "reduce the model clip size from 16 to 4 ... reduction of 5,184 floats ... total 5,067,504"
    r4 = comem.analyze("x3d-m", clip=4)
    assert r4.total_floats == 5_067_504
    # "Increasing the clip size to 64 ... increased state memory of 20,736 floats ... 5,093,424"
    r64 = comem.analyze("x3d-m", clip=64)
    assert r64.total_floats == 5_093_424
    r16 = comem.analyze("x3d-m", clip=16)
    assert r16.state_floats - r4.state_floats == 5_184
    assert r64.state_floats - r16.state_floats == 20_736


def test_regular_worst_case_sec37(m16):
    # Sec. 3.7: the regular X3D-M keeping its clip's prior frames: 7,074,816 floats
    assert m16.regular_total_floats == 7_074_816


def test_res2_erratum_is_marked_with_consistent_value(m16):
    rows = [b for b in m16.breakdown if b.erratum]
    assert [(b.stage, b.group) for b in rows] == [("res2", "conv_1-3")]
    # Eq. (5): (3-1) x 54 x 56 x 56 x 3, derived by hand
    assert rows[0].consistent == (3 - 1) * 54 * 56 * 56 * 3 == 1_016_064
    assert m16.state_floats_consistent == 4_771_632 - 508_032 + 1_016_064
    ids = {e["id"] for e in m16.errata}
    assert {"A.T4.res2-conv", "A.transient", "A.T4.res5-labels"} <= ids
    # the largest single map: res2 block 1 expands 24 -> 54 channels at 112x112 before its stride
    assert m16.transient_floats_consistent == 54 * 112 * 112


def test_erratum_is_data_not_formula():
    # With the erratum switched off the paper profile follows Eq. (5) everywhere.
    r = comem.analyze("x3d-m", knobs={"errata": "consistent"})
    assert r.state_floats == 4_771_632 - 508_032 + 1_016_064
    assert not any(b.erratum for b in r.breakdown)


@pytest.mark.parametrize("model,delay,rf,pad", [
    # Sec. 3.6: receptive field 69/72/130, padding 28/28/57, 40/43/72 frames to steady state
    ("x3d-s", 40, 69, 28),
    ("x3d-m", 43, 72, 28),
    ("x3d-l", 72, 130, 57),
])
def test_delay_and_receptive_field_sec36(model, delay, rf, pad):
    r = comem.analyze(model)
    assert (r.delay, r.receptive_field, r.temporal_padding) == (delay, rf, pad)


@pytest.mark.parametrize("model,rf16,rf64", [
    # Table 3: receptive field at pool 16 / 64
    ("x3d-s", 72, 120), ("x3d-m", 72, 120), ("x3d-l", 130, 178),
])
def test_receptive_field_table3(model, rf16, rf64):
    assert comem.analyze(model, clip=16).receptive_field == rf16
    assert comem.analyze(model, clip=64).receptive_field == rf64


@pytest.mark.parametrize("model,params", [
    # Table 1 parameter counts (M, two decimals)
    ("x3d-xs", 3.79), ("x3d-s", 3.79), ("x3d-m", 3.79), ("x3d-l", 6.15), ("i3d-r50", 28.04),
    ("slow-8x8-r50", 32.45),
])
def test_params_table1(model, params):
    assert round(comem.analyze(model).params / 1e6, 2) == params


@pytest.mark.parametrize("model,gflops", [
    # Table 1 regular-model FLOPs (G) as counted by ptflops
    ("x3d-xs", 0.64), ("x3d-s", 2.06), ("x3d-m", 4.97), ("x3d-l", 19.17), ("i3d-r50", 28.61),
    ("slow-8x8-r50", 54.87),
])
def test_clip_flops_table1(model, gflops):
    assert round(comem.analyze(model).ops_per_clip / 1e9, 2) == gflops


def test_x3d_m_raw_clip_count():
    # the raw ptflops count published with the code
    assert comem.analyze("x3d-m").ops_per_clip == 4_970_008_352


@pytest.mark.parametrize("model,clip,size", [
    ("x3d-xs", 4, 160), ("x3d-s", 13, 160), ("x3d-m", 16, 224), ("x3d-l", 16, 312), ("i3d-r50", 8, 224),
    ("slow-8x8-r50", 8, 256),
])
def test_default_clip_and_size(model, clip, size):
    r = comem.analyze(model)
    assert (r.clip, r.size) == (clip, size)
    assert r.to_dict()["layers"][-1]["output"][0] == 400  # 400 classes
