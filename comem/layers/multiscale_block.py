"""``multiscale_block`` — one block of a multiscale vision transformer
(MViT; Fan et al., ICCV 2021; pytorchvideo's ``MultiScaleBlock`` with its
``MultiScaleAttention``), on the tokens of a ``patch_embed``:

    x ─ LayerNorm ─ pooled attention ─ + ─ LayerNorm ─ MLP ─ + ─
    └── max-pool of the tokens (skip) ─┘   └─ (Linear D→D') ─┘

Pooled attention: ``q, k, v = Linear(x)`` on all ``N`` tokens (``N = cls +
T·H·W``), each pooled over the token grid (the class token passes by) with
a kernel and stride — a depthwise ``Conv3d`` per head then a LayerNorm over
the head's channels (``pool = "conv"``), or an ``avg``/``max`` pool — to
``N_q`` queries and ``N_k`` keys/values; ``softmax(q·kᵀ·d^-1/2)·v``; a
projection.  The skip max-pools the input with the query's stride
(kernel ``s + 1`` where ``s > 1``; ``skip_stride``: present
whenever the block is given a query stride, even ``[1, 1, 1]``).  The MLP is ``Linear(D, F)``, GELU,
``Linear(F, D')``; when ``D' ≠ D`` the skip is projected from the second
norm's output.

Spec fields: ``grid`` (``[T, H, W]`` of the input tokens), ``heads``
(``h``), ``out`` (``D'``, default ``D``), ``hidden`` (``F``), ``qkv_bias``
(default true), ``pool`` (``conv`` default, ``avg``, ``max``),
``kernel_q``/``stride_q`` and ``kernel_kv``/``stride_kv`` (omitted: no
pooling), ``skip_stride`` (the skip's max pool; omitted: none), ``cls`` (the first token is a class token, default true).

Per clip (``d = D/h``; pools pad ``k//2``; the output grid of a pool
follows the convolution formula):

* params: norms ``2D + 2D``, q/k/v ``3(D² + b·D)``, projection ``D² + D``,
  conv pools ``d·∏k`` each and their norms ``2d`` each, MLP ``DF + F + FD'
  + D'``, skip projection ``DD' + D'`` when ``D' ≠ D``
* ``linear_mac``: ``3N·D² + N_q·D² + N_q·D·F + N_q·F·D' (+ N_q·D·D')``
  (bias: one add per output element: ptflops' linear hook)
* ``attn_mac``: ``2·N_q·N_k·D`` (``q·kᵀ`` and ``·v``: fvcore's matmul)
* ``conv_mac`` of conv pools: ``D·∏grid_out·∏k`` each; ``max_pool3d`` /
  ``avg_pool3d``: the pool's input ``D·T·H·W`` (ptflops' pool hook), the
  skip's max pool included
* ``layernorm``: ``N·D + N_q·D`` (+ ``N_q·D + 2N_k·D`` for conv pools' norms)
* ``gelu``: ``N_q·F``; softmax ``h·N_q·N_k`` exps, the scaling as many
  multiplications (no convention here counts them)
* transient: the ``library`` rule is refused (not modelled); the other
  rules read the token tensors between blocks
* regular only: the attention mixes all tokens of the clip
"""
from __future__ import annotations

from comem.errors import ComemError
from comem.layers.attention import ATTENTION_OPS
from comem.layers.base import LayerKind, conv_out
from comem.layers.conv import positive
from comem.layers.patch_embed import NO_CONTINUAL, grid_of, tokens_layout

POOLS = ("conv", "avg", "max")


def _prod(v):
    out = 1
    for n in v:
        out = out * n
    return out


