"""``transformer_encoder`` — continual-inference's ``co.TransformerEncoder``
(``co.TransformerEncoderLayerFactory``): ``L`` post-norm encoder layers over
the tokens of a 1D model (input ``D × n``, ``n`` = the clip = the sequence
length), composed as the library composes them.

Spec fields: ``heads``, ``ff`` (the feed-forward width ``F``), ``layers``
(``L``, default 1), ``activation`` (``relu`` default, ``gelu``),
``activation_module`` (false: a functional call, as the library's default
``F.relu``; true: an ``nn.GELU()``/``nn.ReLU()`` module, as CoOadTR's),
``bias`` (the attention's in-projection bias, default true), ``out_bias``
(its out-projection's, default ``bias``), ``output``
(``last``: the newest token — the continual form; ``all``: every token, a
regular ``nn.TransformerEncoder`` with no step form).

Composition (``continual/transformer.py``):

* ``L = 1``: a single-output layer — per step the new token's query against
  the ``n`` cached keys/values, then norm, feed-forward, norm on one token;
  state ``2·n·D``.
* ``L ≥ 2``: a retroactive first layer (per step it updates all ``n``
  outputs, then norm, feed-forward, norm run on all ``n``; its residual is a
  ``RetroactiveUnity`` buffer of ``n`` tokens, ``n·D``), ``L − 2`` middle
  layers run as regular layers on the ``n`` tokens each step (the library
  leaves ``StepLocalTransformerEncoderLayer`` unimplemented; this is the
  paper's design), and a last layer run forward with one query
  (``single_output_forward``, residual ``SelectOrDelay``); state
  ``h(n−1) + 2D(n−1) + 2Dn + n·D``.
* receptive field ``n``, delay ``n − 1``.

Per layer on ``m`` tokens: the attention (:mod:`comem.layers.attention`),
two LayerNorms (``m·D`` each), ``m·(D·F + F·D)`` feed-forward MACs, ``m·F``
activations, two residual adds.  The last layer of a stack runs forward on
a channels-first ``(N, D, 1)`` tensor through ``co.Linear(channel_dim=1)``;
ptflops' linear hook takes the last axis (time, 1) for the features there
and reports ``2·(D + F)`` for its feed-forward (op
``linear_channels_first_reported``), while the plain ops
(``linear_channels_first_mac``/``_bias``) keep the ``2·D·F`` MACs.

The regular model is ``nn.TransformerEncoder`` (its attention counted by
ptflops' ``multihead_attention_counter_hook``); with ``output = "last"`` it
computes what one prediction needs: the first ``L − 1`` layers on all ``n``
tokens and the last layer's newest query.
"""
from __future__ import annotations

from comem.core import shim
from comem.errors import ComemError
from comem.layers.attention import ATTENTION_OPS, check_heads, mha_clip_work, mha_params, mha_step_work, torch_attention_work
from comem.layers.base import BatchAxis, LayerKind, StateTensor
from comem.layers.conv import positive

#: the last layer's feed-forward on a channels-first (N, C, 1) tensor: what
#: ptflops' linear hook reports there, and the arithmetic it really does
EXTRA_OPS = {**ATTENTION_OPS,
             "linear_channels_first_reported": {"ptflops": 1, "macs": 0, "flops": 0, "fvcore": 0, "executed": 0},
             "linear_channels_first_mac": {"ptflops": 0, "macs": 1, "flops": 2, "fvcore": 1, "executed": 1},
             "linear_channels_first_bias": {"ptflops": 0, "macs": 0, "flops": 1, "fvcore": 0, "executed": 1}}


def _add(total: dict, part: dict, times=1):
    for k, v in part.items():
        total[k] = total.get(k, 0) + times * v
    return total


