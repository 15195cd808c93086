"""Composite kinds that expand into a parallel merge of branches.

``residual`` — a residual block (``co.Residual`` for identity shortcuts,
``co.BroadcastReduce`` for projections).  Spec fields: ``main`` (layers),
``shortcut`` (``"auto"``: identity when channels and strides match, else a
1×1×1 conv + batchnorm projection with the main branch's stride;
``"identity"``; ``"projection"``; or a list of layers), ``merge``
(``sum``), ``align`` (``delay``, default: the shortcut is delayed by the
main branch's delay ``r−1−p``; ``centre``: by the centre of the main
branch's window ``(r−1)/2``, the regular model cropping the shortcut's input
by ``(r−1)/2 − p`` frames at each end — ``co.Residual(residual_shrink=True)``
and continual-skeletons' blocks around unpadded temporal convolutions).
Adds no state of its own except the *delay* that aligns the
shortcut with the main branch: ``delay·C·H·W`` where ``delay`` is the main
branch's delay and the placement knob ``residual_delay`` decides ``C·H·W``:
``block-input`` (paper, Table 4: the block input) or ``auto``
(continual-inference: ``co.Residual`` delays the input; ``BroadcastReduce``'s
auto-delay sits *after* a projection, on its output).

``se`` — squeeze-and-excitation (X3D): global average pool → 1×1×1 conv
(``C → round_width(C·ratio)``, bias) → ReLU (or Swish) → 1×1×1 conv (bias)
→ sigmoid, multiplied back onto the input.  Spec fields: ``ratio``,
``divisor`` (8), ``min_width`` (8), ``act``, ``pool`` (MoViNet's se_type:
``3d``, the default, pools the clip; ``2d`` each frame's spatial mean, no
state; ``2plus3d`` concatenates each frame's mean with the pool over time
of those means, 2C channels into the squeeze, ``round_width(2C·ratio)``).  The regular model pools the
whole clip; the continual pool's temporal window is the ``se_pool`` knob:
``frame`` (the paper: temporal pooling dropped, no state, no delay) or
``clip`` (pooling kept over the clip: state and a delay on the multiplied
branch).
"""
from __future__ import annotations

from comem.core import shim
from comem.layers.nodes import LayerNode, ParallelNode, SeqNode, total_stride
from comem.layers.activation import RELU, SIGMOID, SWISH
from comem.layers.base import LayerKind
from comem.layers.conv import CONV
from comem.layers.delay import DELAY
from comem.layers.mean import MEAN
from comem.layers.norm import BATCHNORM
from comem.layers.pool import AVGPOOL


