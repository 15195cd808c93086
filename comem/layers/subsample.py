"""``temporal_subsample`` — take every ``factor``-th frame of the clip
(SlowFast's slow pathway input, ``PackPathway``: ``T // factor`` frames).
Regular models only; no work, no parameters."""
from __future__ import annotations

from comem.core import shim
from comem.errors import ComemError
from comem.layers.base import LayerKind
from comem.layers.conv import positive


class TemporalSubsample(LayerKind):
    name = "temporal_subsample"
    summary = "keep T // factor frames (SlowFast slow pathway input)"
    fields = ("factor",)
    required = ("factor",)

    def configure(self, raw, evaluate, c_in, dims=3):
        return {"factor": positive(shim.structural(evaluate("factor", None)), "temporal_subsample 'factor'"), "dims": dims}

    def output(self, cfg, x, env=None):
        return x.with_(t=shim.fdiv(x.t, cfg["factor"]))

    def check(self, cfg, x, y, where):
        if shim.is_concrete(y.t) and y.t < 1:
            raise ComemError(f"{where}: clip of {x.t} frames is shorter than the subsampling factor {cfg['factor']}")

    def continual_ok(self, cfg):
        return "temporal subsampling of the input has no continual (frame-by-frame) form"

    def op_class(self, cfg, x, y):
        return "copy"

    def torch_module(self, cfg, x, kit, continual, knobs):
        return kit.TemporalSubsample(cfg["factor"])


TEMPORAL_SUBSAMPLE = TemporalSubsample()