class TransformerEncoder(LayerKind):
    name = "transformer_encoder"
    summary = "co.TransformerEncoder: retroactive first / single-output last layers (Continual Transformers)"
    fields = ("heads", "ff", "layers", "activation", "activation_module", "bias", "out_bias", "output")
    required = ("heads", "ff")
    #: an encoder step does its work whether or not it emits
    counts_without_output = True
    state_field = "layers"
    state_formulas = {"1": "2 * n * D", "2+": "h * (n - 1) + 2 * D * (n - 1) + 2 * D * n + n * D"}
    text_fields = ("activation", "output")
    op_weights = EXTRA_OPS

    def configure(self, raw, evaluate, c_in, dims=3):
        if dims != 1:
            raise ComemError("transformer_encoder runs over the tokens of a 1D model (dims = 1, input C x T)")
        cfg = {"c": c_in, "dims": dims}
        cfg["heads"] = positive(evaluate("heads", None), "transformer_encoder 'heads'")
        cfg["ff"] = positive(evaluate("ff", None), "transformer_encoder 'ff'")
        cfg["layers"] = positive(shim.structural(evaluate("layers", 1)), "transformer_encoder 'layers'")
        act = evaluate("activation", "relu")
        if act not in ("relu", "gelu"):
            raise ComemError(f"transformer_encoder 'activation' must be 'relu' or 'gelu', got {act!r}")
        cfg["activation"] = act
        for key, default in (("activation_module", False), ("bias", True), ("out_bias", None)):
            v = evaluate(key, cfg["bias"] if default is None else default)
            if not isinstance(v, bool):
                raise ComemError(f"transformer_encoder {key!r} must be true or false, got {v!r}")
            cfg[key] = v
        out = evaluate("output", "last")
        if out not in ("last", "all"):
            raise ComemError(f"transformer_encoder 'output' must be 'last' or 'all', got {out!r}")
        cfg["output"] = out
        check_heads(c_in, cfg["heads"], "transformer_encoder")
        if out == "last" and cfg["bias"] != cfg["out_bias"]:
            raise ComemError("continual-inference's attention sets both projection biases with one 'bias'; "
                             "give out_bias = bias")
        return cfg

    def output(self, cfg, x, env=None):
        return x.with_(t=1) if cfg["output"] == "last" else x

    def layer_params(self, cfg):
        D, F = cfg["c"], cfg["ff"]
        return mha_params(D, cfg["bias"], cfg["out_bias"]) + D * F + F + F * D + D + 4 * D

    def params(self, cfg, x):
        return cfg["layers"] * self.layer_params(cfg)

    def torch_tensors(self, cfg, x, continual=False):
        D, F = cfg["c"], cfg["ff"]
        one = [(3 * D * D, False), (D * D, False)] + ([(3 * D, False)] if cfg["bias"] else []) + \
            ([(D, False)] if cfg["out_bias"] else [])
        one += [(D * F, False), (F, False), (F * D, False), (D, False)] + [(D, False)] * 4
        return one * cfg["layers"] if shim.is_concrete(cfg["layers"]) else one

    def post_work(self, cfg, m, channels_first=False):
        """Norms, feed-forward, activation and residual adds on ``m`` tokens
        (``channels_first``: the stack's last layer, one token as (N, D, 1))."""
        D, F = cfg["c"], cfg["ff"]
        act = cfg["activation"] if cfg["activation_module"] else cfg["activation"] + "@functional"
        work = {"layernorm": 2 * m * D, act: m * F, "add": 2 * m * D}
        if channels_first:
            work.update(linear_channels_first_mac=2 * D * F, linear_channels_first_bias=F + D,
                        linear_channels_first_reported=2 * (D + F))
        else:
            work.update(linear_mac=m * 2 * D * F, linear_bias=m * (F + D))
        return work

    def work(self, cfg, x, y, step, knobs):
        D, h, n, L, b, bo = cfg["c"], cfg["heads"], x.t, cfg["layers"], cfg["bias"], cfg["out_bias"]
        total: dict = {}
        if not step:
            last_single = cfg["output"] == "last"
            full = L - 1 if last_single else L
            # the regular model: nn.MultiheadAttention (ptflops' own hook)
            _add(total, mha_clip_work(D, h, n, n, b, "regular", bo), full)
            _add(total, self.post_work(cfg, n), full)
            if last_single:
                _add(total, mha_clip_work(D, h, n, 1, b, "regular", bo))
                _add(total, self.post_work(cfg, 1))
            return total
        if shim.is_concrete(L) and L == 1:
            _add(total, mha_step_work(D, h, n, b, "single_output"))
            _add(total, self.post_work(cfg, 1))
            return total
        _add(total, mha_step_work(D, h, n, b, "retroactive"))
        _add(total, self.post_work(cfg, n))
        _add(total, mha_clip_work(D, h, n, n, b, "retroactive"), L - 2)
        _add(total, self.post_work(cfg, n), L - 2)
        _add(total, mha_clip_work(D, h, n, 1, b, "single_output"))
        _add(total, self.post_work(cfg, 1, channels_first=True))
        return total

    def symbols(self, cfg, x, y, knobs):
        return {"D": cfg["c"], "h": cfg["heads"], "n": x.t}

    def published_step_count(self, cfg, x, y, work_step):
        """What the Continual Transformers' toolchain reported for one step
        (continual-transformers on continual-inference 0.17, ptflops 0.6.9;
        :mod:`comem.reproduce.beyond`): no LayerNorm hook; the GELU module's
        count twice (under ``forward_step`` an ``nn`` module inside the
        library's ``co.Sequential`` fires its hooks twice, as BatchNorm and
        ReLU do in the CoX3D counts); for ``L ≥ 2`` the last layer's forward reported its
        in-projection over all ``n`` tokens (``3nD²``, 0.17's ``flops()``)
        and ptflops 0.6.9 read its channels-first ``(N, D, 1)`` feed-forward
        as ``D + F + 2``."""
        from comem.accounting.conventions import weigh

        D, F, n = cfg["c"], cfg["ff"], x.t
        count = weigh(work_step, "ptflops") - work_step.get("layernorm", 0) + work_step.get("gelu", 0)
        if not (shim.is_concrete(cfg["layers"]) and cfg["layers"] == 1):
            count = count + 3 * (n - 1) * D * D + (3 * (n - 1) * D if cfg["bias"] else 0)
            count = count - work_step.get("linear_channels_first_reported", 0) + (D + F + 2)
        return count

    def published_clip_count(self, cfg, x, y, work_clip):
        """What OadTR's authors counted for a regular encoder (ptflops 0.6.9
        with their hook for OadTR's ``SelfAttention``): the hook takes a
        batch-first ``(1, n, D)`` input for ``n`` batches of one token, so
        per layer it reports ``n(3D² + h(3d + 1) + D² + D)`` — none of the
        ``n²`` attention terms nor the query scaling of ptflops' own
        ``nn.MultiheadAttention`` hook; no LayerNorm hook; a linear layer's
        bias once per call."""
        from comem.accounting.conventions import weigh

        D, F, n, h = cfg["c"], cfg["ff"], x.t, cfg["heads"]
        full = cfg["layers"] - (1 if cfg["output"] == "last" else 0)
        drop = n * D + 2 * n * n * D + h * n * n - 3 * n * D - n * h
        count = weigh(work_clip, "ptflops") - work_clip.get("layernorm", 0) - full * drop
        return count - full * (n - 1) * (F + D)

    def state_formula(self, cfg, knobs):
        one = shim.is_concrete(cfg["layers"]) and cfg["layers"] == 1
        return self.state_formulas["1" if one else "2+"]

    def temporal(self, cfg, x, knobs):
        return (x.t, 0, 1)

    def continual_ok(self, cfg):
        if cfg["output"] == "all":
            return "an encoder returning every token has no step form; use output = 'last'"
        return None

    def state_tensors(self, cfg, x, y, knobs):
        """continual-inference's encoder state (``E = D/h``, ``n`` tokens,
        batch axis ``B·h`` for the attention's tensors): one layer — its
        single-output attention's ``Q_mem`` ``(B·h, 0, E)`` (empty),
        ``K_T_mem`` ``(B·h, E, n)``, ``V_mem`` ``(B·h, n, E)`` and int64
        ``stride_index`` (``−n``); two or more — the first layer's
        ``RetroactiveUnity`` residual buffer ``(n, B, D)`` and index
        (``−(n−1)``), then its retroactive attention's ``d_mem``
        ``(B·h, n−1, 1)``, ``AV_mem``, ``Q_mem`` ``(B·h, n−1, E)``,
        ``K_T_mem``, ``V_mem`` and ``stride_index`` (the later layers keep
        none)."""
        D, h, n = cfg["c"], cfg["heads"], x.t
        E, Bh = D // h, BatchAxis(h)
        kv = [StateTensor("K_T_mem", "keys-values", (Bh, E, n)), StateTensor("V_mem", "keys-values", (Bh, n, E)),
              StateTensor("stride_index", "counter", (), "int64", -n)]
        if shim.is_concrete(cfg["layers"]) and cfg["layers"] == 1:
            return [StateTensor("Q_mem", "queries", (Bh, 0, E))] + kv
        return [StateTensor("state_buffer", "delay-line", (n, BatchAxis(x.h * x.w), D)),
                StateTensor("state_index", "index", (), "int64", -(n - 1)),
                StateTensor("d_mem", "queries", (Bh, n - 1, 1)), StateTensor("AV_mem", "queries", (Bh, n - 1, E)),
                StateTensor("Q_mem", "queries", (Bh, n - 1, E))] + kv

    def library_peak(self, cfg, x, y, knobs):
        """The step's peak, from the tensors continual-inference's code
        creates (measured equal in tests/test_transformers.py):

        * ``L = 1``: the attention phase — q, k, v, the scaled q and the
          attended value (``5D``), the rolled key and value memories
          (``2nD``), scores and softmax (``2hn``) — or the feed-forward
          phase — the new memories, a norm and a residual (``2D``) and the
          hidden layer and its activation (``2F``);
        * ``L ≥ 2``: the retroactive step at its division — ``5D``, the
          ``n``-token output, updated values, rolled keys/values and the
          ``RetroactiveUnity`` residual (``5nD``), four ``(n−1)``-token maps
          (``4(n−1)D``), the normaliser and three attention edges
          (``2hn + 2h(n−1)``) — or its per-token feed-forward: the new state
          (``(n−1)D + 3nD + hn``), a token's norm, residual and stacked
          copies (``3D + nD``) and its hidden layer, activation and stack
          (``3F``)."""
        D, F, n, h = cfg["c"], cfg["ff"], x.t, cfg["heads"]
        if shim.is_concrete(cfg["layers"]) and cfg["layers"] == 1:
            return shim.maximum(5 * D + 2 * n * D + 2 * h * n, 2 * n * D + 2 * D + 2 * F)
        attention = 5 * D + 5 * n * D + 4 * (n - 1) * D + 2 * h * n + 2 * h * (n - 1)
        feed_forward = (n - 1) * D + 3 * n * D + h * n + 3 * D + n * D + 3 * F
        return shim.maximum(attention, feed_forward)

    def op_class(self, cfg, x, y):
        return "attention"

    def op_calls(self, cfg, step):
        """Per layer: attention (5), two linear layers, the activation, two
        norms and two residual sums."""
        return 12 * cfg["layers"]

    def torch_module(self, cfg, x, kit, continual, knobs):
        co, nn = kit.co, kit.nn
        act = {"relu": nn.ReLU, "gelu": nn.GELU}[cfg["activation"]]
        activation = act() if cfg["activation_module"] else {"relu": nn.functional.relu,
                                                                "gelu": nn.functional.gelu}[cfg["activation"]]
        if not continual:
            return kit.RegularEncoder(cfg["c"], cfg["heads"], cfg["ff"], cfg["layers"], activation, cfg["bias"],
                                      cfg["out_bias"], last=cfg["output"] == "last")
        if not (cfg["bias"] and cfg["out_bias"]):
            from comem.errors import ComemError
            raise ComemError("co.TransformerEncoderLayerFactory builds biased projections only; validate with "
                             "bias = true")
        factory = co.TransformerEncoderLayerFactory(d_model=cfg["c"], nhead=cfg["heads"], dim_feedforward=cfg["ff"],
                                                    dropout=0.0, activation=activation, sequence_len=x.t)
        return co.TransformerEncoder(factory, num_layers=cfg["layers"])

    def torch_types(self, kit):
        return (kit.co.TransformerEncoder,)

    def from_torch(self, m, dims):
        """A ``co.TransformerEncoder``: its attention and feed-forward modules
        give the fields."""
        if "norm" in dict(m.named_children()):
            raise ComemError("co.TransformerEncoder(norm=...): put the final norm after the encoder as a layer")
        attn = [s for s in m.modules() if "MultiheadAttention" in type(s).__name__]
        lin1 = next(s for s in m.modules() if type(s).__name__ == "Linear")
        act = next((s for s in m.modules() if type(s).__name__ in ("GELU", "ReLU")), None)
        fn = next((getattr(s, "fn", None) for s in m.modules() if type(s).__name__ == "Lambda"
                   and getattr(getattr(s, "fn", None), "__name__", "") in ("relu", "gelu")), None)
        raw = {"kind": "transformer_encoder", "heads": attn[0].num_heads, "ff": lin1.out_features,
               "layers": len(attn)}
        if act is not None:
            raw.update(activation=type(act).__name__.lower(), activation_module=True)
        elif fn is not None and fn.__name__ == "gelu":
            raw["activation"] = "gelu"
        if attn[0].in_proj_bias is None:
            raw["bias"] = False
        return raw

    def torch_hooked(self, module):
        """The whole encoder, once a step; hooks on its attention, linear,
        norm and activation modules add up what it did (each of those runs
        once per token, many times a step)."""
        if not getattr(module, "_comem_inner", False):
            module._comem_inner = True
            module._comem_ops = {}

            def inner(m, inp, out, top=module):
                _add(top._comem_ops, torch_inner_work(m, inp, out))
            for sub in module.modules():
                if sub is not module and _counted(sub):
                    sub.register_forward_hook(inner)
        return [module]

    def torch_work(self, m, inp, out):
        ops = dict(m._comem_ops)
        m._comem_ops.clear()
        return ops