class Residual(LayerKind):
    name = "residual"
    summary = "residual block: main branch + identity/projection shortcut, delay-aligned"
    fields = ("main", "shortcut", "merge", "align")
    required = ("main",)
    nested = ("main", "shortcut")
    text_fields = ("merge", "align")
    composite = True

    def expand(self, b, raw, env, c_in, path, stage, blocks, multiplicity):
        main_children, c_out = b.build_list(raw["main"], env, c_in, path, stage, blocks, multiplicity)
        main = SeqNode(main_children, "main", path, stage, 1, blocks)
        shortcut = raw.get("shortcut", "auto")
        merge = raw.get("merge", "sum")
        if merge not in ("sum", "mul", "concat"):
            b.fail(path, f"merge must be 'sum', 'mul' or 'concat', got {merge!r}")
        align = raw.get("align", "delay")
        if align not in ("delay", "centre"):
            b.fail(path, f"align must be 'delay' or 'centre', got {align!r}")
        strides = total_stride(main)
        if isinstance(shortcut, list):
            sc_children, c_sc = b.build_list(shortcut, env, c_in, path + ".shortcut", stage, blocks, multiplicity)
            if merge != "concat" and not _equal(c_sc, c_out):
                b.fail(path, f"shortcut gives {c_sc} channels but the main branch {c_out}")
        else:
            same = all(shim.is_concrete(s) and s == 1 for s in strides) and _equal(c_in, c_out)
            if shortcut == "identity" and not same:
                b.fail(path, "an identity shortcut needs equal channels and stride 1; use 'auto' or 'projection'")
            if shortcut == "identity" or (shortcut == "auto" and same):
                sc_children = []
            else:
                conv_cfg = {"c_in": c_in, "c_out": c_out, "kernel": (1, 1, 1), "stride": tuple(strides),
                            "padding": (0, 0, 0), "dilation": (1, 1, 1), "groups": 1, "bias": False, "dims": b.dims}
                bn_cfg = BATCHNORM.configure({}, lambda k, d: d, c_out, b.dims)
                sc_children = [
                    LayerNode(CONV, conv_cfg, "proj", path + ".proj", stage, "projection", blocks, multiplicity),
                    LayerNode(BATCHNORM, bn_cfg, "proj_bn", path + ".proj_bn", stage, None, blocks, multiplicity),
                ]
        sc = SeqNode(sc_children, "shortcut", path + ".shortcut", stage, 1, blocks)
        label = raw.get("label") or "residual"
        node = ParallelNode([sc, main], merge, path.rsplit(".", 1)[-1], path, stage, "residual", label, blocks,
                            multiplicity, shortcut=0, aligner=DELAY, align=align)
        c = c_out if merge != "concat" else c_in + c_out
        return node, c

    def is_auto_shortcut(self, shortcut, main_strides, c_in, c_out, kinds):
        """The projection ``shortcut = "auto"`` builds: a 1×1×1 conv without
        bias at the main branch's stride, then an affine batch norm — needed
        only when channels or strides change."""
        if len(shortcut) != 2 or main_strides is None:
            return False
        conv, bn = shortcut
        if conv.get("kind") != CONV.name or bn.get("kind") != BATCHNORM.name or bn.get("affine", True) is False \
                or bn.get("features", "channels") != "channels":
            return False
        changes = c_in != c_out or any(s != 1 for s in main_strides)
        return changes and CONV.is_projection(conv, main_strides, c_out)


def _equal(a, b):
    if shim.is_concrete(a) and shim.is_concrete(b):
        return a == b
    if "numpy" in (shim._family(a), shim._family(b)):
        return shim.structural(a == b)   # over a parameter grid: equal everywhere, or a split
    try:
        return bool((a - b) == 0)
    except Exception:  # pragma: no cover
        return False


