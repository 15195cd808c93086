"""FLOP-counting conventions: how much each elementary operation counts.

Layer kinds report their work as counts of elementary operations
(``conv_mac``, ``batchnorm``, ``relu``…).  A convention is a table of
weights; the count a user sees is ``Σ weight(op) · count(op)``.

``ptflops`` (default; the paper's numbers)
    ptflops' module hooks (``backend="pytorch"``,
    ``count_functional=False``): convolutions and linear layers count their
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
"""
from __future__ import annotations

from .errors import ComemError
from .spec import suggest

OPS = ("conv_mac", "conv_bias", "linear_mac", "linear_bias", "batchnorm", "batchnorm_noaffine", "relu", "swish",
       "sigmoid", "softmax", "avg_pool3d", "max_pool3d", "adaptive_avg_pool3d", "adaptive_max_pool3d",
       "temporal_pool", "add", "mul")

CONVENTIONS: dict[str, dict[str, int]] = {
    "ptflops": {
        "conv_mac": 1, "conv_bias": 1, "linear_mac": 1, "linear_bias": 1, "batchnorm": 2,
        "batchnorm_noaffine": 1, "relu": 1, "avg_pool3d": 1, "max_pool3d": 1, "adaptive_avg_pool3d": 1,
        "adaptive_max_pool3d": 1, "temporal_pool": 1,
    },
    "macs": {"conv_mac": 1, "linear_mac": 1},
    "flops": {"conv_mac": 2, "linear_mac": 2, "conv_bias": 1, "linear_bias": 1},
    "fvcore": {"conv_mac": 1, "linear_mac": 1, "batchnorm": 2, "batchnorm_noaffine": 1},
}

CONVENTION_DOC = {
    "ptflops": "ptflops module hooks (paper): MACs + bias, BN 2/elem, ReLU 1/elem, pools 1/input elem",
    "macs": "multiply-accumulates of conv and linear layers only",
    "flops": "2 x MACs + bias additions",
    "fvcore": "fvcore FlopCountAnalysis: conv/linear MACs, batch_norm 2/elem; ReLU, add, 3D pools count 0",
}


def check_convention(name: str) -> str:
    key = ("ptflops" if name is None else str(name)).strip().lower()
    if key not in CONVENTIONS:
        raise ComemError(f"unknown counting convention {name!r}{suggest(key, CONVENTIONS)}; choose one of: "
                         f"{', '.join(CONVENTIONS)}")
    return key


def weigh(work: dict, convention: str):
    """Σ weight·count for one ``{op: count}`` dict."""
    weights = CONVENTIONS[convention]
    total = 0
    for op, n in work.items():
        w = weights.get(op, 0)
        if w:
            total = total + w * n
    return total
