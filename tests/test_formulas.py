"""Per-kind formulas against hand derivations written here."""
from fractions import Fraction

import pytest

from comem.core import shim
from comem.layers import KINDS
from comem.layers.base import Shape, conv_out
from comem.accounting.profiles import get_profile


class Ctx:
    def __init__(self, profile="paper", **knobs):
        self.knobs = get_profile(profile, **knobs).as_dict()


def conv_cfg(c_in, **raw):
    vals = dict(raw)
    return KINDS["conv"].configure(raw, lambda k, d: vals.get(k, d), c_in)


def test_conv_output_shape_and_params():
    cfg = conv_cfg(24, out=54, kernel=[3, 3, 3], stride=[1, 2, 2], padding=[1, 1, 1], groups=1, bias=False)
    x = Shape(24, 16, 112, 112)
    y = KINDS["conv"].output(cfg, x)
    # floor((112 + 2 - 3)/2) + 1 = 56
    assert y == Shape(54, 16, 56, 56)
    assert KINDS["conv"].params(cfg, x) == 54 * 24 * 27


def test_depthwise_conv_macs_step_and_clip():
    cfg = conv_cfg(54, out=54, kernel=[3, 3, 3], stride=[1, 2, 2], padding=[1, 1, 1], groups=54, bias=False)
    x = Shape(54, 16, 112, 112)
    y = KINDS["conv"].output(cfg, x)
    clip = KINDS["conv"].work(cfg, x, y, False, Ctx().knobs)
    step = KINDS["conv"].work(cfg, x, y, True, Ctx().knobs)
    # per output position: 3*3*3 taps * (54/54) input channels * 54 outputs
    assert clip["conv_mac"] == 27 * 54 * 16 * 56 * 56
    assert step["conv_mac"] == 27 * 54 * 56 * 56
    assert "conv_bias" not in clip


@pytest.mark.parametrize("layout,expected", [
    ("partial-outputs", (3 - 1) * 54 * 56 * 56),          # Eq. (5)
    ("library-buffer", (3 - 1) ** 2 * 54 * 56 * 56),      # co.Conv3d.init_state repeats (k-1) frames k-1 times
    ("input-frames", (3 - 1) * 54 * 112 * 112),           # raw input frames
])
def test_conv_state_layouts(layout, expected):
    cfg = conv_cfg(54, out=54, kernel=[3, 3, 3], stride=[1, 2, 2], padding=[1, 1, 1], groups=54, bias=False)
    x = Shape(54, 16, 112, 112)
    y = KINDS["conv"].output(cfg, x)
    ctx = Ctx(conv_state=layout)
    assert KINDS["conv"].state(cfg, x, y, ctx.knobs) == expected


def test_conv_delay_eq7():
    cfg = conv_cfg(24, out=24, kernel=[5, 1, 1], padding=[2, 0, 0], groups=24)
    rf, pad, stride = KINDS["conv"].temporal(cfg, Shape(24, 16, 112, 112), Ctx().knobs)
    assert rf - 1 - pad == 5 - 2 - 1  # d_T (k_T - p_T - 1)


@pytest.mark.parametrize("pool_state,expected", [("k-1", 15 * 432), ("k", 16 * 432)])
def test_global_pool_state(pool_state, expected):
    vals = {"global": True}
    cfg = KINDS["avgpool"].configure(vals, lambda k, d: vals.get(k, d), 432)
    x = Shape(432, 16, 7, 7)
    y = KINDS["avgpool"].output(cfg, x)
    assert y == Shape(432, 1, 1, 1)
    ctx = Ctx(pool_state=pool_state)
    assert KINDS["avgpool"].state(cfg, x, y, ctx.knobs) == expected
    step = KINDS["avgpool"].work(cfg, x, y, True, ctx.knobs)
    # one op per element of the incoming frame plus one per buffered pooled element
    assert step == {"avg_pool3d": 432 * 49, "temporal_pool": 16 * 432}


def test_linear_and_batchnorm():
    cfg = KINDS["linear"].configure({"out": 400}, lambda k, d: {"out": 400}.get(k, d), 2048)
    x = Shape(2048, 1, 1, 1)
    assert KINDS["linear"].params(cfg, x) == 2048 * 400 + 400
    assert KINDS["linear"].work(cfg, x, x, False, Ctx().knobs) == {"linear_mac": 2048 * 400, "linear_bias": 400}
    bn = KINDS["batchnorm"].configure({}, lambda k, d: d, 24)
    assert KINDS["batchnorm"].params(bn, Shape(24, 4, 8, 8)) == 48
    assert KINDS["batchnorm"].work(bn, Shape(24, 4, 8, 8), None, True, Ctx().knobs) == {"batchnorm": 24 * 64}


def test_shim_on_three_families():
    import numpy as np
    import sympy

    assert conv_out(224, 3, 2, 1) == 112
    arr = conv_out(np.array([224, 225, 160]), 3, 2, 1)
    assert arr.tolist() == [112, 113, 80]
    s = sympy.Symbol("size", positive=True, integer=True)
    expr = conv_out(s, 3, 2, 1)
    assert [int(expr.subs(s, v)) for v in (224, 225, 160)] == [112, 113, 80]
    assert shim.cdiv(7, 2) == 4 and shim.fdiv(7, 2) == 3
    assert shim.maximum(3, 9, 4) == 9
    assert shim.round_width(12, Fraction(2)) == 24
    # SE widths of X3D: round_width(C/16) to multiples of 8 (SlowFast _round_width)
    assert [shim.round_width(c, Fraction(1, 16)) for c in (54, 108, 216, 432)] == [8, 8, 16, 32]
