"""``avgpool`` / ``maxpool`` — 3D pooling (``nn.AvgPool3d``/``nn.MaxPool3d``,
``nn.AdaptiveAvgPool3d`` when ``adaptive = true``; continual:
``co.AvgPool3d`` / ``co.MaxPool3d`` / ``co.AdaptiveAvgPool3d``).

Spec fields: ``kernel``, ``stride`` (default = kernel), ``padding``,
``global`` (pool the whole input to 1×1×1; a ``padding`` ``[p_T, 0…]`` then pads
the continual pool's window in time only, as continual-skeletons' head
``co.AvgPool1d(w, padding=p_T)``: delay ``w − 1 − p_T``), ``adaptive`` (module choice only),
``window`` (temporal window of the continual pool for a global pool:
``"clip"`` = all frames of the clip at this layer, ``"frame"`` = one frame,
``"se"`` = as the ``se_pool`` knob says, or a number of frames, as
``co.AdaptiveAvgPool3d(kernel_size=w)`` — whose regular forward pools the
whole clip),
``input_divisor`` ``[d_T, d_H, d_W]``: the window is the *model input's*
frames, height and width floor-divided by these, stride 1 — the head of the
SlowFast ResNets (``ResNetBasicHead``: ``[T // pool1_t, crop // 32, crop //
32]``), which is global only when the crop is a multiple of 32 (at 200² it
leaves a 2×2 map: a 4× larger buffer and 4 positions for the projection).

A continual pool pools each incoming frame spatially, keeps the pooled
frames in a buffer and pools the buffer over time.  With ``w`` the temporal
window and ``n' = C·n_H·n_W`` one pooled frame:

* state, by the ``pool_state`` knob: ``k-1`` (paper: ``(w−1)·n'``; Table 4's
  ``(16−1)·432`` for pool_5) or ``k`` (continual-inference:
  ``d(w−1)+1`` pooled frames, ``_PoolNd.init_state``; a 1-frame buffer
  even when ``w = 1``)
* work per clip: one op per input element; per step: one per element of the
  incoming frame plus one per element of the ``w`` buffered pooled frames
  (continual-inference's temporal ``AdaptiveAvgPool1d``/``AdaptiveMaxPool1d``)
* receptive field ``d·w``, delay ``d·w − 1 − p_T``
"""
from __future__ import annotations

from comem.core import shim
from comem.errors import ComemError
from comem.layers.base import (BatchAxis, LayerKind, Shape, StateTensor, axes, causal, conv_out, frame_axes,
                               shape_symbols, time_out)
from comem.layers.conv import positive


