"""``conv`` — a 3D convolution (``nn.Conv3d`` / ``co.Conv3d``).

Spec fields: ``out`` (output channels, default = input channels),
``kernel`` ``[k_T, k_H, k_W]``, ``stride``, ``padding``, ``dilation``
(each an int or a 3-list), ``groups`` (may be ``"c_in"`` for depthwise),
``bias`` (default true, as in PyTorch).

Formulas (one instance; ``n_T, n_H, n_W`` output size, ``g`` groups):

* params  = ``c_O·(c_I/g)·k_T·k_H·k_W + b·c_O``
* MACs per clip = ``k_T·k_H·k_W·(c_I/g)·c_O·n_T·n_H·n_W``; per step the same
  with one output frame (the paper's Eq. 4: a continual convolution applies
  the whole kernel to each incoming frame)
* state, by the ``conv_state`` knob:

  - ``partial-outputs`` (paper Eq. 5): ``d_T·(k_T−1)·c_O·n_H·n_W`` — the
    partial sums of the ``k_T−1`` output frames still being accumulated;
  - ``library-buffer`` (continual-inference 1.2.4): ``(k_T−1)²·c_O·n_H·n_W``
    — ``co.Conv3d.init_state`` repeats the ``(k_T−1)``-frame partial output
    ``k_T−1`` times (``padding.repeat([k_T−1, 1, …])``) and only ever reads
    its diagonal; zero when ``k_T = 1`` (stateless);
  - ``input-frames``: ``d_T·(k_T−1)·c_I·H_in·W_in`` — keeping raw input
    frames instead, as a streaming regular convolution would.

* delay (Eq. 7) = ``d_T·(k_T−1) − p_T`` (receptive field ``k_T+(k_T−1)(d_T−1)``)
"""
from __future__ import annotations

from .. import shim
from ..errors import ComemError
from .base import LayerKind, Shape, conv_out, shape_symbols


def triple(v, what):
    if isinstance(v, list):
        if len(v) != 3:
            raise ComemError(f"{what} must be one number or a list of three [T, H, W], got {len(v)} values")
        return tuple(v)
    return (v, v, v)


MAX_FIELD = 10_000_000  # channels, kernels, strides: anything larger is a typo


def positive(value, what, allow_zero=False):
    if shim.is_concrete(value):
        if isinstance(value, bool) or not float(value).is_integer():
            raise ComemError(f"{what} must be a whole number, got {value}")
        if value < 0 or (value == 0 and not allow_zero):
            raise ComemError(f"{what} must be {'non-negative' if allow_zero else 'positive'}, got {value}")
        if value > MAX_FIELD:
            raise ComemError(f"{what} = {int(value):,} is absurdly large (limit {MAX_FIELD:,})")
        return int(value)
    return value


