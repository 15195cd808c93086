"""``attention`` — multi-head self-attention over the tokens of a 1D model
(``nn.MultiheadAttention``, ``co.RetroactiveMultiheadAttention``,
``co.SingleOutputMultiheadAttention``; Hedegaard et al., "Continual
Transformers", ICLR 2023).

The tokens are the model's frames: input ``D × n`` (``D`` = embedding =
channels, ``n`` = sequence length = the clip at this layer); ``h`` heads of
``d = D/h``.  The sequence the continual layer attends over is the clip: its
receptive field is ``n`` (``sequence_len``) and its delay ``n − 1``, the
steps before its first output.

Spec fields: ``heads`` (required), ``mode`` — ``single_output`` (default;
the step computes the newest token's output), ``retroactive`` (the step
updates all ``n`` outputs) or ``regular`` (``nn.MultiheadAttention``: no
continual form) — ``output`` (``last``: the regular model computes the
newest token's output only, as ``single_output_forward`` does; ``all``: all
``n``; default ``last`` for ``single_output``, ``all`` otherwise), ``bias``
(the in-projection's bias, default true), ``out_bias`` (the out-projection's,
default ``bias``: ``nn.MultiheadAttention(bias=...)`` sets both; OadTR's
``SelfAttention`` has ``qkv_bias=False`` and a biased projection).

Formulas (per stream; ``q`` = queries the regular model computes: 1 or n):

* params = ``3D² + D² + b·3D + b_o·D``
* regular clip, plain: in-projections ``(q + 2n)·D²`` MACs, QKᵀ and AV
  ``2·q·n·D`` MACs, softmax ``h·q·n`` exps, out-projection ``q·D²``
* single-output step, plain: ``3D²`` + ``2nD`` + ``D²`` MACs (the new query
  against the ``n`` cached keys and values)
* retroactive step, plain: ``3D²`` + ``6nD − 4D`` (the three new attention
  edges, the top rows corrected, the new bottom row) + ``n·D²`` MACs (all
  ``n`` outputs are re-projected)
* state (``get_state()``): single-output ``2·n·D`` (``K_T_mem``, ``V_mem``;
  ``Q_mem`` is empty for the newest query); retroactive
  ``h(n−1) + 2D(n−1) + 2Dn`` (``d_mem``, ``AV_mem``, ``Q_mem``, ``K_T_mem``,
  ``V_mem``)

Counting: ptflops reports what the module's own hook says — for the
continual modules their ``flops()`` (multiplications only; continual-inference
``multihead_attention/*.py``), for ``nn.MultiheadAttention`` ptflops'
``multihead_attention_counter_hook`` — as the op ``attn_reported``; the
plain ops (``attn_proj_mac``, ``attn_mac``…) carry every other convention.
A forward runs ``F.scaled_dot_product_attention`` (``attn_sdpa_mac``, which
fvcore does not count); a continual step runs ``bmm``s (``attn_mac``).
The reported count and the plain one differ where the library's formula
does not follow its code: a single-output layer run forward on ``n`` tokens
(``single_output_forward``) projects ``2n+1`` tokens but ``flops()`` counts 3;
a retroactive layer's out-projection counts ``n·D(D+1)`` with or without a
bias.
"""
from __future__ import annotations

from comem.core import shim
from comem.errors import ComemError
from comem.layers.base import BatchAxis, LayerKind, StateTensor
from comem.layers.conv import positive

MODES = ("single_output", "retroactive", "regular")

#: ops of the attention kinds: the module's own reported count (ptflops'
#: view) and the plain arithmetic (every other convention)
ATTENTION_OPS = {
    "attn_reported": {"ptflops": 1, "macs": 0, "flops": 0, "fvcore": 0, "executed": 0},
    "attn_proj_mac": {"ptflops": 0, "macs": 1, "flops": 2, "fvcore": 1, "executed": 1},
    "attn_proj_bias": {"ptflops": 0, "macs": 0, "flops": 1, "fvcore": 0, "executed": 1},
    "attn_mac": {"ptflops": 0, "macs": 1, "flops": 2, "fvcore": 1, "executed": 1},
    # the same products inside F.scaled_dot_product_attention (every forward of nn.MultiheadAttention,
    # continual or not): fvcore has no handle for aten::scaled_dot_product_attention (0)
    "attn_sdpa_mac": {"ptflops": 0, "macs": 1, "flops": 2, "fvcore": 0, "executed": 1},
    # exponentials, the query scaling, the retroactive running-sum updates and
    # divisions: counted, weighed 0 (no convention here counts them)
    "attn_exp": {"ptflops": 0, "macs": 0, "flops": 0, "fvcore": 0, "executed": 0},
    "attn_elementwise": {"ptflops": 0, "macs": 0, "flops": 0, "fvcore": 0, "executed": 0},
}