class Pool(LayerKind):
    fields = ("kernel", "stride", "padding", "global", "adaptive", "window", "dilation", "input_divisor")
    state_knob = "pool_state"
    state_formulas = {
        "k-1": "d_T * (w - 1) * C * n_H * n_W",        # the paper: pool_5 (16-1)x432
        "k": "(d_T * (w - 1) + 1) * C * n_H * n_W",    # co.*Pool3d: _PoolNd.init_state
        "running-sum": "C * n_H * n_W",                 # MoViNet: cumulative average (global pools)
    }
    output_only_ops = ("temporal_pool",)
    counts_without_output = True

    def __init__(self, name, mode):
        self.name = name
        self.mode = mode  # "avg" | "max"
        self.summary = f"{mode} pooling; continual state: buffered pooled frames"

    def configure(self, raw, evaluate, c_in, dims=3):
        cfg = {"c": c_in, "dims": dims, "global": bool(shim.structural(evaluate("global", False))),
               "adaptive": bool(shim.structural(evaluate("adaptive", False)))}
        window = raw.get("window", "clip")
        if isinstance(window, int) and not isinstance(window, bool):
            window = positive(window, f"{self.name} 'window'")
        elif window not in ("clip", "frame", "se"):
            raise ComemError(f"{self.name} 'window' must be 'clip', 'frame', 'se' (the se_pool knob decides) or a "
                             f"number of frames, got {window!r}")
        cfg["window"] = window
        if "input_divisor" in raw:
            if cfg["global"] or "kernel" in raw or "stride" in raw or "padding" in raw:
                raise ComemError(f"a {self.name} with 'input_divisor' takes no global/kernel/stride/padding")
            div = axes(evaluate("input_divisor", None), f"{self.name} 'input_divisor'", dims)
            cfg.update(kernel=None, stride=(1, 1, 1), padding=(0, 0, 0), dilation=(1, 1, 1),
                       input_divisor=tuple(positive(v, f"{self.name} input divisor") for v in div))
            return cfg
        if cfg["global"]:
            if "kernel" in raw or "stride" in raw:
                raise ComemError(f"a global {self.name} takes no kernel/stride")
            # padding: the continual pool's temporal padding only (continual-skeletons' head,
            # co.AvgPool1d(window, padding=p): its delay is w-1-p); the regular pool pools every frame
            p = axes(evaluate("padding", 0), f"{self.name} 'padding'", dims, fill=0)
            if any(not (shim.is_concrete(v) and v == 0) for v in p[1:]):
                raise ComemError(f"a global {self.name} pads time only (its continual window); give padding = "
                                 f"[p_T{', 0' * (dims - 1)}]")
            pt = positive(p[0], f"{self.name} padding", allow_zero=True)
            cfg.update(kernel=None, stride=(1, 1, 1), padding=(pt, 0, 0), dilation=(1, 1, 1))
            return cfg
        if "kernel" not in raw:
            raise ComemError(f"{self.name} needs 'kernel' (or global = true)")
        k = axes(evaluate("kernel", None), f"{self.name} 'kernel'", dims)
        cfg["kernel"] = tuple(positive(v, f"{self.name} kernel size") for v in k)
        s = axes(evaluate("stride", list(k[:dims])), f"{self.name} 'stride'", dims)
        cfg["stride"] = tuple(positive(v, f"{self.name} stride") for v in s)
        p = axes(evaluate("padding", 0), f"{self.name} 'padding'", dims, fill=0)
        cfg["padding"] = tuple(positive(v, f"{self.name} padding", allow_zero=True) for v in p)
        d = axes(evaluate("dilation", 1), f"{self.name} 'dilation'", dims)
        cfg["dilation"] = tuple(positive(v, f"{self.name} dilation") for v in d)
        return cfg

    def window_kind(self, cfg, knobs) -> str:
        """'clip' or 'frame' (or 'clip-causal') for a global pool; an SE
        block's pool follows the ``se_pool`` knob."""
        return knobs["se_pool"] if cfg["window"] == "se" else cfg["window"]

    def kernel(self, cfg, env):
        """The (T, H, W) window of a non-global pool."""
        div = cfg.get("input_divisor")
        if div is None:
            return cfg["kernel"]
        if env is None or env.model_input is None:
            raise ComemError(f"a {self.name} with 'input_divisor' needs the model's input shape")
        x0 = env.model_input
        return (shim.fdiv(x0.t, div[0]), shim.fdiv(x0.h, div[1]), shim.fdiv(x0.w, div[2]))

    def window(self, cfg, x: Shape, knobs):
        """The temporal window of the continual pool."""
        if cfg["global"]:
            kind = self.window_kind(cfg, knobs)
            if isinstance(kind, int):
                return kind
            return 1 if kind == "frame" else x.t
        return self.kernel(cfg, knobs)[0]

    def causal(self, cfg, knobs) -> bool:
        """A global pool over the past applied to the current frame: no
        alignment delay (an SE pool under ``se_pool = clip-causal``; any
        global pool under causal temporal padding, MoViNet's cumulative
        average)."""
        return cfg["global"] and (self.window_kind(cfg, knobs) == "clip-causal" or causal(knobs))

    def running_sum(self, cfg, knobs) -> bool:
        """``pool_state = running-sum``: a global average pool over the past
        keeps one running sum per channel (MoViNet's cumulative pool)."""
        return knobs.get("pool_state") == "running-sum" and cfg["global"] and self.mode == "avg"

    def state_formula(self, cfg, knobs) -> str:
        if knobs.get("pool_state") == "running-sum":
            # a running sum per channel (and a frame counter, not a float); a windowed pool still keeps
            # its window's earlier pooled frames
            return "C * n_H * n_W" if self.running_sum(cfg, knobs) else self.state_formulas["k-1"]
        return super().state_formula(cfg, knobs)

    def output(self, cfg, x, env=None):
        if cfg["global"]:
            if causal(env) and self.window_kind(cfg, env) != "frame":
                # causal: the cumulative average up to every frame (MoViNet's causal global pool)
                return Shape(x.c, x.t, 1, 1)
            if cfg.get("tiled"):
                # repeated over the clip's frames (MoViNet's 2plus3d squeeze-excitation, tf.tile)
                return Shape(x.c, x.t, 1, 1)
            return Shape(x.c, 1, 1, 1)
        (kt, kh, kw), (st, sh, sw), (pt, ph, pw) = self.kernel(cfg, env), cfg["stride"], cfg["padding"]
        dt, dh, dw = cfg["dilation"]
        return Shape(x.c, time_out(x.t, kt, st, pt, dt, env), conv_out(x.h, kh, sh, ph, dh),
                     conv_out(x.w, kw, sw, pw, dw))

    def check(self, cfg, x, y, where):
        for axis, n_in, n_out in (("T", x.t, y.t), ("H", x.h, y.h), ("W", x.w, y.w)):
            if shim.is_concrete(n_out) and n_out < 1:
                raise ComemError(f"{where}: pooling window is larger than its input along {axis} ({axis}={n_in}); "
                                 "use a larger clip/size")

    def op(self, cfg):
        d = cfg.get("dims", 3)
        if cfg["global"] and cfg["adaptive"]:
            return f"adaptive_{self.mode}_pool{d}d"
        return f"{self.mode}_pool{d}d"

    def work(self, cfg, x, y, step, knobs):
        if not step:
            return {self.op(cfg): x.numel}
        pooled = y.c * y.h * y.w
        return {self.op(cfg): x.frame, "temporal_pool": self.window(cfg, x, knobs) * pooled}

    def symbols(self, cfg, x, y, knobs):
        d = shape_symbols(x, y)
        d.update(w=self.window(cfg, x, knobs), d_T=cfg["dilation"][0], p_T=cfg["padding"][0])
        return d

    def temporal(self, cfg, x, knobs):
        w = self.window(cfg, x, knobs)
        d = cfg["dilation"][0]
        if self.causal(cfg, knobs):
            return (d * w, d * w - 1, 1)  # sees w frames, delays none
        if causal(knobs):
            return (d * w, d * w - 1, cfg["stride"][0])
        return (d * w, cfg["padding"][0], cfg["stride"][0])

    def state_tensors(self, cfg, x, y, knobs):
        """The state's tensors, by ``pool_state``: ``k`` — continual-inference's
        ``state_buffer`` of ``d(w−1)+1`` pooled frames ``(d(w−1)+1, B, C,
        n_H, n_W)`` (zeros; −inf for a 1D max pool), the int64 ``state_index``
        (0) and ``stride_index`` (``s_T − d(w−1) − 1 + p_T``); ``k-1`` — the
        paper's ``(B, C, d(w−1), n_H, n_W)``; ``running-sum`` — MoViNet's
        ``pool_buffer`` ``(B, 1, n_H, n_W, C)`` and int32 ``pool_frame_count``
        ``(1,)`` for a causal global average pool (a windowed pool keeps its
        ``d(w−1)`` earlier pooled frames, channels last)."""
        w = self.window(cfg, x, knobs)
        d, s, p = cfg["dilation"][0], cfg["stride"][0], cfg["padding"][0]
        dims = cfg.get("dims", 3)
        f, (c, *space) = frame_axes(y, dims)
        mode = knobs["pool_state"]
        if mode == "k":
            frames = d * (w - 1) + 1
            fill = "-inf" if self.mode == "max" and dims == 1 else 0
            return [StateTensor("state_buffer", "pool-window", (frames, BatchAxis(f), c, *space), init=fill),
                    StateTensor("state_index", "index", (), "int64", 0),
                    StateTensor("stride_index", "counter", (), "int64", s - frames + p)]
        if mode == "running-sum" and self.running_sum(cfg, knobs):
            return [StateTensor("pool_buffer", "running-sum", (BatchAxis(f), 1, *space, c)),
                    StateTensor("pool_frame_count", "counter", (1,), "int32", 0)]
        frames = d * (w - 1)
        if shim.is_concrete(frames) and frames == 0:
            return []
        if mode == "running-sum":
            return [StateTensor("pool_window", "pool-window", (BatchAxis(f), frames, *space, c))]
        return [StateTensor("pooled_frames", "pool-window", (BatchAxis(f), c, frames, *space))]

    def library_peak(self, cfg, x, y, knobs):
        """continual-inference pools the frame spatially (one pooled frame
        ``n' = C·n_H·n_W``), writes it into the buffer, then pools the buffer
        over time into a new pooled frame: ``2·n'``.  Before the temporal pool
        it permutes the ``w``-frame buffer to (B, n_H, n_W, C, T) and reshapes
        it to (B·n_H·n_W, C, T): a view for one stream or a 1×1 map, a copy of
        the whole window (``w·n'``) for a batch of streams.  A max pool
        computes both poolings with indices (``max_pool2d_with_indices``,
        ``adaptive_max_pool``): ``n'`` int64 indices live until the temporal
        pool returns, each worth ``knobs.index_floats`` values of the dtype
        (8 bytes)."""
        pooled = y.c * y.h * y.w
        peak = 2 * pooled
        if getattr(knobs, "batched", False) and not (shim.is_concrete(y.h * y.w) and y.h * y.w == 1):
            peak = peak + self.window(cfg, x, knobs) * pooled
        if self.mode == "max":
            return peak + pooled * knobs.index_floats
        return peak

    def state_traffic(self, cfg, x, y, knobs):
        """Writes the pooled frame into the ``w``-frame buffer and reads the
        window for the temporal pool (a batch also copies it: read, write)."""
        pooled = y.c * y.h * y.w
        w = self.window(cfg, x, knobs)
        extra = 2 * w * pooled if getattr(knobs, "batched", False) else 0
        return (w + 1) * pooled + extra

    def torch_tensors(self, cfg, x, continual=False):
        """A continual-inference pool keeps int64 ``state_index`` and
        ``stride_index`` scalars (its buffer is the state)."""
        return [(1, True), (1, True)] if continual else []

    def library_peak_clip(self, cfg, x, y, knobs):
        """A regular 3D max pool runs ``max_pool3d_with_indices``, CPU and
        CUDA alike: one int64 index per output element lives with it."""
        if self.mode == "max" and cfg.get("dims", 3) == 3:
            return y.numel * knobs.index_floats
        return 0

    def library_note(self, cfg, knobs):
        if self.mode == "max":
            return f"an int64 max-pool index counts {knobs.index_floats} values"
        return None

    def op_class(self, cfg, x, y):
        """``maxpool`` (its int64 indices and slower kernels) or ``pool``."""
        return "maxpool" if self.mode == "max" else "pool"

    def torch_module(self, cfg, x, kit, continual, knobs):
        nn, co = kit.nn, kit.co
        d = cfg.get("dims", 3)
        name = "Avg" if self.mode == "avg" else "Max"
        lib = co if continual else nn
        if not cfg["global"]:
            kernel = tuple(_concrete(k, "the window") for k in self.kernel(cfg, knobs))[:d]
            stride, padding, dilation = cfg["stride"][:d], cfg["padding"][:d], cfg["dilation"][:d]
            cls = getattr(lib, f"{name}Pool{d}d")
            if continual:
                return cls(kernel, stride, padding, dilation=dilation) if name == "Avg" else \
                    cls(kernel, stride, padding, dilation)
            return cls(kernel, stride, padding) if name == "Avg" else cls(kernel, stride, padding, dilation=dilation)
        full = (x.t, x.h, x.w)[:d]
        if not continual:
            if cfg["adaptive"]:
                return getattr(nn, f"Adaptive{name}Pool{d}d")(1)
            return getattr(nn, f"{name}Pool{d}d")(tuple(_concrete(v, "the input") for v in full), stride=1)
        if self.window_kind(cfg, knobs) == "clip-causal":
            raise ComemError("se_pool = clip-causal has no continual-inference module (its pools always delay by "
                             "their window); validate se_pool = frame or clip")
        w = _concrete(self.window(cfg, x, knobs), "T")
        if cfg["adaptive"] and d > 1:
            return getattr(co, f"Adaptive{name}Pool{d}d")((1,) * d, kernel_size=w)
        window = (w,) + tuple(_concrete(v, "the input") for v in full[1:])
        return getattr(co, f"{name}Pool{d}d")(window, stride=1, padding=cfg["padding"][:d])

    def torch_types(self, kit):
        nn = kit.nn
        name = "Avg" if self.mode == "avg" else "Max"
        return tuple(getattr(nn, f"{a}{name}Pool{d}d") for a in ("", "Adaptive") for d in (1, 2, 3))

    def from_torch(self, m, dims):
        name = type(m).__name__
        raw = {"kind": self.name}
        if "Adaptive" in name:
            out = m.output_size if isinstance(m.output_size, tuple) else (m.output_size,)
            if any(o not in (1, None) for o in out):
                raise ComemError(f"{name}(output_size={m.output_size}) keeps a map larger than 1; comem reads "
                                 "adaptive pools to 1 (global)")
            raw.update({"global": True, "adaptive": True})
            window = getattr(m, "kernel_size", None)  # continual: the temporal window of the pool
            if isinstance(window, tuple) and window[0] is not None:
                raw["window"] = window[0]
            return raw
        if getattr(m, "ceil_mode", False):
            raise ComemError(f"{name}(ceil_mode=True) rounds its output up; comem follows floor rounding")
        if getattr(m, "divisor_override", None):
            raise ComemError(f"{name}(divisor_override=...) is not read")
        k = _tup(m.kernel_size, dims)
        raw["kernel"] = list(k)
        if _tup(m.stride, dims) != k:
            raw["stride"] = list(_tup(m.stride, dims))
        if any(_tup(m.padding, dims)):
            raw["padding"] = list(_tup(m.padding, dims))
        dil = _tup(getattr(m, "dilation", 1), dims)
        if any(v != 1 for v in dil):
            raw["dilation"] = list(dil)
        return raw

    torch_layout = "canonical"

    @property
    def aten_ops(self):
        """``F.avg_pool3d``, ``F.adaptive_avg_pool3d`` … (and, for the average,
        ``x.mean`` over time and space: a global pool)."""
        m = self.mode
        ops = tuple(f"{m}_pool{d}d" for d in (1, 2, 3)) + tuple(f"adaptive_{m}_pool{d}d" for d in (1, 2, 3)) + \
            tuple(f"_adaptive_{m}_pool{d}d" for d in (2, 3))
        ops += ("max_pool2d_with_indices", "max_pool3d_with_indices") if m == "max" else ("mean",)
        return ops

    def from_aten(self, call):
        dims = len(call.canon) - 2
        if call.name == "mean":
            axes = call.axes(call.arg(1, "dim"))
            if call.layout != tuple(call.canon) or axes != call.time_space:
                return None
            keep = call.arg(2, "keepdim", False)
            call.out_layout = tuple(call.canon) if keep else ("B", "C")
            # not adaptive: fvcore has a handle for adaptive_avg_pool2d, none for aten::mean
            return {"kind": self.name, "global": True, "functional": True}
        d = int(call.name.rstrip("d").split("pool")[1][:1]) if "pool" in call.name else dims
        if d != dims or call.layout != tuple(call.canon):
            raise ComemError(f"a functional {call.name} on a tensor laid out {call.layout}")
        call.out_layout = call.layout
        if "adaptive" in call.name:
            size = call.args[1] if isinstance(call.args[1], (list, tuple)) else [call.args[1]]
            if any(s != 1 for s in size):
                raise ComemError(f"{call.name} to {tuple(size)}: comem reads adaptive pools to 1")
            return {"kind": self.name, "global": True, "adaptive": True, "functional": True}
        k = list(call.args[1]) if isinstance(call.args[1], (list, tuple)) else [call.args[1]] * d
        s = list(call.args[2]) if len(call.args) > 2 and call.args[2] else k
        p = list(call.args[3]) if len(call.args) > 3 else [0] * d
        ceil = 4 if self.mode == "avg" else 5
        if len(call.args) > ceil and call.args[ceil]:
            raise ComemError(f"{call.name}(ceil_mode=True) rounds its output up; comem follows floor rounding")
        raw = {"kind": self.name, "kernel": k, "stride": s}
        if any(p):
            raw["padding"] = p
        dil = call.args[4] if self.mode == "max" and len(call.args) > 4 else 1
        dil = list(dil) if isinstance(dil, (list, tuple)) else [dil] * d
        if any(v != 1 for v in dil):
            raw["dilation"] = dil
        raw["functional"] = True
        return raw

    @staticmethod
    def _over_time(module, layout) -> bool:
        """A 1D pool over time after the frame's axes were averaged away
        (continual-skeletons' head ``co.AvgPool1d`` on ``(N, C, T)``)."""
        k = getattr(module, "kernel_size", None)
        return tuple(layout) == ("B", "C", "T") and (isinstance(k, int) or len(k) == 1) and \
            "Adaptive" not in type(module).__name__

    def torch_fields(self, module, dims, layout):
        if dims > 1 and self._over_time(module, layout):
            one = {"kernel_size": module.kernel_size, "stride": module.stride, "padding": module.padding}
            raw = self.from_torch(type("Pool1d", (), {**{k: _tup(v, 1) for k, v in one.items()},
                                                     "dilation": getattr(module, "dilation", 1),
                                                     "ceil_mode": getattr(module, "ceil_mode", False)})(), 1)
            fill = {"kernel": 1, "stride": 1, "padding": 0, "dilation": 1}
            return {k: (list(v) + [fill[k]] * (dims - 1) if isinstance(v, list) else v) for k, v in raw.items()}
        return super().torch_fields(module, dims, layout)

    def torch_output_layout(self, module, layout, canon):
        if len(canon) > 3 and self._over_time(module, layout):
            return tuple(layout)  # the frame is one value a channel: a pool over time alone
        return super().torch_output_layout(module, layout, canon)

    def import_strides(self, raw, dims):
        if raw.get("global"):
            return (1, 1, 1)
        s = raw.get("stride", raw.get("kernel", 1))
        s = list(s) if isinstance(s, (list, tuple)) else [s] * dims
        return tuple(s + [1] * (3 - len(s)))

    def gate_pool(self, raw):
        """A global average pool opening a gate pools as the ``se_pool`` knob says."""
        if self.mode == "avg" and raw.get("global"):
            return dict(raw, window="se")
        return None

    def torch_hooked(self, module):
        """The pool, and the 1D pool over time inside a continual pool."""
        inner = [m for m in module.children() if type(m).__name__ in ("AdaptiveAvgPool1d", "AdaptiveMaxPool1d")]
        for m in inner:
            m._comem_temporal = True
        return [module] + inner

    def torch_work(self, m, inp, out):
        x = inp[0] if isinstance(inp, tuple) else inp
        name = type(m).__name__
        if getattr(m, "_comem_temporal", False):
            return {"temporal_pool": x.numel()}
        d = name[-2]
        return {f"{'adaptive_' if name.startswith('Adaptive') else ''}{self.mode}_pool{d}d": x.numel()}


def _tup(v, dims):
    v = tuple(v) if isinstance(v, (tuple, list)) else (v,) * dims
    if len(v) != dims:
        raise ComemError(f"a {len(v)}D pool in a {dims}D model")
    return v


def _concrete(v, what):
    if not isinstance(v, int):
        raise ComemError(f"building a PyTorch model needs concrete numbers; {what} is {v!r}")
    return v


AVGPOOL = Pool("avgpool", "avg")
MAXPOOL = Pool("maxpool", "max")
