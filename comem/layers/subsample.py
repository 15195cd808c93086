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

    aten_ops = ("index_select", "slice")

    def from_aten(self, call):
        """Every ``factor``-th frame (``x[:, :, ::f]``, ``index_select`` of
        ``T // f`` frames as PackPathway takes them); None for all frames."""
        dim = call.args[1] % len(call.layout)
        if call.layout[dim] != "T":
            raise ComemError(f"aten.{call.name} along {call.layout[dim]!r} (comem follows frame subsampling)")
        t_in, t_out = call.shape[dim], call.out_shape[dim]
        if call.name == "slice":
            start, step = (call.args[2] if len(call.args) > 2 else 0) or 0, call.args[4] if len(call.args) > 4 else 1
            if start != 0 or t_in % step:
                end = call.args[3] if len(call.args) > 3 else None
                raise ComemError(f"a slice of frames {start}:{end}:{step} of {t_in}")
            factor = step
        else:
            factor = t_in // t_out if t_out else 0
        if factor < 1 or t_in // factor != t_out:
            raise ComemError(f"a selection of {t_out} of {t_in} frames that is not every n-th")
        call.out_layout = call.layout
        return None if factor == 1 else {"kind": self.name, "factor": factor}


TEMPORAL_SUBSAMPLE = TemporalSubsample()
