"""``sequence_pool`` — a video transformer head's pooling of its tokens
(pytorchvideo's ``SequencePool``): the class token (``x[:, 0]``) or the
mean of all tokens (``x.mean(1)``).

Spec fields: ``mode`` (``cls`` default, or ``mean``).

* output: one token, ``(B, D)``
* work: ``mean``: one add per element (``token_mean``; neither ptflops'
  module hooks nor fvcore count it); ``cls``: none
"""
from __future__ import annotations

from comem.errors import ComemError
from comem.layers.base import LayerKind
from comem.layers.patch_embed import NO_CONTINUAL, tokens_layout

MODES = ("cls", "mean")


class SequencePool(LayerKind):
    name = "sequence_pool"
    summary = "a transformer head's token pooling: the class token or the mean of the tokens"
    fields = ("mode",)
    text_fields = ("mode",)
    op_weights = {"token_mean": {"ptflops": 0, "macs": 0, "flops": 0, "fvcore": 0, "executed": 0}}

    def configure(self, raw, evaluate, c_in, dims=3):
        mode = evaluate("mode", "cls")
        if mode not in MODES:
            raise ComemError(f"sequence_pool 'mode' must be one of {', '.join(MODES)}, got {mode!r}")
        return {"mode": mode, "dims": dims}

    def output(self, cfg, x, env=None):
        return x.with_(t=1, h=1, w=1)

    def work(self, cfg, x, y, step, knobs):
        return {"token_mean": x.numel} if cfg["mode"] == "mean" else {}

    def continual_ok(self, cfg):
        return NO_CONTINUAL

    def torch_match(self, module):
        return type(module).__name__ == "SequencePool" and getattr(module, "mode", None) in MODES

    def torch_output_layout(self, module, layout, canon):
        tokens_layout(layout, "a sequence pool")
        return ("B", "C")

    def from_torch(self, m, dims):
        raw = {"kind": self.name}
        if m.mode != "cls":
            raw["mode"] = m.mode
        return raw


SEQUENCE_POOL = SequencePool()
