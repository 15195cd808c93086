"""``positional_encoding`` — continual-inference's
``co.RecyclingPositionalEncoding`` (Continual Transformers): adds one of
``E`` position embeddings to each token, cycling through them so a stream
never runs out of positions.

Spec fields: ``embeddings`` (``E``, required), ``learned`` (default true:
an ``nn.Embedding``; false: the fixed cyclic encoding of Ma et al., a
buffer).

* params = ``E·D`` when learned, else 0 (the ``E × D`` pattern is a buffer)
* work: one ``add`` per element (a functional add inside the module)
* state: the position index only (an int64 scalar, no floats); no delay
* the clip may not exceed ``E`` tokens (``assert T <= num_embeddings``)
"""
from __future__ import annotations

from comem.core import shim
from comem.errors import ComemError
from comem.layers.base import LayerKind, StateTensor
from comem.layers.conv import positive


class PositionalEncoding(LayerKind):
    name = "positional_encoding"
    summary = "recycling positional encoding (co.RecyclingPositionalEncoding): adds a cycled embedding"
    fields = ("embeddings", "learned")
    required = ("embeddings",)
    framewise = False

    def configure(self, raw, evaluate, c_in, dims=3):
        learned = evaluate("learned", True)
        if not isinstance(learned, bool):
            raise ComemError(f"positional_encoding 'learned' must be true or false, got {learned!r}")
        return {"c": c_in, "embeddings": positive(evaluate("embeddings", None), "positional_encoding 'embeddings'"),
                "learned": learned, "dims": dims}

    def check(self, cfg, x, y, where):
        if shim.is_concrete(x.t) and shim.is_concrete(cfg["embeddings"]) and x.t > cfg["embeddings"]:
            raise ComemError(f"{where}: the clip has {x.t} tokens but the encoding only {cfg['embeddings']} "
                             "positions; raise 'embeddings' or shorten the clip")

    def params(self, cfg, x):
        return cfg["embeddings"] * cfg["c"] if cfg["learned"] else 0

    def held(self, cfg, x):
        """``co.RecyclingPositionalEncoding`` (regular and continual models
        alike) holds an int64 ``state_index`` buffer; a fixed (sinusoidal)
        encoding is a float buffer of the embeddings' size (``pe.pattern``)."""
        h = super().held(cfg, x)
        h["int64"] = 1
        if not cfg["learned"]:
            h["buffers"] = cfg["embeddings"] * cfg["c"]
        return h

    def torch_tensors(self, cfg, x, continual=False):
        return [(cfg["embeddings"] * cfg["c"], False), (1, True)]

    def work(self, cfg, x, y, step, knobs):
        return {"add": x.frame if step else x.numel}

    def state_tensors(self, cfg, x, y, knobs):
        """``co.RecyclingPositionalEncoding``'s int64 ``state_index`` (0): the
        position of the next frame, no floats."""
        return [StateTensor("state_index", "index", (), "int64", 0)]

    def library_peak(self, cfg, x, y, knobs):
        """The looked-up embedding and the sum."""
        return 2 * y.frame

    def op_class(self, cfg, x, y):
        return "elementwise"

    def torch_module(self, cfg, x, kit, continual, knobs):
        return kit.co.RecyclingPositionalEncoding(cfg["c"], cfg["embeddings"], learned=cfg["learned"],
                                                  forward_update_index_steps=0)

    def torch_types(self, kit):
        return (kit.co.RecyclingPositionalEncoding,)

    def from_torch(self, m, dims):
        learned = type(m.pe).__name__ == "Embedding"
        raw = {"kind": "positional_encoding", "embeddings": int(m.pe.num_embeddings)}
        if not learned:
            raw["learned"] = False
        return raw


POSITIONAL_ENCODING = PositionalEncoding()