def sdpa_regular_reported(n, d):
    """continual-inference ``scaled_dot_prod_attn_flops`` (muls), one head."""
    return 2 * n * n * d + 2 * n * d


def sdpa_retroactive_step_reported(n, d):
    """``retractive_scaled_dot_prod_attn_step_flops`` (muls), one head."""
    return 7 * n * d + 2 * n - 3 * d


def sdpa_single_output_reported(n, d):
    """``single_output_scaled_dot_prod_attn_flops`` (muls), one head."""
    return 2 * n * d + 2 * d


def mha_clip_work(D, h, n, queries, bias, mode, out_bias=None):
    """One regular (clip) forward over ``n`` tokens computing ``queries``
    outputs (``n``, or 1 for a single-output forward)."""
    out_bias = bias if out_bias is None else out_bias
    proj_tokens = queries + 2 * n
    work = {"attn_proj_mac": proj_tokens * D * D + queries * D * D,
            "attn_sdpa_mac": 2 * queries * n * D,
            "attn_exp": h * queries * n,
            "attn_elementwise": queries * D}
    b_total = (proj_tokens * D if bias else 0) + (queries * D if out_bias else 0)
    if b_total:
        work["attn_proj_bias"] = b_total
    d = D // h
    if mode == "regular":  # ptflops' multihead_attention_counter_hook
        reported = queries * D + proj_tokens * D * D + (proj_tokens * D if bias else 0)
        reported = reported + h * (queries * n * d + queries * n + queries * n * d) + queries * D * (D + 1)
    else:  # the continual module's flops() in forward mode
        steps = 1 if (mode == "single_output" and _is_one(queries)) else n
        reported = steps * 3 * D * D + (3 * steps * D if bias else 0)
        if mode == "single_output" and _is_one(queries):
            reported = reported + h * sdpa_single_output_reported(n, d)
        else:
            reported = reported + h * sdpa_regular_reported(n, d)
        reported = reported + (n if mode == "retroactive" else 1) * D * (D + 1)
    work["attn_reported"] = reported
    return work


def mha_step_work(D, h, n, bias, mode, out_bias=None):
    """One continual step (one new token) of a single-output or retroactive
    layer: the plain arithmetic of the library's step code and its reported
    ``flops()``."""
    out_bias = bias if out_bias is None else out_bias
    d = D // h
    if mode == "retroactive":
        work = {"attn_proj_mac": 3 * D * D + n * D * D,
                "attn_mac": 6 * n * D - 4 * D,
                "attn_exp": h * (3 * n - 2),
                # q scaling, d-sum update, AV top correction, output division
                "attn_elementwise": D + 2 * h * (n - 1) + 2 * (n - 1) * D + n * D}
        if bias or out_bias:
            work["attn_proj_bias"] = (3 * D if bias else 0) + (n * D if out_bias else 0)
        work["attn_reported"] = (3 * D * D + (3 * D if bias else 0) + h * sdpa_retroactive_step_reported(n, d)
                                 + n * D * (D + 1))
        return work
    work = {"attn_proj_mac": 3 * D * D + D * D, "attn_mac": 2 * n * D, "attn_exp": h * n, "attn_elementwise": D}
    if bias or out_bias:
        work["attn_proj_bias"] = (3 * D if bias else 0) + (D if out_bias else 0)
    work["attn_reported"] = 3 * D * D + (3 * D if bias else 0) + h * sdpa_single_output_reported(n, d) + D * (D + 1)
    return work


def mha_params(D, bias, out_bias=None):
    out_bias = bias if out_bias is None else out_bias
    return 4 * D * D + (3 * D if bias else 0) + (D if out_bias else 0)


def _is_one(v):
    return shim.is_concrete(v) and v == 1


def check_heads(D, h, where="attention"):
    if shim.is_concrete(D) and shim.is_concrete(h) and D % h:
        raise ComemError(f"{where}: heads={h} must divide the embedding dimension {D} (the channels)")


