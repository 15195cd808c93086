"""Graph convolutions over skeleton joints, as ST-GCN, AGCN and S-TR use
them (continual-skeletons ``models/base.py``, ``a_gcn.py``, ``s_tr.py``;
Hedegaard, Heidari & Iosifidis, "Continual Spatio-Temporal Graph
Convolutional Networks", Pattern Recognition 2023).

A 2D model's frame is ``V`` joints × ``M`` bodies (``[model] size = [V, M]``);
the bodies are independent samples, so every per-position count below runs
over ``P = V·M`` positions a frame (``T·V·M`` a clip).  Both kinds act on one
frame at a time: the continual networks wrap them in ``co.forward_stepping``
— stateless, no delay.

``graph_conv`` — the spatial graph convolution unit (``GraphConvolution``;
``AdaptiveGraphConvolution`` with ``adaptive = true``).  Spec fields:
``out`` (``c_O``), ``subsets`` (``K``, the adjacency partitions: 3 for the
spatial partitioning), ``adaptive`` (AGCN), ``embedding`` (AGCN's
``coff_embedding``, 4: ``c_e = c_O // 4``).

* per subset ``k``: ``x·A_k`` over the joints (``c_I·V`` MACs a position,
  a functional matmul: ``graph_mac``), then a 1×1 conv ``c_I → c_O`` (the
  original ST-GCN's single ``c_I → K·c_O`` conv followed by
  ``einsum('nkctv,kvw->nctw')`` has the same convolution, its joint product
  on the output side: ``K·c_O·V`` MACs a position where this form has
  ``K·c_I·V``); the
  ``K`` results summed, batch-normed, the unit's residual added (identity,
  or a 1×1 conv + batch norm when ``c_I ≠ c_O``), ReLU
* adaptive: per subset two 1×1 convs ``c_I → c_e`` and the data-dependent
  graph ``softmax(A1·A2 / (c_e·T))`` (``c_e·V`` MACs a position), added to
  ``A_k + B_k``.  The regular AGCN forms that graph over the whole clip; the
  continual one (``co.forward_stepping``, CoAGCN) per frame — another
  function with the same arithmetic
* params (trainable, as ptflops and the papers count) = ``K·V²`` (the
  learned edge importance / ``B_k``) + ``K(c_I·c_O + c_O)`` [+ ``2K(c_I·c_e
  + c_e)``] [+ ``c_I·c_O + 3c_O`` residual] + ``2c_O``; the fixed
  adjacency ``A`` (``K·V²``, ``requires_grad=False``) is a tensor but not a
  parameter

``spatial_attention`` — S-TR's spatial self-attention unit
(``GcnUnitAttention`` with ``only_attention``, no relative or adjacency
terms).  Spec fields: ``out``, ``heads`` (``N_h``, 8), ``key_factor``
(``d_k = int(c_O·key_factor)``, 0.25), ``subsets`` (the ``K×V×V`` adjacency
it keeps as a learnable parameter, 3).

* a batch norm over the ``c_I·V`` joint features, a 1×1 conv to
  ``2d_k + c_O`` (queries, keys, values), per head the ``V×V`` attention of
  the frame's joints (``d_k·V`` + ``c_O·V`` MACs a position, ``attn_mac``;
  a functional softmax), a 1×1 output conv ``c_O → c_O``, the skip
  connection when ``c_I = c_O``, batch norm, ReLU
* params = ``K·V²`` + ``2c_I·V`` + ``c_I(2d_k + c_O) + 2d_k + c_O`` +
  ``c_O² + c_O`` + ``2c_O``
"""
from __future__ import annotations

from comem.core import shim
from comem.errors import ComemError
from comem.layers.base import LayerKind
from comem.layers.conv import positive

GRAPH_OPS = {
    # x·A over the joints: a functional matmul (ptflops' module hooks never see it)
    "graph_mac": {"ptflops": 0, "macs": 1, "flops": 2, "fvcore": 1, "executed": 1},
}


def _frame_positions(x, step):
    return x.h * x.w if step else x.t * (x.h * x.w)


