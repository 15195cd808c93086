"""``spacetime_position`` — a video transformer's class token and learned
space-time position embedding (pytorchvideo's
``SpatioTemporalClsPositionalEncoding``), on the tokens of a
``patch_embed``.

Spec fields: ``grid`` (``[T, H, W]``, the patch grid the tokens come
from), ``cls`` (prepend a learned class token, default true), ``separate``
(separate spatial and temporal embeddings, default true).

* output: ``n + cls`` tokens (``n = T·H·W``)
* params = ``cls·D`` (the class token) plus, separate: ``H·W·D + T·D +
  cls·D``; joint: ``(n + cls)·D``
* work: one add per element of the output (a functional add: no convention
  here counts it)
"""
from __future__ import annotations

from comem.core import shim
from comem.errors import ComemError
from comem.layers.base import LayerKind
from comem.layers.patch_embed import NO_CONTINUAL, grid_of, tokens_layout


class SpacetimePosition(LayerKind):
    name = "spacetime_position"
    summary = "class token + learned space-time position embedding of a video transformer's tokens"
    fields = ("grid", "cls", "separate")
    required = ("grid",)

    def configure(self, raw, evaluate, c_in, dims=3):
        flags = {}
        for key in ("cls", "separate"):
            v = evaluate(key, True)
            if not isinstance(v, bool):
                raise ComemError(f"spacetime_position {key!r} must be true or false, got {v!r}")
            flags[key] = v
        return {"c": c_in, "grid": grid_of(evaluate("grid", None), "spacetime_position 'grid'"), **flags,
                "dims": dims}

    def _cls(self, cfg):
        return 1 if cfg["cls"] else 0

    def output(self, cfg, x, env=None):
        return x.with_(h=x.h + self._cls(cfg))

    def check(self, cfg, x, y, where):
        t, h, w = cfg["grid"]
        if shim.is_concrete(x.h) and (x.t, x.w, x.h) != (1, 1, t * h * w):
            raise ComemError(f"{where}: {x.h} tokens arrive, but the position embedding was made for a "
                             f"{t}x{h}x{w} grid ({t * h * w} tokens); import the model at this input size")

    def params(self, cfg, x):
        t, h, w = cfg["grid"]
        c, cls = cfg["c"], self._cls(cfg)
        pos = (h * w * c + t * c + cls * c) if cfg["separate"] else (t * h * w + cls) * c
        return cls * c + pos

    def torch_tensors(self, cfg, x, continual=False):
        t, h, w = cfg["grid"]
        c, cls = cfg["c"], self._cls(cfg)
        parts = [cls * c] + ([h * w * c, t * c, cls * c] if cfg["separate"] else [(t * h * w + cls) * c])
        return [(p, False) for p in parts if p]

    def work(self, cfg, x, y, step, knobs):
        return {"add": y.numel}

    def continual_ok(self, cfg):
        return NO_CONTINUAL

    def op_class(self, cfg, x, y):
        return "elementwise"

    def torch_match(self, module):
        return type(module).__name__ == "SpatioTemporalClsPositionalEncoding" and \
            hasattr(module, "patch_embed_shape") and hasattr(module, "cls_embed_on")

    def torch_output_layout(self, module, layout, canon):
        return tokens_layout(layout, "a position embedding")

    def from_torch(self, m, dims):
        raw = {"kind": self.name, "grid": [int(v) for v in m.patch_embed_shape]}
        if not m.cls_embed_on:
            raw["cls"] = False
        if not m.sep_pos_embed:
            raw["separate"] = False
        return raw


SPACETIME_POSITION = SpacetimePosition()