class MultiscaleBlock(LayerKind):
    name = "multiscale_block"
    summary = "MViT block: pooled multi-head attention (pooled q, k, v; max-pooled skip) + MLP, on tokens"
    fields = ("grid", "heads", "out", "hidden", "qkv_bias", "pool", "kernel_q", "stride_q", "kernel_kv",
              "stride_kv", "skip_stride", "cls")
    required = ("grid", "heads", "hidden")
    text_fields = ("pool",)
    op_weights = {k: v for k, v in ATTENTION_OPS.items() if k in ("attn_mac", "attn_exp", "attn_elementwise")}

    def configure(self, raw, evaluate, c_in, dims=3):
        cfg = {"c": c_in, "dims": dims, "grid": grid_of(evaluate("grid", None), "multiscale_block 'grid'"),
               "heads": positive(evaluate("heads", None), "multiscale_block 'heads'"),
               "hidden": positive(evaluate("hidden", None), "multiscale_block 'hidden'"),
               "c_out": positive(evaluate("out", c_in), "multiscale_block 'out'")}
        for key in ("qkv_bias", "cls"):
            v = evaluate(key, True)
            if not isinstance(v, bool):
                raise ComemError(f"multiscale_block {key!r} must be true or false, got {v!r}")
            cfg[key] = v
        cfg["pool"] = evaluate("pool", "conv")
        if cfg["pool"] not in POOLS:
            raise ComemError(f"multiscale_block 'pool' must be one of {', '.join(POOLS)}, got {cfg['pool']!r}")
        for which in ("q", "kv"):
            k, s = evaluate(f"kernel_{which}", None), evaluate(f"stride_{which}", None)
            if (k is None) != (s is None):
                raise ComemError(f"multiscale_block: give both kernel_{which} and stride_{which}, or neither")
            cfg[which] = None if k is None else (grid_of(k, f"multiscale_block 'kernel_{which}'"),
                                                 grid_of(s, f"multiscale_block 'stride_{which}'"))
        skip = evaluate("skip_stride", None)
        cfg["skip"] = None if skip is None else grid_of(skip, "multiscale_block 'skip_stride'")
        if isinstance(c_in, int) and c_in % cfg["heads"]:
            raise ComemError(f"multiscale_block: {c_in} channels do not split into {cfg['heads']} heads")
        return cfg

    def out_channels(self, cfg, c_in):
        return cfg["c_out"]

    # -- the token grids -------------------------------------------------------------
    @staticmethod
    def _pooled(grid, pool):
        if pool is None:
            return grid
        k, s = pool
        return tuple(conv_out(n, kk, ss, kk // 2) for n, kk, ss in zip(grid, k, s))

    def sizes(self, cfg):
        cls = 1 if cfg["cls"] else 0
        grid = cfg["grid"]
        gq, gk = self._pooled(grid, cfg["q"]), self._pooled(grid, cfg["kv"])
        return cls + _prod(grid), cls + _prod(gq), cls + _prod(gk), gq, gk

    def output(self, cfg, x, env=None):
        _, nq, _, _, _ = self.sizes(cfg)
        return x.with_(c=cfg["c_out"], t=1, h=nq, w=1)

    def check(self, cfg, x, y, where):
        n = self.sizes(cfg)[0]
        if isinstance(x.h, int) and (x.t, x.h, x.w) != (1, n, 1):
            t, h, w = cfg["grid"]
            raise ComemError(f"{where}: {x.h} tokens arrive, but the block was made for a {t}x{h}x{w} grid "
                             f"({n} tokens); import the model at this input size")

    def params(self, cfg, x):
        c, co, f, h = cfg["c"], cfg["c_out"], cfg["hidden"], cfg["heads"]
        d = c // h
        p = 4 * c + 3 * (c * c + (c if cfg["qkv_bias"] else 0)) + c * c + c
        p += c * f + f + f * co + co + (c * co + co if co != c else 0)
        if cfg["pool"] == "conv":
            for pool, n in ((cfg["q"], 1), (cfg["kv"], 2)):
                if pool is not None:
                    p += n * (d * _prod(pool[0]) + 2 * d)
        return p

    def work(self, cfg, x, y, step, knobs):
        c, co, f, h = cfg["c"], cfg["c_out"], cfg["hidden"], cfg["heads"]
        n, nq, nk, gq, gk = self.sizes(cfg)
        b = 1 if cfg["qkv_bias"] else 0
        space = _prod(cfg["grid"])
        w = {"linear_mac": 3 * n * c * c + nq * c * c + nq * c * f + nq * f * co,
             "linear_bias": 3 * b * n * c + nq * c + nq * f + nq * co,
             "attn_mac": 2 * nq * nk * c, "attn_exp": h * nq * nk, "attn_elementwise": h * nq * nk,
             "layernorm": n * c + nq * c, "gelu": nq * f, "add": nq * c + nq * co}
        if cfg["skip"] is not None:
            w["max_pool3d"] = c * space
        if co != c:
            w["linear_mac"] += nq * c * co
            w["linear_bias"] += nq * co
        for pool, grid, tokens, times in ((cfg["q"], gq, nq, 1), (cfg["kv"], gk, nk, 2)):
            if pool is None:
                continue
            if cfg["pool"] == "conv":
                w["conv_mac"] = w.get("conv_mac", 0) + times * c * _prod(grid) * _prod(pool[0])
                w["layernorm"] += times * tokens * c
            else:
                op = f"{cfg['pool']}_pool3d"
                w[op] = w.get(op, 0) + times * c * space
        return w

    def library_peak_clip(self, cfg, x, y, knobs):
        """Not modelled: what a block's forward holds at its peak (its q, k,
        v, the pooling copies, the residual and MLP tensors its Python
        variables keep alive) is not written as a formula yet; refused in one
        line rather than answered wrongly."""
        raise ComemError("multiscale_block: the 'library' transient rule does not model a pooled-attention "
                         "block's forward; use transient=largest-map or the paper profile")

    def continual_ok(self, cfg):
        return NO_CONTINUAL

    def op_class(self, cfg, x, y):
        return "attention"

    def op_calls(self, cfg, step):
        return 12

    # -- import: pytorchvideo's MultiScaleBlock (recognised by what it holds) -------
    #: the module returns ``(tokens, thw)``: the tokens are item 0
    torch_output_item = 0

    def torch_match(self, module):
        attn = getattr(module, "attn", None)
        return type(module).__name__ == "MultiScaleBlock" and type(attn).__name__ == "MultiScaleAttention"

    def torch_output_layout(self, module, layout, canon):
        return tokens_layout(layout, "a multiscale block")

    def torch_call_fields(self, module, args) -> dict:
        """Fields read off the call: the token grid ``thw`` the block is
        called with (``blk(x, thw)``)."""
        thw = args[1] if len(args) > 1 else None
        if not isinstance(thw, (list, tuple)) or len(thw) != 3:
            raise ComemError("a multiscale block called without its token grid (x, [T, H, W])")
        return {"grid": [int(v) for v in thw]}

    def from_torch(self, m, dims):
        a = m.attn
        problems = []
        if getattr(a, "pool_first", False):
            problems.append("pooling before the q/k/v projections (pool_first)")
        for part, want in ((m.norm1, "LayerNorm"), (m.norm2, "LayerNorm"), (m.mlp.act, "GELU")):
            if type(part).__name__ != want:
                problems.append(f"a {type(part).__name__} where comem reads a {want}")
        if m.pool_skip is not None and type(m.pool_skip).__name__ != "MaxPool3d":
            problems.append(f"a skip pooled by {type(m.pool_skip).__name__}")
        if problems:
            raise ComemError("a multiscale block with " + ", ".join(problems) + ", which comem does not map")
        raw = {"kind": self.name, "heads": int(a.num_heads), "hidden": int(m.mlp.fc1.out_features)}
        if m.dim_out != m.dim:
            raw["out"] = int(m.dim_out)
        if a.q.bias is None:
            raw["qkv_bias"] = False
        pool = a.pool_q if a.pool_q is not None else a.pool_k
        mode = {"Conv3d": "conv", "AvgPool3d": "avg", "MaxPool3d": "max", "NoneType": "conv"}.get(
            type(pool).__name__)
        if mode is None:
            raise ComemError(f"a multiscale block pooling with {type(pool).__name__}, which comem does not map")
        if mode != "conv":
            raw["pool"] = mode
        for which, pool in (("q", a.pool_q), ("kv", a.pool_k)):
            if pool is not None:
                k = pool.kernel_size
                s = pool.stride
                raw[f"kernel_{which}"] = [int(v) for v in (k if isinstance(k, (tuple, list)) else (k,) * 3)]
                raw[f"stride_{which}"] = [int(v) for v in (s if isinstance(s, (tuple, list)) else (s,) * 3)]
        if m.pool_skip is not None:
            st = m.pool_skip.stride
            raw["skip_stride"] = [int(v) for v in (st if isinstance(st, (tuple, list)) else (st,) * 3)]
        if not a.has_cls_embed:
            raw["cls"] = False
        return raw


MULTISCALE_BLOCK = MultiscaleBlock()
