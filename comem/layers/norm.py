"""``batchnorm`` — batch normalisation (``nn.BatchNorm3d``; continual models
wrap it with ``co.forward_stepping``: it acts frame by frame, no state).

Spec fields: ``affine`` (default true).

* params = ``2·C`` when affine (weight and bias; running statistics are
  buffers, not parameters)
* work: one normalisation per element (``batchnorm`` op, ptflops and fvcore
  count it twice when affine)
* state 0, delay 0
"""
from __future__ import annotations

from ..errors import ComemError
from .base import LayerKind


class BatchNorm(LayerKind):
    name = "batchnorm"
    summary = "batch norm (frame-wise, stateless)"
    fields = ("affine",)
    framewise = True

    def configure(self, raw, evaluate, c_in):
        affine = evaluate("affine", True)
        if not isinstance(affine, bool):
            raise ComemError(f"batchnorm 'affine' must be true or false, got {affine!r}")
        return {"affine": affine, "c": c_in}

    def params(self, cfg, x):
        return 2 * cfg["c"] if cfg["affine"] else 0

    def work(self, cfg, x, y, step, knobs):
        n = x.frame if step else x.numel
        return {"batchnorm" if cfg["affine"] else "batchnorm_noaffine": n}

    def torch_module(self, cfg, x, kit, continual, knobs):
        m = kit.nn.BatchNorm3d(cfg["c"], affine=cfg["affine"])
        return kit.framewise(m) if continual else m

    def torch_work(self, m, inp, out):
        x = inp[0] if isinstance(inp, tuple) else inp
        return {"batchnorm" if m.affine else "batchnorm_noaffine": x.numel()}


BATCHNORM = BatchNorm()
