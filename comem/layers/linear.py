"""``linear`` — a fully connected layer over channels (``nn.Linear`` applied
channels-last, as the SlowFast/X3D heads do; ``co.Linear(channel_dim=1)``).

Spec fields: ``out``, ``bias`` (default true).

* params = ``c_I·c_O + b·c_O``
* MACs = ``c_I·c_O`` per position (``n_T·n_H·n_W`` positions per clip, one
  frame's ``n_H·n_W`` per step); bias adds ``c_O`` per position
* stateless, no delay
"""
from __future__ import annotations

from comem.errors import ComemError
from comem.layers.base import LayerKind
from comem.layers.conv import positive


class Linear(LayerKind):
    name = "linear"
    summary = "fully connected over channels"
    fields = ("out", "bias")
    required = ("out",)

    def configure(self, raw, evaluate, c_in, dims=3):
        bias = evaluate("bias", True)
        if not isinstance(bias, bool):
            raise ComemError(f"linear 'bias' must be true or false, got {bias!r}")
        return {"c_in": c_in, "c_out": positive(evaluate("out", None), "linear 'out'"), "bias": bias, "dims": dims}

    def out_channels(self, cfg, c_in):
        return cfg["c_out"]

    def output(self, cfg, x, env=None):
        return x.with_(c=cfg["c_out"])

    def params(self, cfg, x):
        return cfg["c_in"] * cfg["c_out"] + (cfg["c_out"] if cfg["bias"] else 0)

    def torch_tensors(self, cfg, x, continual=False):
        return [(cfg["c_in"] * cfg["c_out"], False)] + ([(cfg["c_out"], False)] if cfg["bias"] else [])

    def work(self, cfg, x, y, step, knobs):
        positions = x.h * x.w if step else x.t * x.h * x.w
        out = {"linear_mac": cfg["c_in"] * cfg["c_out"] * positions}
        if cfg["bias"]:
            out["linear_bias"] = cfg["c_out"] * positions
        return out

    def op_class(self, cfg, x, y):
        return "linear"

    def torch_module(self, cfg, x, kit, continual, knobs):
        if continual:
            return kit.co.Linear(cfg["c_in"], cfg["c_out"], bias=cfg["bias"], channel_dim=1)
        return kit.ChannelsLastLinear(cfg["c_in"], cfg["c_out"], cfg["bias"])

    def torch_types(self, kit):
        return (kit.nn.Linear,)

    torch_layout = "channels_last"

    def torch_output_layout(self, module, layout, canon):
        """``nn.Linear`` acts on the last axis; ``co.Linear(channel_dim=d)``
        on axis ``d``: either must be the channels."""
        d = getattr(module, "channel_dim", None)
        if d is not None:
            if layout[d] != "C":
                raise ComemError(f"co.Linear over axis {d}, which is {layout[d]!r}, not the channels")
            return tuple(layout)
        return super().torch_output_layout(module, layout, canon)

    def from_torch(self, m, dims):
        raw = {"kind": "linear", "out": m.out_features}
        if m.bias is None:
            raw["bias"] = False
        return raw

    def torch_work(self, m, inp, out):
        x = inp[0] if isinstance(inp, tuple) else inp
        lin = getattr(m, "linear", m)  # ChannelsLastLinear wraps an nn.Linear
        positions = x.numel() // lin.in_features
        ops = {"linear_mac": lin.in_features * lin.out_features * positions}
        if lin.bias is not None:
            ops["linear_bias"] = lin.out_features * positions
        return ops

    def published_step_count(self, cfg, x, y, work_step):
        """What ptflops <= 0.6.9 reported per step for ``co.Linear(channel_dim=1)``:
        it counts ``prod(input.shape)·output.shape[-1] + bias``; a video
        model's step tensor is channels-first ``(1, C, H, W)`` (see
        :mod:`comem.reproduce.co3d`), a 1D model's ``(1, C)`` is read right."""
        if cfg.get("dims", 3) == 1:
            return cfg["c_in"] * cfg["c_out"] + (cfg["c_out"] if cfg["bias"] else 0)
        return x.c * x.h * x.w * x.w + (x.w if cfg["bias"] else 0)

    def published_clip_count(self, cfg, x, y, work_clip):
        """ptflops <= 0.6.9 adds a linear layer's bias once per call, however
        many tokens the call holds."""
        positions = x.t * x.h * x.w
        return cfg["c_in"] * cfg["c_out"] * positions + (cfg["c_out"] if cfg["bias"] else 0)


LINEAR = Linear()
