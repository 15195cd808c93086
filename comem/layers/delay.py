"""``delay`` — hold frames back (``co.Delay``).  Placed by hand in a spec, or
inserted automatically on the shorter branch of a residual / SE / parallel
merge so both branches line up in time.

Spec fields: ``frames``.

* state = ``frames·C·H·W`` (``co.Delay`` buffers ``frames`` input frames)
* receptive field ``frames + 1``, delay ``frames``
* regular model: identity
"""
from __future__ import annotations

from .. import shim
from .base import LayerKind
from .conv import positive


class Delay(LayerKind):
    name = "delay"
    summary = "delays its input by a number of frames (co.Delay)"
    fields = ("frames",)
    required = ("frames",)
    state_formula = "delay·C·H·W"

    def configure(self, raw, evaluate, c_in):
        return {"frames": positive(evaluate("frames", None), "delay 'frames'", allow_zero=True), "c": c_in}

    def state(self, cfg, x, y, knobs, ctx):
        return cfg["frames"] * x.frame

    def state_text(self, cfg, x, y, knobs, ctx):
        return ("delay×C×H×W", f"{cfg['frames']}×{x.c}×{x.h}×{x.w}")

    def temporal(self, cfg, x, ctx):
        return (cfg["frames"] + 1, 0, 1)

    def library_peak(self, cfg, x, y, knobs):
        """``co.Delay`` returns ``buffer[index].clone()``: one copied frame
        (``Delay(0)`` returns its input)."""
        f = cfg["frames"]
        if shim.is_concrete(f) and f == 0:
            return 0
        return x.frame