class Attention(LayerKind):
    name = "attention"
    summary = "multi-head self-attention over the clip's tokens (retroactive / single-output / regular)"
    fields = ("heads", "mode", "output", "bias", "out_bias")
    required = ("heads",)
    text_fields = ("mode", "output")
    op_weights = ATTENTION_OPS
    state_field = "mode"
    state_formulas = {"single_output": "2 * n * D", "retroactive": "h * (n - 1) + 2 * D * (n - 1) + 2 * D * n",
                      "regular": "0"}

    def configure(self, raw, evaluate, c_in, dims=3):
        if dims != 1:
            raise ComemError("attention runs over the tokens of a 1D model (dims = 1, input C x T)")
        heads = positive(evaluate("heads", None), "attention 'heads'")
        mode = evaluate("mode", "single_output")
        if mode not in MODES:
            raise ComemError(f"attention 'mode' must be one of {', '.join(MODES)}, got {mode!r}")
        output = evaluate("output", "last" if mode == "single_output" else "all")
        if output not in ("last", "all"):
            raise ComemError(f"attention 'output' must be 'last' or 'all', got {output!r}")
        if mode == "single_output" and output == "all":
            raise ComemError("a single-output attention computes the newest token only: output = 'last'")
        if mode == "retroactive" and output == "last":
            raise ComemError("a retroactive attention's forward returns all n tokens: output = 'all'")
        bias = evaluate("bias", True)
        out_bias = evaluate("out_bias", bias)
        for key, v in (("bias", bias), ("out_bias", out_bias)):
            if not isinstance(v, bool):
                raise ComemError(f"attention {key!r} must be true or false, got {v!r}")
        if mode != "regular" and bias != out_bias:
            raise ComemError("continual-inference's attention sets both projection biases with one 'bias'; "
                             "give out_bias = bias")
        check_heads(c_in, heads)
        return {"c": c_in, "heads": heads, "mode": mode, "output": output, "bias": bias, "out_bias": out_bias,
                "dims": dims}

    def output(self, cfg, x, env=None):
        return x.with_(t=1) if cfg["output"] == "last" else x

    def params(self, cfg, x):
        return mha_params(cfg["c"], cfg["bias"], cfg["out_bias"])

    def torch_tensors(self, cfg, x, continual=False):
        D = cfg["c"]
        out = [(3 * D * D, False), (D * D, False)]
        return out + ([(3 * D, False)] if cfg["bias"] else []) + ([(D, False)] if cfg["out_bias"] else [])

    def work(self, cfg, x, y, step, knobs):
        D, h, n = cfg["c"], cfg["heads"], x.t
        if step:
            return mha_step_work(D, h, n, cfg["bias"], cfg["mode"], cfg["out_bias"])
        return mha_clip_work(D, h, n, y.t, cfg["bias"], cfg["mode"], cfg["out_bias"])

    def symbols(self, cfg, x, y, knobs):
        return {"D": cfg["c"], "h": cfg["heads"], "n": x.t}

    def temporal(self, cfg, x, knobs):
        """The continual layer attends over the last ``n`` tokens and emits
        from the ``n``-th step on: receptive field ``n``, no padding, delay
        ``n − 1`` — what any ``co.Sequential`` holding it reports.  (A
        single-output module's own ``delay`` property says
        ``−query_index − 1 = 0``: its output belongs to the newest token; its
        ``padding`` stays 0, so a container still counts ``n − 1``.)"""
        return (x.t, 0, 1)

    def continual_ok(self, cfg):
        if cfg["mode"] == "regular":
            return "a regular nn.MultiheadAttention has no step form; use mode = 'single_output' or 'retroactive'"
        return None

    def state_tensors(self, cfg, x, y, knobs):
        """continual-inference's attention state, per head (``E = D/h``,
        ``N = n`` tokens, batch axis ``B·h``): single-output — ``Q_mem``
        ``(B·h, 0, E)`` (empty), ``K_T_mem`` ``(B·h, E, N)``, ``V_mem``
        ``(B·h, N, E)``; retroactive — ``d_mem`` ``(B·h, N−1, 1)``, ``AV_mem``
        and ``Q_mem`` ``(B·h, N−1, E)``, ``K_T_mem``, ``V_mem``; then the
        int64 ``stride_index``, which starts at ``−N``."""
        D, h, n = cfg["c"], cfg["heads"], x.t
        if cfg["mode"] == "regular":
            return []
        E, B = D // h, BatchAxis(h)
        kv = [StateTensor("K_T_mem", "keys-values", (B, E, n)), StateTensor("V_mem", "keys-values", (B, n, E))]
        if cfg["mode"] == "single_output":
            mem = [StateTensor("Q_mem", "queries", (B, 0, E))]
        else:
            mem = [StateTensor("d_mem", "queries", (B, n - 1, 1)), StateTensor("AV_mem", "queries", (B, n - 1, E)),
                   StateTensor("Q_mem", "queries", (B, n - 1, E))]
        return mem + kv + [StateTensor("stride_index", "counter", (), "int64", -n)]

    def library_peak(self, cfg, x, y, knobs):
        """The step's tensors at its peak (as in an encoder layer,
        :mod:`comem.layers.transformer`): single-output — q, k, v, the scaled
        q and the attended value (``5D``), the rolled key and value memories
        (``2nD``), scores and softmax (``2hn``); retroactive — ``5D``, the
        ``n``-token output, updated values and rolled keys/values
        (``4nD``), four ``(n−1)``-token maps, the normaliser and three
        attention edges (``2hn + 2h(n−1)``)."""
        D, h, n = cfg["c"], cfg["heads"], x.t
        if cfg["mode"] == "retroactive":
            return 5 * D + 4 * n * D + 4 * (n - 1) * D + 2 * h * n + 2 * h * (n - 1)
        return 5 * D + 2 * n * D + 2 * h * n

    def op_class(self, cfg, x, y):
        return "attention"

    def op_calls(self, cfg, step):
        """Projections, scores, softmax, weighted sum, output projection."""
        return 5

    def torch_module(self, cfg, x, kit, continual, knobs):
        D, h, n = cfg["c"], cfg["heads"], x.t
        kw = dict(embed_dim=D, num_heads=h, bias=cfg["bias"], batch_first=True, embed_dim_second=True,
                  sequence_len=n, forward_returns_attn_mask=False)
        if cfg["mode"] == "retroactive":
            return kit.co.RetroactiveMultiheadAttention(**kw)
        if cfg["mode"] == "single_output":
            return kit.co.SingleOutputMultiheadAttention(**kw, single_output_forward=cfg["output"] == "last")
        return kit.ChannelsFirstAttention(D, h, cfg["bias"])

    def torch_types(self, kit):
        return (kit.co.RetroactiveMultiheadAttention, kit.co.SingleOutputMultiheadAttention)

    def torch_hooked(self, module):
        return [getattr(module, "attn", module)]  # the regular kit module wraps nn.MultiheadAttention

    def torch_work(self, m, inp, out):
        return torch_attention_work(m, inp, out)

    def from_torch(self, m, dims):
        co = type(m).__name__
        mode = "retroactive" if co == "RetroactiveMultiheadAttention" else "single_output"
        if getattr(m, "kdim", m.embed_dim) != m.embed_dim or getattr(m, "vdim", m.embed_dim) != m.embed_dim:
            raise ComemError("attention with kdim/vdim different from embed_dim: comem reads self-attention only")
        if not getattr(m, "embed_dim_second", False) or not m.batch_first:
            raise ComemError("a continual attention read by comem takes (N, E, T) tensors: build it with "
                             "batch_first=True, embed_dim_second=True")
        raw = {"kind": "attention", "heads": m.num_heads, "mode": mode}
        if mode == "single_output" and not getattr(m, "single_output_forward", True):
            raise ComemError("SingleOutputMultiheadAttention(single_output_forward=False) returns n outputs in "
                             "forward and one per step; comem reads single_output_forward=True")
        if m.in_proj_bias is None:
            raw["bias"] = False
        return raw


