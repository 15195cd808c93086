"""``linear`` — a fully connected layer over channels (``nn.Linear`` applied
channels-last, as the SlowFast/X3D heads do; ``co.Linear(channel_dim=1)``).

Spec fields: ``out``, ``bias`` (default true).

* params = ``c_I·c_O + b·c_O``
* MACs = ``c_I·c_O`` per position (``n_T·n_H·n_W`` positions per clip, one
  frame's ``n_H·n_W`` per step); bias adds ``c_O`` per position
* stateless, no delay
"""
from __future__ import annotations

from ..errors import ComemError
from .base import LayerKind
from .conv import positive


class Linear(LayerKind):
    name = "linear"
    summary = "fully connected over channels"
    fields = ("out", "bias")
    required = ("out",)

    def configure(self, raw, evaluate, c_in):
        bias = evaluate("bias", True)
        if not isinstance(bias, bool):
            raise ComemError(f"linear 'bias' must be true or false, got {bias!r}")
        return {"c_in": c_in, "c_out": positive(evaluate("out", None), "linear 'out'"), "bias": bias}

    def out_channels(self, cfg, c_in):
        return cfg["c_out"]

    def output(self, cfg, x):
        return x.with_(c=cfg["c_out"])

    def params(self, cfg, x):
        return cfg["c_in"] * cfg["c_out"] + (cfg["c_out"] if cfg["bias"] else 0)

    def work(self, cfg, x, y, step, ctx):
        positions = x.h * x.w if step else x.t * x.h * x.w
        out = {"linear_mac": cfg["c_in"] * cfg["c_out"] * positions}
        if cfg["bias"]:
            out["linear_bias"] = cfg["c_out"] * positions
        return out
