"""``flatten`` — channels, time and space into one feature vector
(``nn.Flatten(1)``, as classifier heads do after a global pool).

No spec fields.

* output ``(C·T·H·W) × 1 × 1 × 1``; no parameters, no work (a view), no state
* a continual model flattens each frame, so this has a frame-by-frame form
  only where one frame is left (``T = 1``, e.g. after a global pool)
"""
from __future__ import annotations

from comem.core import shim
from comem.errors import ComemError
from comem.layers.base import LayerKind, Shape


class Flatten(LayerKind):
    name = "flatten"
    summary = "flatten channels, time and space into features (nn.Flatten)"
    framewise = True

    def output(self, cfg, x, env=None):
        return Shape(x.c * x.t * x.h * x.w, 1, 1, 1)

    def temporal(self, cfg, x, knobs):
        if shim.is_concrete(x.t) and x.t != 1:
            raise ComemError(f"flatten over {x.t} frames mixes time into features: it has no frame-by-frame "
                             "(continual) form; pool over time before it")
        return (1, 0, 1)

    def library_peak(self, cfg, x, y, knobs):
        return 0  # a view of a contiguous map

    def torch_types(self, kit):
        return (kit.nn.Flatten,)

    torch_layout = "flatten"
    import_role = "flatten"

    def torch_module(self, cfg, x, kit, continual, knobs):
        m = kit.nn.Flatten(1)
        return kit.framewise(m) if continual else m


FLATTEN = Flatten()