def torch_attention_work(m, inp, out):
    """The ops one attention module performed, from its real tensors: a
    continual module's step (``(N, D)`` input) or forward (``(N, D, T)``)
    with its own ``flops()`` as the reported count; ``nn.MultiheadAttention``
    from its query/key shapes (batch first)."""
    x = inp[0] if isinstance(inp, tuple) else inp
    D, h = m.embed_dim, m.num_heads
    bias = m.in_proj_bias is not None
    out_bias = m.out_proj.bias is not None
    if hasattr(m, "sequence_len"):  # continual-inference
        mode = "retroactive" if type(m).__name__ == "RetroactiveMultiheadAttention" else "single_output"
        n, batch = m.sequence_len, x.shape[0]
        step = x.dim() == 2
        if step:
            work = mha_step_work(D, h, n, bias, mode, out_bias)
        else:
            queries = 1 if (mode == "single_output" and getattr(m, "single_output_forward", False)) else n
            work = mha_clip_work(D, h, n, queries, bias, mode, out_bias)
        saved = m.call_mode
        m.call_mode = "forward_step" if step else "forward"
        try:
            work["attn_reported"] = m.flops()
        finally:
            m.call_mode = saved
        return {k: v * batch for k, v in work.items()}
    q, k = inp[0], inp[1] if len(inp) > 1 else inp[0]
    batch, queries, n = q.shape[0], q.shape[1], k.shape[1]
    return {key: v * batch for key, v in mha_clip_work(D, h, n, queries, bias, "regular", out_bias).items()}


ATTENTION = Attention()