class GraphConv(LayerKind):
    name = "graph_conv"
    summary = "ST-GCN / AGCN spatial graph convolution over joints (K adjacency subsets; frame-wise)"
    fields = ("out", "subsets", "adaptive", "embedding")
    framewise = True
    op_weights = GRAPH_OPS

    def configure(self, raw, evaluate, c_in, dims=3):
        if dims != 2:
            raise ComemError("graph_conv runs over the joints of a 2D model (dims = 2, input C x T x V)")
        adaptive = shim.structural(evaluate("adaptive", False))
        if adaptive not in (True, False, 0, 1):
            raise ComemError(f"graph_conv 'adaptive' must be true or false (or 1 / 0), got {adaptive!r}")
        adaptive = bool(adaptive)
        c_out = positive(evaluate("out", c_in), "graph_conv 'out' channels")
        emb = positive(evaluate("embedding", 4), "graph_conv 'embedding'")
        return {"c_in": c_in, "c_out": c_out, "subsets": positive(evaluate("subsets", 3), "graph_conv 'subsets'"),
                "adaptive": adaptive, "inter": c_out // emb, "dims": dims}

    def out_channels(self, cfg, c_in):
        return cfg["c_out"]

    def output(self, cfg, x, env=None):
        return x.with_(c=cfg["c_out"])

    @staticmethod
    def projects(cfg):
        a, b = cfg["c_in"], cfg["c_out"]
        return not (shim.is_concrete(a) and shim.is_concrete(b) and a == b)

    def params(self, cfg, x):
        K, ci, co, V = cfg["subsets"], cfg["c_in"], cfg["c_out"], x.h
        p = K * V * V + K * (ci * co + co) + 2 * co
        if cfg["adaptive"]:
            p = p + 2 * K * (ci * cfg["inter"] + cfg["inter"])
        if self.projects(cfg):
            p = p + ci * co + co + 2 * co
        return p

    def held(self, cfg, x):
        """Besides its parameters (the learned graph weights among them): the
        fixed adjacency ``A`` (``nn.Parameter(requires_grad=False)``, K·V·V)
        and its batch norms' running statistics (and the projection's)."""
        K, co, V = cfg["subsets"], cfg["c_out"], x.h
        norms = 2 if self.projects(cfg) else 1
        return {"trainable": self.params(cfg, x), "frozen": K * V * V, "buffers": norms * 2 * co, "int64": norms}

    def torch_tensors(self, cfg, x, continual=False):
        K, ci, co, V, e = cfg["subsets"], cfg["c_in"], cfg["c_out"], x.h, cfg["inter"]
        out = [(K * V * V, False), (K * V * V, False)]
        out += [(ci * co, False), (co, False)] * K
        if cfg["adaptive"]:
            out += [(ci * e, False), (e, False)] * (2 * K)
        if self.projects(cfg):
            out += [(ci * co, False), (co, False)] + [(co, False)] * 4 + [(1, True)]
        return out + [(co, False)] * 4 + [(1, True)]

    def work(self, cfg, x, y, step, knobs):
        K, ci, co, V, e = cfg["subsets"], cfg["c_in"], cfg["c_out"], x.h, cfg["inter"]
        P = _frame_positions(x, step)
        w = {"graph_mac": K * ci * V * P, "conv_mac": K * ci * co * P, "conv_bias": K * co * P,
             "batchnorm": co * P, "add": K * co * P, "relu": co * P}
        M = x.w  # per call (a clip, or a step): the graph is formed once, each body its own
        if cfg["adaptive"]:
            w["conv_mac"] = w["conv_mac"] + 2 * K * ci * e * P
            w["conv_bias"] = w["conv_bias"] + 2 * K * e * P
            w["graph_mac"] = w["graph_mac"] + K * e * V * P     # A1·A2 over c_e·T
            w["softmax"] = K * V * V * M                         # nn.Softmax over the V×V graph
            w["mul@functional"] = K * V * V * M                  # the / (c_e·T) scaling
            w["add"] = w["add"] + K * V * V * M + K * V * V      # + A_k; A + B
        else:
            w["mul@functional"] = K * V * V                      # A ⊙ edge importance
        if self.projects(cfg):
            w["conv_mac"] = w["conv_mac"] + ci * co * P
            w["conv_bias"] = w["conv_bias"] + co * P
            w["batchnorm"] = w["batchnorm"] + co * P
        return w

    def unit_peak(self, cfg, x, positions):
        """The unit's live floats at its peak (input excluded), from the
        forward's locals: at the third subset the joint product ``x·A_k``
        (``c_I``), the previous and the new conv output and the running sum
        (``3c_O``; ``K·c_O`` for ``K < 3``); or, with a projecting residual,
        the last conv output, the batch-normed sum and the residual's conv and
        batch norm (``4c_O``; ``3c_O`` without); AGCN's two embeddings stay
        alive (``2c_e``); per call the ``K×V×V`` graph, and AGCN's
        data-dependent ``V×V`` graph of each body."""
        K, ci, co, V, e = cfg["subsets"], cfg["c_in"], cfg["c_out"], x.h, cfg["inter"]
        subsets = ci + shim.minimum(K, 3) * co
        tail = (4 if self.projects(cfg) else 3) * co
        peak = shim.maximum(subsets, tail) * positions + K * V * V
        if cfg["adaptive"]:
            peak = peak + 2 * e * positions + x.w * V * V
        return peak

    def library_peak(self, cfg, x, y, knobs):
        """One frame through the unit (:meth:`unit_peak`)."""
        return self.unit_peak(cfg, x, x.h * x.w)

    def library_peak_clip(self, cfg, x, y, knobs):
        """The regular clip through the unit, beyond its output."""
        return self.unit_peak(cfg, x, x.t * (x.h * x.w)) - y.numel

    def op_class(self, cfg, x, y):
        return "linear"

    def op_calls(self, cfg, step):
        """Per adjacency subset a product over the joints, a 1x1 convolution
        and a sum (an adaptive graph adds two convolutions, a product and a
        softmax); then the batch norm, the residual and the ReLU."""
        return (7 if cfg["adaptive"] else 3) * cfg["subsets"] + 4

    def torch_module(self, cfg, x, kit, continual, knobs):
        m = kit.GraphConvolution(cfg["c_in"], cfg["c_out"], x.h, cfg["subsets"], cfg["adaptive"], cfg["inter"])
        return kit.framewise(m) if continual else m

    # -- import: the authors' GraphConvolution (continual-skeletons models/base.py, a_gcn.py), not on PyPI,
    # recognised by what it holds: the adjacency ``A`` (K x V x V) its forward multiplies the data with
    # (``torch.matmul(x.view(N, C*T, V), A[i])``), one 1x1 convolution per subset (``g_conv``), a batch
    # norm and the unit's residual (``gcn_residual``); AGCN's adds ``a_conv``/``b_conv`` embeddings
    torch_layout = "canonical"

    def torch_match(self, module) -> bool:
        A = getattr(module, "A", None)
        convs = getattr(module, "g_conv", None)
        return getattr(A, "dim", lambda: 0)() == 3 and convs is not None and hasattr(module, "bn") and \
            hasattr(module, "gcn_residual") and len(convs) == A.shape[0]

    def from_torch(self, m, dims):
        convs = list(m.g_conv)
        if any(tuple(c.kernel_size) != (1, 1) or c.bias is None or c.groups != 1 for c in convs):
            raise ComemError("a graph convolution whose per-subset convolutions are not 1x1 with bias")
        raw = {"kind": self.name, "out": convs[0].out_channels, "subsets": len(convs)}
        if hasattr(m, "a_conv"):
            raw["adaptive"] = True
            emb = convs[0].out_channels // m.a_conv[0].out_channels
            if emb != 4:
                raw["embedding"] = emb
        res = m.gcn_residual
        if getattr(res, "__len__", None) and len(res) and tuple(res[0].kernel_size) != (1, 1):
            raise ComemError("a graph convolution whose residual is not a 1x1 convolution and batch norm")
        return raw

    def torch_work(self, m, inp, out):
        """The unit's arithmetic from its real tensors: the input ``(N, C,
        T, V)`` (a step's ``(N, C, V)``) and its convolutions' weights."""
        if hasattr(m, "g_conv"):  # the authors' module, as imported: comem's test module's names
            m = _Names(m)
        x = inp[0] if isinstance(inp, tuple) else inp
        n, ci, v = x.shape[0], x.shape[1], x.shape[-1]
        t = x.shape[2] if x.dim() == 4 else 1
        P = n * t * v
        K = len(m.convs)
        co = m.convs[0].out_channels
        w = {"graph_mac": K * ci * v * P, "conv_mac": K * ci * co * P, "conv_bias": K * co * P,
             "batchnorm": co * P, "add": K * co * P, "relu": co * P}
        if m.adaptive:
            e = m.a[0].out_channels
            w["conv_mac"] += 2 * K * ci * e * P
            w["conv_bias"] += 2 * K * e * P
            w["graph_mac"] += K * e * v * P
            w["softmax"] = K * v * v * n
            w["mul@functional"] = K * v * v * n
            w["add"] += K * v * v * n + K * v * v
        else:
            w["mul@functional"] = K * v * v
        if m.res is not None:
            w["conv_mac"] += ci * co * P
            w["conv_bias"] += co * P
            w["batchnorm"] += co * P
        return w



class _Names:
    """continual-skeletons' GraphConvolution seen with the names of comem's
    own test module (``convs``, ``adaptive``, ``a``, ``res``)."""

    def __init__(self, m):
        self.convs, self.adaptive = m.g_conv, hasattr(m, "a_conv")
        self.a = getattr(m, "a_conv", None)
        res = m.gcn_residual
        self.res = res if hasattr(res, "parameters") and len(list(res.parameters())) else None

class SpatialAttention(LayerKind):
    name = "spatial_attention"
    summary = "S-TR spatial self-attention over a frame's joints (frame-wise)"
    fields = ("out", "heads", "key_factor", "subsets")
    framewise = True
    op_weights = {}

    def configure(self, raw, evaluate, c_in, dims=3):
        if dims != 2:
            raise ComemError("spatial_attention runs over the joints of a 2D model (dims = 2, input C x T x V)")
        c_out = positive(evaluate("out", c_in), "spatial_attention 'out' channels")
        heads = positive(evaluate("heads", 8), "spatial_attention 'heads'")
        kf = evaluate("key_factor", 0.25)
        dk = int(c_out * kf) if shim.is_concrete(c_out) else c_out * kf
        for what, v in (("d_k", dk), ("out", c_out)):
            if shim.is_concrete(v) and shim.is_concrete(heads) and (v < heads or v % heads):
                raise ComemError(f"spatial_attention: {what}={v} must be a positive multiple of heads={heads}")
        return {"c_in": c_in, "c_out": c_out, "heads": heads, "dk": dk,
                "subsets": positive(evaluate("subsets", 3), "spatial_attention 'subsets'"), "dims": dims}

    def out_channels(self, cfg, c_in):
        return cfg["c_out"]

    def output(self, cfg, x, env=None):
        return x.with_(c=cfg["c_out"])

    def params(self, cfg, x):
        K, ci, co, dk, V = cfg["subsets"], cfg["c_in"], cfg["c_out"], cfg["dk"], x.h
        qkv = 2 * dk + co
        return K * V * V + 2 * ci * V + ci * qkv + qkv + co * co + co + 2 * co

    def held(self, cfg, x):
        """Besides its parameters: the running statistics of its data batch
        norm (over C_in·V features) and of its output batch norm."""
        ci, co, V = cfg["c_in"], cfg["c_out"], x.h
        return {"trainable": self.params(cfg, x), "frozen": 0, "buffers": 2 * ci * V + 2 * co, "int64": 2}

    def torch_tensors(self, cfg, x, continual=False):
        K, ci, co, dk, V = cfg["subsets"], cfg["c_in"], cfg["c_out"], cfg["dk"], x.h
        qkv = 2 * dk + co
        return ([(K * V * V, False)] + [(ci * V, False)] * 4 + [(1, True)] + [(ci * qkv, False), (qkv, False),
                (co * co, False), (co, False)] + [(co, False)] * 4 + [(1, True)])

    @staticmethod
    def skips(cfg):
        a, b = cfg["c_in"], cfg["c_out"]
        return shim.is_concrete(a) and shim.is_concrete(b) and a == b

    def work(self, cfg, x, y, step, knobs):
        ci, co, dk, V, h = cfg["c_in"], cfg["c_out"], cfg["dk"], x.h, cfg["heads"]
        P = _frame_positions(x, step)
        w = {"batchnorm": ci * P + co * P, "conv_mac": ci * (2 * dk + co) * P + co * co * P,
             "conv_bias": (2 * dk + co) * P + co * P, "attn_mac": (dk + co) * V * P,
             "mul@functional": dk * P, "softmax@functional": h * V * P, "relu": co * P}
        if self.skips(cfg):
            w["add"] = co * P
        return w

    def unit_peak(self, cfg, x, frames, knobs):
        """The unit's live floats at its peak (input excluded), from the
        forward's locals, a position: the batch-normed input (``c_I``) and
        its frame-major copy (``c_I``, a copy only when there are several
        samples — bodies or streams — and frames), q/k/v (``2d_k + c_O``),
        the scaled q (``d_k``), logits and softmax (``2N_h·V``), the heads
        joined (a copy) and the output conv (``2c_O``); or, at the end, the
        skip sum, its batch norm and ReLU beside the output conv."""
        ci, co, dk, V, h = cfg["c_in"], cfg["c_out"], cfg["dk"], x.h, cfg["heads"]
        several = (not (shim.is_concrete(x.w) and x.w == 1) or (knobs is not None and knobs.batched)) and \
            not (shim.is_concrete(frames) and frames == 1)
        held = ci + (ci if several else 0)
        attention = held + 3 * dk + 3 * co + 2 * h * V
        end = held + (4 if self.skips(cfg) else 3) * co
        return shim.maximum(attention, end) * frames * (x.h * x.w)

    def library_peak(self, cfg, x, y, knobs):
        """One frame through the unit (:meth:`unit_peak`)."""
        return self.unit_peak(cfg, x, 1, knobs)

    def library_peak_clip(self, cfg, x, y, knobs):
        """The regular clip through the unit, beyond its output."""
        return self.unit_peak(cfg, x, x.t, knobs) - y.numel

    def op_class(self, cfg, x, y):
        return "attention"

    def op_calls(self, cfg, step):
        """Joint-feature norm, q/k/v convolution, scores, softmax, weighted
        sum, output convolution, skip, norm, ReLU, and their reshapes."""
        return 16

    def torch_module(self, cfg, x, kit, continual, knobs):
        m = kit.SpatialAttentionUnit(cfg["c_in"], cfg["c_out"], x.h, cfg["heads"], cfg["dk"], cfg["subsets"])
        return kit.framewise(m) if continual else m

    def torch_work(self, m, inp, out):
        """From the real input ``(N, C, T, V)`` (a step's ``(N, C, V)``) and
        the unit's convolutions."""
        x = inp[0] if isinstance(inp, tuple) else inp
        n, ci, v = x.shape[0], x.shape[1], x.shape[-1]
        t = x.shape[2] if x.dim() == 4 else 1
        P = n * t * v
        qkv, co = m.qkv.out_channels, m.out.out_channels
        dk = (qkv - co) // 2
        w = {"batchnorm": ci * P + co * P, "conv_mac": ci * qkv * P + co * co * P, "conv_bias": qkv * P + co * P,
             "attn_mac": (dk + co) * v * P, "mul@functional": dk * P, "softmax@functional": m.heads * v * P,
             "relu": co * P}
        if ci == co:
            w["add"] = co * P
        return w


GRAPH_CONV = GraphConv()
SPATIAL_ATTENTION = SpatialAttention()
