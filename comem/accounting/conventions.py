"""FLOP-counting conventions: how much each elementary operation counts.

Layer kinds report their work as counts of elementary operations
(``conv_mac``, ``batchnorm``, ``relu``…).  A convention is a table of
weights; the count a user sees is ``Σ weight(op) · count(op)``.

``ptflops`` (default; the paper's numbers)
    ptflops' module hooks (``backend="pytorch"``,
    ``backend_specific_config={"count_functional": False}``): convolutions and linear layers count their
    multiply-accumulates plus one per output element for a bias; BatchNorm 2
    per element when affine (1 otherwise); ReLU 1 per element; every pooling
    module 1 per *input* element (continual pools: the incoming frame plus
    the buffered pooled frames their temporal pool reads); Swish, Sigmoid,
    Softmax, Dropout and functional adds/multiplies count 0.
``macs``
    multiply-accumulates of convolutions and linear layers only.
``flops``
    2 × MACs plus one addition per bias element.
``fvcore``
    fvcore's ``FlopCountAnalysis`` (a fused multiply-add counts 1):
    convolution and linear MACs without bias, ``batch_norm`` 2 per element
    (inference, affine), and 0 for what it skips or does not handle —
    ReLU, sigmoid, add/mul, softmax, and 3D pooling (``avg_pool3d``,
    ``max_pool3d``, ``adaptive_avg_pool3d`` have no handler).
``executed``
    the arithmetic of convolutions and linear layers *as the runtime executes
    it*: a continual-inference convolution (``co.Conv3d._forward_step_py``)
    convolves the one new frame, zero-padded by ``k_T − 1`` in time, into
    ``k_T`` partial output frames — ``k_T ×`` the ideal MACs of one output
    frame, the zero taps included (``conv_mac_zero_taps``) — then adds the
    ``k_T − 1`` stored partials to the first (``conv_partial_add``) and the
    bias.  Every MAC and every such addition counts 1; elementwise layers,
    norms and pools count 0 (the roofline charges them for the bytes they
    move, :mod:`comem.device.roofline`).  A regular clip executes what ptflops counts
    for its convolutions.  Proven against the operations the library
    dispatches (``tests/test_runtime.py``).

A layer that is a functional call in the model it was imported from
(``torch.relu(x)``, ``x.mean((2, 3, 4))``; ``functional = true`` in a spec)
reports its ops as ``op@functional``: weighed like ``op``, times
:data:`FUNCTIONAL_FACTOR` — 0 under ptflops, whose module hooks never see a
functional call (``count_functional=False``), 1 elsewhere (fvcore traces
aten ops, whatever called them).
"""
from __future__ import annotations

from comem.errors import ComemError, suggest

_POOLS = ("avg_pool3d", "max_pool3d", "adaptive_avg_pool3d", "adaptive_max_pool3d")

#: every convention weighs every op a layer kind reports; a 0 is written out
#: (a decision, not an omission), and an op missing here is an error
_NORMS = ("groupnorm", "instancenorm")  # ptflops: 2/elem affine, 1 not; fvcore: 5 / 4
_HOOKED_ACTS = ("relu6", "leaky_relu", "elu", "gelu")  # activations ptflops hooks (1/elem)
_PLAIN_ACTS = ("hardswish", "hardsigmoid", "tanh")     # activations ptflops has no hook for
_POOLS = _POOLS + tuple(f"{a}{m}_pool{d}d" for a in ("", "adaptive_") for m in ("avg", "max") for d in (1, 2))
_ZERO_FOR_MACS = ("conv_bias", "linear_bias", "batchnorm", "batchnorm_noaffine", "relu", "swish", "sigmoid",
                  "softmax", "temporal_pool", "add", "mul", "layernorm", "layernorm_noaffine",
                  *(f"{n}{a}" for n in _NORMS for a in ("", "_noaffine")), *_HOOKED_ACTS, *_PLAIN_ACTS, *_POOLS)