def _counted(m) -> bool:
    name = type(m).__name__
    if name == "Lambda":  # a functional activation (F.relu / F.gelu) the library wrapped
        return getattr(getattr(m, "fn", None), "__name__", "") in ("relu", "gelu")
    return name in ("RetroactiveMultiheadAttention", "SingleOutputMultiheadAttention", "MultiheadAttention",
                    "Linear", "LayerNorm", "GELU", "ReLU", "BroadcastReduce", "NaiveResidual", "Sum")


def torch_inner_work(m, inp, out) -> dict:
    """What one module inside an encoder did, from its real tensors."""
    name = type(m).__name__
    x = inp[0] if isinstance(inp, tuple) else inp
    if "MultiheadAttention" in name:
        return torch_attention_work(m, inp, out)
    if name == "Linear":
        if getattr(m, "channel_dim", -1) == 1 and x.dim() == 3 and x.shape[2] == 1:
            # a channels-first (N, C, 1) token: what ptflops' hook makes of it, and what it is
            b = m.bias is not None
            reported = (x.shape[-1] * out.shape[-1] + (out.shape[-1] if b else 0)) * (x.numel() // x.shape[-1])
            n = x.shape[0]
            w = {"linear_channels_first_mac": m.in_features * m.out_features * n,
                 "linear_channels_first_reported": reported}
            if b:
                w["linear_channels_first_bias"] = m.out_features * n
            return w
        positions = x.numel() // m.in_features
        w = {"linear_mac": m.in_features * m.out_features * positions}
        if m.bias is not None:
            w["linear_bias"] = m.out_features * positions
        return w
    if name == "LayerNorm":
        return {"layernorm" if m.elementwise_affine else "layernorm_noaffine": x.numel()}
    if name in ("BroadcastReduce", "NaiveResidual", "Sum"):  # a residual sum
        return {"add": out.numel()} if out is not None else {}
    if name == "Lambda":
        return {m.fn.__name__ + "@functional": out.numel()}
    return {name.lower(): out.numel()}


TRANSFORMER_ENCODER = TransformerEncoder()