class Conv(LayerKind):
    name = "conv"
    summary = "3D convolution: state (k_T-1) partial output frames (Eq. 5)"
    fields = ("out", "kernel", "stride", "padding", "dilation", "groups", "bias")
    required = ("kernel",)
    state_knob = "conv_state"
    state_formulas = {
        "partial-outputs": "d_T * (k_T - 1) * c_O * n_H * n_W",   # Eq. (5)
        "library-buffer": "(k_T - 1)**2 * c_O * n_H * n_W",       # co.Conv3d.init_state
        "input-frames": "d_T * (k_T - 1) * c_I * H * W",          # raw input frames
    }

    def configure(self, raw, evaluate, c_in):
        cfg = {}
        cfg["c_in"] = c_in
        cfg["c_out"] = positive(evaluate("out", c_in), "conv 'out' channels")
        k = triple(evaluate("kernel", None), "conv 'kernel'")
        s = triple(evaluate("stride", 1), "conv 'stride'")
        p = triple(evaluate("padding", 0), "conv 'padding'")
        d = triple(evaluate("dilation", 1), "conv 'dilation'")
        cfg["kernel"] = tuple(positive(v, "conv kernel size") for v in k)
        cfg["stride"] = tuple(positive(v, "conv stride") for v in s)
        cfg["padding"] = tuple(positive(v, "conv padding", allow_zero=True) for v in p)
        cfg["dilation"] = tuple(positive(v, "conv dilation") for v in d)
        g = positive(evaluate("groups", 1), "conv 'groups'")
        cfg["groups"] = g
        bias = evaluate("bias", True)
        if not isinstance(bias, bool):
            raise ComemError(f"conv 'bias' must be true or false, got {bias!r}")
        cfg["bias"] = bias
        if all(shim.is_concrete(v) for v in (c_in, cfg["c_out"], g)):
            if c_in % g or cfg["c_out"] % g:
                raise ComemError(f"conv groups={g} must divide input channels {c_in} and output channels {cfg['c_out']}")
        return cfg

    def out_channels(self, cfg, c_in):
        return cfg["c_out"]

    def output(self, cfg, x: Shape, env=None) -> Shape:
        (kt, kh, kw), (st, sh, sw) = cfg["kernel"], cfg["stride"]
        (pt, ph, pw), (dt, dh, dw) = cfg["padding"], cfg["dilation"]
        return Shape(cfg["c_out"], conv_out(x.t, kt, st, pt, dt), conv_out(x.h, kh, sh, ph, dh),
                     conv_out(x.w, kw, sw, pw, dw))

    def check(self, cfg, x, y, where):
        for axis, n_in, n_out in (("T", x.t, y.t), ("H", x.h, y.h), ("W", x.w, y.w)):
            if shim.is_concrete(n_out) and n_out < 1:
                raise ComemError(
                    f"{where}: kernel is larger than its padded input along {axis} ({axis}={n_in}); "
                    "use a larger clip/size")

    def macs_per_position(self, cfg):
        kt, kh, kw = cfg["kernel"]
        return kt * kh * kw * (cfg["c_in"] // cfg["groups"]) * cfg["c_out"]

    def params(self, cfg, x):
        kt, kh, kw = cfg["kernel"]
        p = cfg["c_out"] * (cfg["c_in"] // cfg["groups"]) * kt * kh * kw
        return p + (cfg["c_out"] if cfg["bias"] else 0)

    def work(self, cfg, x, y, step, knobs):
        positions = y.h * y.w if step else y.t * y.h * y.w
        out = {"conv_mac": self.macs_per_position(cfg) * positions}
        if cfg["bias"]:
            out["conv_bias"] = cfg["c_out"] * positions
        return out

    def symbols(self, cfg, x, y, knobs):
        d = shape_symbols(x, y)
        (kt, kh, kw), (st, _, _) = cfg["kernel"], cfg["stride"]
        d.update(k_T=kt, k_H=kh, k_W=kw, p_T=cfg["padding"][0], d_T=cfg["dilation"][0], s_T=st, g=cfg["groups"])
        return d

    def temporal(self, cfg, x, knobs):
        kt, dt = cfg["kernel"][0], cfg["dilation"][0]
        return (kt + (kt - 1) * (dt - 1), cfg["padding"][0], cfg["stride"][0])

    def library_peak(self, cfg, x, y, knobs):
        """``co.Conv3d._forward_step_py`` for one frame runs a ``k_T``-frame
        convolution (``k_T·n`` floats, ``n`` = one output frame), gathers the
        ``k_T−1`` stored partials by advanced indexing (a copy, ``(k_T−1)·n``)
        and sums them (``n``): ``2·k_T·n`` at its peak.  A stateless layer
        (``k_T = 1``, no temporal padding/stride) runs the plain convolution."""
        kt, pt, st = cfg["kernel"][0], cfg["padding"][0], cfg["stride"][0]
        n = y.frame
        if all(shim.is_concrete(v) for v in (kt, pt, st)) and kt == 1 and pt == 0 and st == 1:
            return n
        return 2 * kt * n

    def continual_ok(self, cfg):
        if shim.is_concrete(cfg["dilation"][0]) and cfg["dilation"][0] != 1:
            return "continual-inference supports no temporal dilation (d_T > 1)"
        return None

    def torch_module(self, cfg, x, kit, continual, knobs):
        args = (cfg["c_in"], cfg["c_out"], cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"],
                cfg["groups"], cfg["bias"])
        if continual:
            return kit.co.Conv3d(*args, temporal_fill="zeros")
        return kit.nn.Conv3d(*args)

    def torch_work(self, m, inp, out):
        k = 1
        for v in m.kernel_size:
            k *= v
        positions = out.numel() // m.out_channels
        ops = {"conv_mac": k * (m.in_channels // m.groups) * m.out_channels * positions}
        if m.bias is not None:
            ops["conv_bias"] = m.out_channels * positions
        return ops


CONV = Conv()
