"""``mean`` — the average over height and width of each frame (the ResNet
head's ``x.mean([1, 2, 3])`` after its projection; after the head's pool the
regular model has one frame, so it is the head's whole mean).

No spec fields.

* output ``C × T × 1 × 1``; no parameters, no state, no delay
* work: one ``mean`` op per input element — weighed 0 by every convention
  (ptflops counts no functional op, fvcore has no handle for ``aten::mean``)
"""
from __future__ import annotations

from comem.layers.base import LayerKind


class Mean(LayerKind):
    name = "mean"
    summary = "average over height and width (the ResNet head's final mean)"
    framewise = True
    #: ptflops counts no functional op, fvcore has no handle for aten::mean,
    #: and an average is neither a multiply-accumulate nor a bias
    op_weights = {"mean": {"ptflops": 0, "macs": 0, "flops": 0, "fvcore": 0, "executed": 0}}

    def output(self, cfg, x, env=None):
        return x.with_(h=1, w=1)  # a 2D model's width is already 1; a 1D model's height too

    def work(self, cfg, x, y, step, knobs):
        return {"mean": x.frame if step else x.numel}

    def op_class(self, cfg, x, y):
        return "pool"

    def torch_module(self, cfg, x, kit, continual, knobs):
        m = kit.SpatialMean(cfg.get("dims", 3))
        return kit.framewise(m) if continual else m

    def torch_work(self, m, inp, out):
        x = inp[0] if isinstance(inp, tuple) else inp
        return {"mean": x.numel()}

    aten_ops = ("mean", "adaptive_avg_pool3d", "_adaptive_avg_pool3d")

    def from_aten(self, call):
        """``x.mean`` over the frame's axes: of a clip laid out canonically,
        or of one frame (``x[:, :, t]`` in a ``co.Lambda``); an adaptive
        average pool to ``(T, 1, 1)`` (MoViNet's head, each frame's mean)."""
        if call.name != "mean":
            size = call.arg(1, "output_size")
            size = list(size) if isinstance(size, (list, tuple)) else [size] * 3
            if call.layout == tuple(call.canon) and len(size) == 3 and size[0] == call.shape[2] and size[1:] == [1, 1]:
                call.out_layout = call.layout
                return {"kind": self.name, "functional": True}
            return None
        axes = call.axes(call.arg(1, "dim"))
        keep = call.arg(2, "keepdim", False)
        frame = tuple(a for a in call.canon if a != "T")
        if call.frame and call.layout == frame and axes == call.space and axes:
            call.out_layout = call.layout if keep else ("B", "C")
            return {"kind": self.name, "functional": True}
        if call.layout == tuple(call.canon) and axes == call.space and axes:
            call.out_layout = tuple(call.canon) if keep else ("B", "C", "T")
            return {"kind": self.name, "functional": True}
        call.refusal = (f"a mean over {sorted(axes)} of a tensor laid out {call.layout} (comem reads means over "
                        "time and space, or space)")
        return None


MEAN = Mean()
