"""The layer tree a spec becomes (phase 1, :mod:`comem.model.build`) and the two
walks every consumer of it shares.

* :class:`LayerNode` — one layer of a kind, configured;
* :class:`SeqNode` — children run one after another;
* :class:`ParallelNode` — branches on the same input, merged (sum, product,
  concatenation), the slower branches delay-aligned by ``aligner`` (a layer
  kind, the ``delay`` kind for every composite comem ships);
* :class:`StageNode` — one ``[[stages]]`` entry on a named stream.

Repeated blocks are not unrolled: a node's ``multiplicity`` says how many
identical copies it stands for.

:func:`walk_streams` is the one loop over stages and streams (the walker, the
PyTorch builders and the regular model's forward all use it);
:func:`total_stride` the product of a branch's strides.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class LayerNode:
    kind: Any
    cfg: dict
    name: str
    path: str
    stage: str
    label: str | None = None
    blocks: tuple | None = None  # 1-based block indices inside the stage
    multiplicity: Any = 1


@dataclass
class SeqNode:
    children: list
    name: str
    path: str
    stage: str
    multiplicity: Any = 1
    blocks: tuple | None = None


@dataclass
class ParallelNode:
    branches: list  # of SeqNode
    merge: str  # "sum" | "mul" | "concat"
    name: str
    path: str
    stage: str
    role: str  # "residual" | "se" | "parallel"
    label: str | None = None
    blocks: tuple | None = None
    multiplicity: Any = 1
    #: index of the branch that is the identity/projection shortcut
    shortcut: int | None = None
    #: the layer kind whose state formula a branch's alignment delay uses
    aligner: Any = None
    #: "delay": the shortcut is delayed by the main branch's delay;
    #: "centre": by the centre of its window, the regular model cropping the
    #: shortcut's input at both ends (co.Residual(residual_shrink=True))
    align: str = "delay"


@dataclass
class StageNode:
    """One ``[[stages]]`` entry: a sequence applied to a stream.  ``source``
    is a stream name or a list of stream names (resolved at phase 1)."""
    body: SeqNode
    name: str
    stream: str
    source: Any
    merge: str | None
    merge_into: str | None
    label: str | None = None


def walk_streams(stages, x0, apply: Callable, combine: Callable, streams: dict | None = None):
    """Run ``stages`` over named streams, starting from ``{"input": x0}``.

    For each stage its input is its source stream, or ``combine(values,
    merge, stage, where)`` of several; ``apply(stage, x)`` gives its output,
    which replaces its stream or is combined into ``merge_into``.  Values
    may be channel counts, shapes or tensors.  Returns the last output."""
    streams = {"input": x0} if streams is None else streams
    last = x0
    for st in stages:
        if isinstance(st.source, list):
            x = combine([streams[s] for s in st.source], st.merge, st, "source")
        else:
            x = streams[st.source]
        y = apply(st, x)
        if st.merge_into:
            y = combine([streams[st.merge_into], y], st.merge, st, "merge_into")
            streams[st.merge_into] = y
        else:
            streams[st.stream] = y
        last = y
    return last


def total_stride(seq: SeqNode):
    """Product of the (T, H, W) strides of the layers in a branch (the last
    branch of a parallel node)."""
    t = h = w = 1
    for ch in seq.children:
        if isinstance(ch, SeqNode):
            a, b, c = total_stride(ch)
        elif isinstance(ch, ParallelNode):
            a, b, c = total_stride(ch.branches[-1])
        else:
            s = ch.cfg.get("stride") if isinstance(ch.cfg, dict) else None
            a, b, c = s if s else (1, 1, 1)
        t, h, w = t * a, h * b, w * c
    return (t, h, w)


__all__ = ["LayerNode", "SeqNode", "ParallelNode", "StageNode", "walk_streams", "total_stride"]


# -- time: one composition rule, one alignment rule (the walker and the PyTorch builder) -----------------

def chain(outer: tuple, inner: tuple, repeat=1) -> tuple:
    """(receptive field, temporal padding, temporal stride) of ``outer``
    followed by ``inner`` repeated ``repeat`` times, as continual-inference's
    ``Sequential`` composes them: ``rf = rf + (rf_m − 1)·s``, ``p = p + p_m·s``,
    ``s = s·s_m`` (a repeated block has stride 1)."""
    rf, pad, stride = outer
    rf_m, pad_m, stride_m = inner
    return rf + (rf_m - 1) * stride * repeat, pad + pad_m * stride * repeat, stride * stride_m


def branch_delay(rf, padding, centre: bool):
    """The frames a branch's output lags its input: its window's end
    (``rf − 1 − padding``), or its centre (``(rf − 1) // 2``) for a centred
    residual (co.Residual(residual_shrink=True))."""
    return (rf - 1) // 2 if centre else rf - 1 - padding


def alignment_frames(lag, stride):
    """A delay placed after a branch of temporal stride ``stride`` counts that
    branch's output frames: one per ``stride`` input frames
    (continual-skeletons' ``Delay(tcn.delay // stride)``)."""
    from comem.core import shim

    return lag if shim.is_concrete(stride) and stride == 1 else shim.fdiv(lag, stride)
