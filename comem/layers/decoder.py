"""``transformer_decoder`` and ``class_token`` — OadTR's decoder and class
token (Wang et al., "OadTR: Online Action Detection with Transformers",
ICCV 2021; LukasHedegaard/CoOadTR branch ``original``:
``transformer_models/decoder.py``, ``attn.py``, ``ViT.py``).  Regular
models only: a class token and a decoder over the whole window have no
continual form (the Continual Transformers paper drops both).

``transformer_decoder`` — ``Q`` learned query tokens attend to themselves
and to the ``S`` input tokens (the encoder's output, the "memory") through
``L`` post-norm layers (Informer's ``DecoderLayer``: self-attention,
cross-attention, a 1×1-conv feed-forward, three LayerNorms), then a final
LayerNorm.  Spec fields: ``queries`` (``Q``), ``layers`` (``L``), ``heads``,
``ff`` (``F``), ``query_encoding`` (a learned ``Q × D`` position encoding
the model holds, default true; OadTR builds one and never adds it).  Input
``D × S``, output ``D × Q``.

* params = ``Q·D`` (queries) [+ ``Q·D``] + ``L·(8D² + 8D + 2DF + F + D + 6D)``
  + ``2D`` (final norm)
* per layer: the projections are ``nn.Linear`` (``linear_mac``: ``4QD²``
  self, ``2QD² + 2SD²`` cross; a bias per token), the attention products
  are functional einsums (``attn_mac``: ``2Q²D`` self, ``2QSD`` cross;
  ptflops 0), the feed-forward is two ``nn.Conv1d`` of kernel 1 (``2QDF``
  ``conv_mac``), three norms and residual adds on ``Q`` tokens

``class_token`` — ``mode = "append"``: append ``tokens`` learned tokens to
the sequence (``T → T + tokens``, ``tokens·C`` params); ``mode = "take"``:
keep only the last token (the class token, for the head).  No work.
"""
from __future__ import annotations

from comem.errors import ComemError
from comem.layers.base import LayerKind
from comem.layers.conv import positive


class TransformerDecoder(LayerKind):
    name = "transformer_decoder"
    summary = "OadTR's decoder: learned queries, self- and cross-attention to the input tokens (regular only)"
    fields = ("queries", "layers", "heads", "ff", "query_encoding")
    required = ("queries", "heads", "ff")

    def configure(self, raw, evaluate, c_in, dims=3):
        if dims != 1:
            raise ComemError("transformer_decoder runs over the tokens of a 1D model (dims = 1, input C x T)")
        cfg = {"c": c_in, "dims": dims}
        for key, default in (("queries", None), ("layers", 1), ("heads", None), ("ff", None)):
            cfg[key] = positive(evaluate(key, default), f"transformer_decoder {key!r}")
        if isinstance(c_in, int) and isinstance(cfg["heads"], int) and c_in % cfg["heads"]:
            raise ComemError(f"transformer_decoder: heads={cfg['heads']} must divide the embedding dimension {c_in}")
        enc = evaluate("query_encoding", True)
        if not isinstance(enc, bool):
            raise ComemError(f"transformer_decoder 'query_encoding' must be true or false, got {enc!r}")
        cfg["query_encoding"] = enc
        return cfg

    def output(self, cfg, x, env=None):
        return x.with_(t=cfg["queries"])

    def params(self, cfg, x):
        D, F, Q, L = cfg["c"], cfg["ff"], cfg["queries"], cfg["layers"]
        layer = 8 * D * D + 8 * D + 2 * D * F + F + D + 6 * D
        return Q * D * (2 if cfg["query_encoding"] else 1) + L * layer + 2 * D

    def work(self, cfg, x, y, step, knobs):
        D, F, Q, L, S = cfg["c"], cfg["ff"], cfg["queries"], cfg["layers"], x.t
        per_layer = {
            "linear_mac": 4 * Q * D * D + 2 * Q * D * D + 2 * S * D * D,
            "linear_bias": 4 * Q * D + 2 * Q * D + 2 * S * D,
            "attn_mac": 2 * Q * Q * D + 2 * Q * S * D,
            "attn_exp": cfg["heads"] * (Q * Q + Q * S),
            "conv_mac": 2 * Q * D * F,
            "conv_bias": Q * F + Q * D,
            "layernorm": 3 * Q * D,
            "add": 3 * Q * D,
            "gelu@functional": Q * F,
        }
        work = {k: L * v for k, v in per_layer.items()}
        work["layernorm"] = work["layernorm"] + Q * D   # the final norm
        return work

    def published_clip_count(self, cfg, x, y, work_clip):
        """ptflops 0.6.9 (OadTR's authors): no LayerNorm hook, a linear
        layer's bias once per call (``(N, tokens, D)`` inputs)."""
        from comem.accounting.conventions import weigh

        D, L = cfg["c"], cfg["layers"]
        once = L * (6 * D + 2 * D)                       # eight projections a layer, one bias row each
        return weigh(work_clip, "ptflops") - work_clip.get("layernorm", 0) - work_clip.get("linear_bias", 0) + once

    def op_class(self, cfg, x, y):
        return "attention"

    def op_calls(self, cfg, step):
        """Per layer: self- and cross-attention (5 each), two linear layers,
        the activation, three norms and three residual sums."""
        return 19 * cfg["layers"]

    def continual_ok(self, cfg):
        return "a decoder attending to the whole window has no step form (Continual Transformers drop it)"


class ClassToken(LayerKind):
    name = "class_token"
    summary = "append a learned class token to the sequence, or take it back out (regular only)"
    fields = ("mode", "tokens")
    text_fields = ("mode",)

    def configure(self, raw, evaluate, c_in, dims=3):
        if dims != 1:
            raise ComemError("class_token works on the tokens of a 1D model (dims = 1, input C x T)")
        mode = evaluate("mode", "append")
        if mode not in ("append", "take"):
            raise ComemError(f"class_token 'mode' must be 'append' or 'take', got {mode!r}")
        return {"c": c_in, "mode": mode, "tokens": positive(evaluate("tokens", 1), "class_token 'tokens'"),
                "dims": dims}

    def output(self, cfg, x, env=None):
        return x.with_(t=x.t + cfg["tokens"]) if cfg["mode"] == "append" else x.with_(t=1)

    def params(self, cfg, x):
        return cfg["tokens"] * cfg["c"] if cfg["mode"] == "append" else 0

    def op_class(self, cfg, x, y):
        return "concat"

    def continual_ok(self, cfg):
        return "a class token in a sliding window has no step form (Continual Transformers drop it)"


TRANSFORMER_DECODER = TransformerDecoder()
CLASS_TOKEN = ClassToken()