CONVENTIONS: dict[str, dict[str, int]] = {
    "ptflops": dict(
        conv_mac=1, conv_bias=1, linear_mac=1, linear_bias=1, batchnorm=2, batchnorm_noaffine=1, relu=1,
        **{p: 1 for p in _POOLS}, temporal_pool=1,
        **{n: 2 for n in _NORMS}, **{f"{n}_noaffine": 1 for n in _NORMS},
        layernorm=1, layernorm_noaffine=1,  # the hook reads module.affine, which LayerNorm lacks
        **{a: 1 for a in _HOOKED_ACTS},
        swish=0, sigmoid=0, softmax=0,      # modules ptflops has no hook for
        **{a: 0 for a in _PLAIN_ACTS},
        add=0, mul=0,                       # functional ops (count_functional=False)
    ),
    "macs": dict(conv_mac=1, linear_mac=1, **{op: 0 for op in _ZERO_FOR_MACS}),
    "flops": {**{op: 0 for op in _ZERO_FOR_MACS}, "conv_mac": 2, "linear_mac": 2, "conv_bias": 1, "linear_bias": 1},
    "fvcore": dict(
        conv_mac=1, linear_mac=1, batchnorm=2, batchnorm_noaffine=1,
        **{n: 5 for n in _NORMS}, **{f"{n}_noaffine": 4 for n in _NORMS}, layernorm=5, layernorm_noaffine=4,
        conv_bias=0, linear_bias=0,          # fvcore counts the matmul, not the bias
        relu=0, sigmoid=0, softmax=0, add=0, mul=0, swish=0,   # fvcore's ignored ops
        **{a: 0 for a in _HOOKED_ACTS + _PLAIN_ACTS},           # no handle: unsupported, 0
        **{p: 0 for p in _POOLS if p != "adaptive_avg_pool2d"}, temporal_pool=0,  # no handle: unsupported
        adaptive_avg_pool2d=1,               # ... except this one (1 per input element)
    ),
}


#: how much a functional call's op counts next to the same op done by a module
FUNCTIONAL_FACTOR = {"ptflops": 0, "macs": 1, "flops": 1, "fvcore": 1, "executed": 1}
_FUNCTIONAL = "@functional"


#: executed arithmetic: the MACs and additions of convolutions and linear layers only
CONVENTIONS["executed"] = {**{op: 0 for op in CONVENTIONS["macs"]},
                           "conv_mac": 1, "conv_bias": 1, "linear_mac": 1, "linear_bias": 1}


def add_ops(op_weights: dict, owner: str):
    """Weights of a layer kind's own ops (``{op: {convention: weight}}``):
    every convention must weigh each of them."""
    for op, weights in op_weights.items():
        missing = [c for c in CONVENTIONS if c not in weights]
        if missing:
            raise ComemError(f"layer kind {owner!r}: op {op!r} has no weight under {', '.join(missing)}")
        for c, w in weights.items():
            if c not in CONVENTIONS:
                raise ComemError(f"layer kind {owner!r}: op {op!r} names an unknown convention {c!r}")
            if op in CONVENTIONS[c] and CONVENTIONS[c][op] != w:
                raise ComemError(f"layer kind {owner!r}: op {op!r} already weighs {CONVENTIONS[c][op]} under {c}, "
                                 f"not {w}; give the op a name of its own")
        for c, w in weights.items():
            CONVENTIONS[c][op] = w


def remove_ops(ops) -> None:
    """Forget ops a removed layer kind declared (see comem.layers.unregister)."""
    for table in CONVENTIONS.values():
        for op in ops:
            table.pop(op, None)


def check_convention(name: str) -> str:
    key = ("ptflops" if name is None else str(name)).strip().lower()
    if key not in CONVENTIONS:
        raise ComemError(f"unknown counting convention {name!r}{suggest(key, CONVENTIONS)}; choose one of: "
                         f"{', '.join(CONVENTIONS)}")
    return key


def weigh(work: dict, convention: str):
    """Σ weight·count for one ``{op: count}`` dict.  An op the convention
    does not weigh is an error, never a silent 0."""
    weights = CONVENTIONS[convention]
    total = 0
    for op, n in work.items():
        if op.endswith(_FUNCTIONAL):
            w = weights.get(op[:-len(_FUNCTIONAL)])
            w = w if w is None else w * FUNCTIONAL_FACTOR[convention]
        else:
            w = weights.get(op)
        if w is None:
            raise ComemError(f"counting convention {convention!r} does not weigh the op {op!r}; "
                             f"add it to comem/conventions.py (with weight 0 if it counts nothing)")
        if w:
            total = total + w * n
    return total