class SqueezeExcite(LayerKind):
    name = "se"
    summary = "squeeze-and-excitation; continual pool window by the se_pool knob"
    fields = ("ratio", "divisor", "min_width", "act", "pool")
    required = ("ratio",)
    text_fields = ("act", "pool")
    composite = True
    #: what the gate pools (MoViNet's se_type): ``3d`` the clip (time and
    #: space), ``2d`` each frame's space only (no state), ``2plus3d`` both,
    #: concatenated (2C channels into the first 1×1×1 conv)
    POOLS = ("3d", "2d", "2plus3d")

    def expand(self, b, raw, env, c_in, path, stage, blocks, multiplicity):
        from comem.core.expr import evaluate

        ratio = evaluate(raw["ratio"], env, f"{path}: 'ratio'")
        divisor = shim.structural(evaluate(raw.get("divisor", 8), env, f"{path}: 'divisor'"))
        min_width = shim.structural(evaluate(raw.get("min_width", 8), env, f"{path}: 'min_width'"))
        act = raw.get("act", "relu")
        if act not in ("relu", "swish"):
            b.fail(path, f"se 'act' must be 'relu' or 'swish', got {act!r}")
        if shim.is_concrete(ratio) and not (0 < ratio <= 1):
            b.fail(path, f"se 'ratio' must be in (0, 1], got {ratio}")
        pool = raw.get("pool", "3d")
        if pool not in self.POOLS:
            b.fail(path, f"se 'pool' must be one of {', '.join(self.POOLS)}, got {pool!r}")
        c_pooled = 2 * c_in if pool == "2plus3d" else c_in
        hidden = shim.tidy(shim.round_width(c_pooled, ratio, min_width, divisor))
        pool_raw = {"global": True, "adaptive": True}
        pool_cfg = AVGPOOL.configure(pool_raw, lambda k, d: pool_raw.get(k, d), c_in, b.dims)
        pool_cfg["window"] = "se"
        fc1 = {"c_in": c_pooled, "c_out": hidden, "kernel": (1, 1, 1), "stride": (1, 1, 1), "padding": (0, 0, 0),
               "dilation": (1, 1, 1), "groups": 1, "bias": True, "dims": b.dims}
        fc2 = dict(fc1, c_in=hidden, c_out=c_in)

        def mk(kind, cfg, name, label=None):
            return LayerNode(kind, cfg, name, f"{path}.{name}", stage, label, blocks, multiplicity)

        if pool == "3d":
            pooling = [mk(AVGPOOL, pool_cfg, "pool", "se_pool")]
        elif pool == "2d":
            pooling = [mk(MEAN, {"dims": b.dims}, "space")]
        else:
            # MoViNet's 2plus3d: each frame's spatial mean, and the pool over time of those means
            # (repeated over the frames when not causal, tf.tile), concatenated
            pool_cfg["tiled"] = True
            both = ParallelNode([SeqNode([mk(AVGPOOL, pool_cfg, "pool", "se_pool")], "time", path + ".time", stage,
                                         1, blocks),
                                 SeqNode([], "frame", path + ".frame", stage, 1, blocks)],
                                "concat", "pools", path + ".pools", stage, "parallel", "pools", blocks, multiplicity,
                                aligner=DELAY)
            pooling = [mk(MEAN, {"dims": b.dims}, "space"), both]
        gate = SeqNode(pooling + [
            mk(CONV, fc1, "fc1"),
            mk(SWISH if act == "swish" else RELU, {"c": hidden, "inplace": False}, "act"),
            mk(CONV, fc2, "fc2"),
            mk(SIGMOID, {"c": c_in, "inplace": False}, "gate"),
        ], "gate", path + ".gate", stage, 1, blocks)
        skip = SeqNode([], "input", path + ".input", stage, 1, blocks)
        node = ParallelNode([skip, gate], "mul", path.rsplit(".", 1)[-1], path, stage, "se",
                            raw.get("label") or "se", blocks, multiplicity, shortcut=0, aligner=DELAY)
        return node, c_in


    # -- import: a causal squeeze written out (Atze00/MoViNet-pytorch's causal SqueezeExcitation) --
    aten_ops = ("cumsum",)

    def from_aten(self, call):
        """``cat((cumulative mean over time, frame), dim=1)`` of frames averaged
        over space (the importer asks with ``concat = "frame"``): the squeeze
        of ``pool = 2plus3d``, which :meth:`gate_block` folds into one gate."""
        if call.kwargs.get("concat") != "frame":
            return None
        call.out_layout = call.layout
        return {"kind": self.name, "pool": "2plus3d", "squeeze": True}

    def gate_block(self, main, c_in):
        """``x * sigmoid(fc2(act(fc1(cat(cumulative mean, frame mean)))))``,
        with ``fc1``/``fc2`` 1×1×1 convolutions with bias: one ``se`` of
        ``pool = 2plus3d`` whose squeeze width is ``fc1``'s (``ratio`` =
        width / 2C, no rounding)."""
        kinds = [item.get("kind") for item in main]
        if kinds[:2] != ["mean", self.name] or not main[1].get("squeeze") or len(main) != 6 or \
                kinds[3] not in ("relu", "swish") or kinds[2] != "conv" or kinds[4] != "conv" or kinds[5] != "sigmoid":
            return None
        fc1, fc2 = main[2], main[4]
        for fc, c_out in ((fc1, None), (fc2, c_in)):
            if any(k in fc for k in ("stride", "padding", "dilation", "groups")) or not fc.get("bias", True) or \
                    any(k != 1 for k in fc["kernel"]) or (c_out is not None and fc.get("out") != c_out):
                return None
        return {"kind": self.name, "ratio": f"{fc1['out']} / {2 * c_in}", "divisor": 1, "min_width": 1,
                "act": kinds[3], "pool": main[1]["pool"]}


RESIDUAL = Residual()
SQUEEZE_EXCITE = SqueezeExcite()
