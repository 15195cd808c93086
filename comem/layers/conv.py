"""``conv`` — a 3D convolution (``nn.Conv3d`` / ``co.Conv3d``).

Spec fields: ``out`` (output channels, default = input channels),
``kernel`` ``[k_T, k_H, k_W]``, ``stride``, ``padding``, ``dilation``
(each an int or a list over the model's axes: ``[T, H, W]``, ``[T, V]`` for
a 2D model, ``[T]`` for 1D — ``nn.Conv2d``/``co.Conv2d`` over time and
joints), ``groups`` (may be ``"c_in"`` for depthwise), ``bias`` (default
true, as in PyTorch).

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

from comem.core import shim
from comem.errors import ComemError
from comem.layers.base import (BatchAxis, LayerKind, Shape, StateTensor, axes, causal, conv_out, frame_axes,
                               shape_symbols, time_out)


MAX_FIELD = 10_000_000  # channels, kernels, strides: anything larger is a typo


def positive(value, what, allow_zero=False):
    if shim._family(value) == "numpy":  # channels over a parameter grid
        value = shim.tidy(value)
        if not ((value >= (0 if allow_zero else 1)).all() and (value <= MAX_FIELD).all()):
            raise ComemError(f"{what} leaves 1..{MAX_FIELD:,} somewhere on the parameter grid")
        return value
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
    #: a temporally strided continual conv convolves every frame, emitting
    #: an output every s_T-th step
    counts_without_output = True
    state_formulas = {
        "partial-outputs": "d_T * (k_T - 1) * c_O * n_H * n_W",   # Eq. (5)
        "library-buffer": "(k_T - 1)**2 * c_O * n_H * n_W",       # co.Conv3d.init_state
        "input-frames": "d_T * (k_T - 1) * c_I * H * W",          # raw input frames
    }

    #: the extra arithmetic of continual-inference's one-frame convolution
    #: (only the ``executed`` convention weighs it; see comem/conventions.py)
    op_weights = {
        "conv_mac_zero_taps": {"ptflops": 0, "macs": 0, "flops": 0, "fvcore": 0, "executed": 1},
        "conv_partial_add": {"ptflops": 0, "macs": 0, "flops": 0, "fvcore": 0, "executed": 1},
    }
    output_only_ops = ("conv_partial_add",)

    def configure(self, raw, evaluate, c_in, dims=3):
        cfg = {"dims": dims}
        cfg["c_in"] = c_in
        cfg["c_out"] = positive(evaluate("out", c_in), "conv 'out' channels")
        k = axes(evaluate("kernel", None), "conv 'kernel'", dims)
        s = axes(evaluate("stride", 1), "conv 'stride'", dims)
        p = axes(evaluate("padding", 0), "conv 'padding'", dims, fill=0)
        d = axes(evaluate("dilation", 1), "conv 'dilation'", dims)
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
        return Shape(cfg["c_out"], time_out(x.t, kt, st, pt, dt, env), conv_out(x.h, kh, sh, ph, dh),
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

    def torch_tensors(self, cfg, x, continual=False):
        """weight, bias; a co.Conv also keeps int64 ``state_index`` and
        ``stride_index`` scalars."""
        w = self.params(cfg, x) - (cfg["c_out"] if cfg["bias"] else 0)
        out = [(w, False)] + ([(cfg["c_out"], False)] if cfg["bias"] else [])
        return out + ([(1, True), (1, True)] if continual else [])

    def work(self, cfg, x, y, step, knobs):
        positions = y.h * y.w if step else y.t * y.h * y.w
        out = {"conv_mac": self.macs_per_position(cfg) * positions}
        if cfg["bias"]:
            out["conv_bias"] = cfg["c_out"] * positions
        if step and not self.stateless(cfg):
            # co.Conv3d convolves the new frame, padded by k_T-1 in time, into k_T partial output
            # frames (every step), then sums the k_T-1 stored partials into the first (output steps)
            kt = cfg["kernel"][0]
            out["conv_mac_zero_taps"] = (kt - 1) * out["conv_mac"]
            out["conv_partial_add"] = (kt - 1) * cfg["c_out"] * positions
        return out

    @staticmethod
    def stateless(cfg) -> bool:
        """continual-inference runs a conv with a one-frame kernel, no temporal
        padding and no temporal stride as a plain convolution (``_stateless``)."""
        kt, pt, st = cfg["kernel"][0], cfg["padding"][0], cfg["stride"][0]
        return all(shim.is_concrete(v) for v in (kt, pt, st)) and kt == 1 and pt == 0 and st == 1

    def symbols(self, cfg, x, y, knobs):
        d = shape_symbols(x, y)
        (kt, kh, kw), (st, _, _) = cfg["kernel"], cfg["stride"]
        d.update(k_T=kt, k_H=kh, k_W=kw, p_T=cfg["padding"][0], d_T=cfg["dilation"][0], s_T=st, g=cfg["groups"])
        return d

    def temporal(self, cfg, x, knobs):
        kt, dt = cfg["kernel"][0], cfg["dilation"][0]
        rf = kt + (kt - 1) * (dt - 1)
        return (rf, rf - 1 if causal(knobs) else cfg["padding"][0], cfg["stride"][0])

    def emit_stride(self, cfg, x, knobs):
        """continual-inference 1.2.4 emits every step from a conv with a
        one-frame kernel, whatever its temporal stride (knob
        ``unit_kernel_stride = ignored``)."""
        kt, pt, st = cfg["kernel"][0], cfg["padding"][0], cfg["stride"][0]
        if knobs.get("unit_kernel_stride") == "ignored" and shim.is_concrete(kt) and kt == 1 and pt == 0:
            return 1
        return st

    def state_tensors(self, cfg, x, y, knobs):
        """The state's tensors, by ``conv_state``: ``library-buffer`` —
        continual-inference's ``state_buffer`` ``(k_T−1, B, c_O, k_T−1, n_H,
        n_W)`` (``init_state`` repeats the ``k_T−1``-frame partial output
        ``k_T−1`` times), the int64 ``state_index`` (0) and ``stride_index``
        (``s_T − k_T + p_T``), none when the conv is stateless;
        ``partial-outputs`` — Eq. 5's ``(B, c_O, d_T(k_T−1), n_H, n_W)``;
        ``input-frames`` — MoViNet's ``stream_buffer`` ``(B, d_T(k_T−1), H, W,
        c_I)`` (channels last, tensorflow/models' layout)."""
        kt, st, pt, dt = cfg["kernel"][0], cfg["stride"][0], cfg["padding"][0], cfg["dilation"][0]
        dims = cfg.get("dims", 3)
        mode = knobs["conv_state"]
        if mode == "library-buffer":
            if self.stateless(cfg):
                return []
            f, (c, *space) = frame_axes(y, dims)
            return [StateTensor("state_buffer", "partial-sums", (kt - 1, BatchAxis(f), c, kt - 1, *space)),
                    StateTensor("state_index", "index", (), "int64", 0),
                    StateTensor("stride_index", "counter", (), "int64", st - kt + pt)]
        frames = dt * (kt - 1)
        if shim.is_concrete(frames) and frames == 0:
            return []
        if mode == "partial-outputs":
            f, (c, *space) = frame_axes(y, dims)
            return [StateTensor("partial_outputs", "partial-sums", (BatchAxis(f), c, frames, *space))]
        f, (c, *space) = frame_axes(x, dims)
        return [StateTensor("stream_buffer", "input-frames", (BatchAxis(f), frames, *space, c))]

    def library_peak(self, cfg, x, y, knobs):
        """``co.Conv3d._forward_step_py`` for one frame runs a ``k_T``-frame
        convolution (``k_T·n`` floats, ``n`` = one output frame), gathers the
        ``k_T−1`` stored partials by advanced indexing (a copy, ``(k_T−1)·n``)
        and sums them (``n``): ``2·k_T·n`` at its peak.  A stateless layer
        (``k_T = 1``, no temporal padding/stride) runs the plain convolution."""
        n = y.frame
        if self.stateless(cfg):
            return n
        return 2 * cfg["kernel"][0] * n

    def state_traffic(self, cfg, x, y, knobs):
        """``_forward_step_py`` on one frame (n = one output frame): writes
        k_T−1 extra partial frames, gathers the stored k_T−1 (read, copy),
        sums them (read) and stores the new ones (read, write): 6(k_T−1)·n;
        the sum, the add to the first partial and the bias add move about 6n."""
        if self.stateless(cfg):
            return 0
        return (6 * (cfg["kernel"][0] - 1) + 6) * y.frame

    def op_class(self, cfg, x, y):
        """``conv{d}d_`` + ``pointwise`` (a 1x..x1 kernel), ``depthwise`` (one
        group per input channel; ``depthwise_temporal`` when its kernel spans
        time only, ``depthwise_strided`` when it strides in space: CPU kernels
        run both far slower per FLOP), ``grouped`` or ``dense``."""
        d, g, c, k = cfg.get("dims", 3), cfg["groups"], cfg["c_in"], cfg["kernel"]
        if g == 1:
            return f"conv{d}d_{'pointwise' if all(v == 1 for v in k[:d]) else 'dense'}"
        if g == c:
            if k[0] > 1 and all(v == 1 for v in k[1:d]):
                return f"conv{d}d_depthwise_temporal"
            return f"conv{d}d_depthwise{'_strided' if any(v > 1 for v in cfg['stride'][1:d]) else ''}"
        return f"conv{d}d_grouped"

    def op_traffic(self, cfg, x, y, step):
        """The unfolded input a convolution with a spatial or temporal kernel
        writes and reads (im2col: ``k_T·k_H·k_W·c_I`` floats per output
        position, ``k_T`` output frames on a continual step); 0 for a
        pointwise one."""
        kt, kh, kw = cfg["kernel"]
        if kt * kh * kw == 1:
            return 0
        positions = y.h * y.w * (kt if step and not self.stateless(cfg) else 1) if step else y.t * y.h * y.w
        return 2 * kt * kh * kw * cfg["c_in"] * positions

    def continual_ok(self, cfg):
        if shim.is_concrete(cfg["dilation"][0]) and cfg["dilation"][0] != 1:
            return "continual-inference supports no temporal dilation (d_T > 1)"
        return None

    def torch_module(self, cfg, x, kit, continual, knobs):
        d = cfg.get("dims", 3)
        args = (cfg["c_in"], cfg["c_out"], cfg["kernel"][:d], cfg["stride"][:d], cfg["padding"][:d],
                cfg["dilation"][:d], cfg["groups"], cfg["bias"])
        if continual:
            return getattr(kit.co, f"Conv{d}d")(*args, temporal_fill="zeros")
        return getattr(kit.nn, f"Conv{d}d")(*args)

    def torch_types(self, kit):
        nn, co = kit.nn, kit.co
        return (nn.Conv1d, nn.Conv2d, nn.Conv3d, co.Conv1d, co.Conv2d, co.Conv3d)

    torch_layout = "canonical"

    def import_strides(self, raw, dims):
        s = raw.get("stride", 1)
        s = list(s) if isinstance(s, (list, tuple)) else [s] * dims
        return tuple(s + [1] * (3 - len(s)))

    def is_projection(self, raw, strides, c_out) -> bool:
        """A 1×1×1 convolution without bias, padding, dilation or groups to
        ``c_out`` channels at ``strides``: the projection a residual's
        ``shortcut = "auto"`` builds."""
        kernel = raw["kernel"] if isinstance(raw.get("kernel"), list) else [raw.get("kernel")]
        if raw.get("bias", True) or raw.get("groups", 1) != 1 or raw.get("padding") or raw.get("dilation"):
            return False
        return all(k == 1 for k in kernel) and raw.get("out") == c_out and \
            self.import_strides(raw, len(kernel)) == tuple(strides)

    def torch_time_pad(self, raw, front):
        """Causal temporal padding: ``k_T − 1`` frames of zeros before an
        unpadded convolution (MoViNet's empty stream buffer), written as the
        built-in MoViNet specs write their causal convolutions: symmetric
        ``(k_T − 1)/2`` (as many output frames; the ``stream-buffer``
        profile's ``temporal_padding = causal`` pads before), for an odd
        one-frame-stride kernel."""
        dims = len(raw["kernel"])
        pad = list(raw.get("padding", [0] * dims))
        stride = list(raw.get("stride", [1] * dims))
        dil = list(raw.get("dilation", [1] * dims))
        kt = raw["kernel"][0]
        if pad[0] or stride[0] != 1 or dil[0] != 1 or kt % 2 == 0 or front != kt - 1:
            raise ComemError(f"{front} frame(s) of zeros concatenated in time before a convolution of temporal kernel "
                             f"{kt}, stride {stride[0]}, padding {pad[0]}, dilation {dil[0]}: comem reads causal "
                             "padding of k_T - 1 frames before an odd, unstrided, unpadded kernel")
        pad[0] = (kt - 1) // 2
        return {**raw, "padding": pad}

    def from_torch(self, m, dims):
        d = len(m.kernel_size)
        if d != dims:
            raise ComemError(f"a {d}D convolution in a {dims}D model (input frames of {dims - 1} axes) needs a "
                             "reshape comem does not follow")
        if getattr(m, "padding_mode", "zeros") != "zeros" or isinstance(m.padding, str):
            raise ComemError(f"padding {m.padding!r} ({getattr(m, 'padding_mode', 'zeros')}) is not zero padding "
                             "by numbers")
        raw = {"kind": "conv", "out": m.out_channels, "kernel": list(m.kernel_size), "stride": list(m.stride),
               "padding": list(m.padding), "dilation": list(m.dilation), "groups": m.groups,
               "bias": m.bias is not None}
        for key, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
            v = raw[key]
            if v == default or (isinstance(v, list) and all(x == default for x in v)):
                del raw[key]
        if raw["bias"]:
            del raw["bias"]
        return raw

    def torch_work(self, m, inp, out):
        k = 1
        for v in m.kernel_size:
            k *= v
        if out is not None:
            positions = out.numel() // m.out_channels
        else:  # a step without output: the frame was still convolved
            x = inp[0] if isinstance(inp, tuple) else inp
            positions = x.shape[0]
            for n, kk, st, p, d in zip(x.shape[2:], m.kernel_size[1:], m.stride[1:], m.padding[1:], m.dilation[1:]):
                positions *= (n + 2 * p - d * (kk - 1) - 1) // st + 1
        ops = {"conv_mac": k * (m.in_channels // m.groups) * m.out_channels * positions}
        if m.bias is not None:
            ops["conv_bias"] = m.out_channels * positions
        return ops


CONV = Conv()
