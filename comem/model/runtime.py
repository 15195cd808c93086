"""Peak memory as PyTorch allocates it: one eager forward of the regular
model on a clip, one ``forward_step`` of the continual-inference model.

``torch.cuda.max_memory_allocated`` (Table 1's Mem. column) counts every
block the caching allocator hands out while the model runs; comem predicts
it as the sum of

``weights``
    every parameter and buffer tensor the layers own (conv weight and bias,
    batch-norm weight, bias, running mean and variance and the int64
    ``num_batches_tracked``; a continual-inference module's int64
    ``state_index``/``stride_index``...: ``LayerKind.torch_tensors``), at the
    dtype's bytes (int64: 8), held once whatever the batch;
``input``
    the clip (regular) or one frame (continual), times the batch;
``state``
    continual only: each stateful module's buffer under the
    ``continual-inference`` accounting (what continual-inference 1.2.4
    allocates, validated against ``get_state()``), one tensor per module;
``activations``
    the peak of the tensors alive during the forward: maps held by the
    sequence and by residual / SE branches, plus the temporaries the library
    allocates inside its layers — a continual convolution's ``k_T`` partial
    frames and the gathered partials, max-pool int64 indices (regular 3D max
    pools run ``max_pool3d_with_indices`` too) — the ``library`` transient
    rule, validated exactly against a live-tensor tracker on CPU;
``rounding``
    the caching allocator's block granularity: CUDA rounds every allocation
    up to a multiple of 512 bytes; the CPU allocator's requests are counted
    exactly (granularity 1).

What no analytic model of the network sees: the convolution algorithms'
workspaces (cuDNN on CUDA, allocated through the same caching allocator;
``slow_conv3d``'s column buffer on one CPU thread), the CUDA context, and
blocks cached but not allocated (``max_memory_reserved``).  On CPU
``comem bench`` reports the scratch the allocator saw beyond the tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from comem.errors import ComemError
from comem.core.vocab import Role

#: allocation granularity in bytes: the CUDA caching allocator rounds each
#: block up to a multiple of 512 (c10/cuda/CUDACachingAllocator.cpp,
#: kMinBlockSize); the CPU allocator is counted per request
BLOCK_BYTES = {"cuda": 512, "cpu": 1}


def round_block(nbytes, block: int):
    """``nbytes`` rounded up to the allocator's block (0 stays 0)."""
    return -((-nbytes) // block) * block


@dataclass
class PeakTerms:
    """One forward's predicted peak, by term (bytes)."""
    weights: int = 0
    input: int = 0
    state: int = 0
    activations: int = 0
    rounding: int = 0
    tensors: int = 0  # how many weight/state tensors the rounding applied to

    @property
    def total(self) -> int:
        return self.weights + self.input + self.state + self.activations + self.rounding

    def as_dict(self) -> dict:
        return {"weights": self.weights, "input": self.input, "state": self.state,
                "activations": self.activations, "rounding": self.rounding, "total": self.total}


@dataclass
class RuntimePeak:
    model: str
    device: str
    dtype: str
    batch: int
    clip: int
    height: int
    width: int
    regular: PeakTerms = field(default_factory=PeakTerms)
    continual: PeakTerms | None = None

    def as_dict(self) -> dict:
        out = {"device": self.device, "dtype": self.dtype, "batch": self.batch, "clip": self.clip,
               "regular": self.regular.total, "continual": None if self.continual is None else self.continual.total,
               "terms": {"regular": self.regular.as_dict()}}
        if self.continual is not None:
            out["terms"]["continual"] = self.continual.as_dict()
        return out


def runtime_peak(model, clip=None, size=None, dtype: str = "fp32", batch: int = 1, device: str = "cuda",
                 params: dict | None = None) -> RuntimePeak:
    """The predicted peak allocated bytes of one eager regular forward (a clip)
    and one continual step (a frame) on ``device`` (``cuda`` or ``cpu``)."""
    from comem.model.inputs import check_clip_size, get_graph
    from comem.accounting.profiles import get_profile
    from comem.spec.registry import resolve
    from comem.core.units import MAX_BATCH, check_int, dtype_bytes
    from comem.model.walk import evaluate_graph

    if device not in BLOCK_BYTES:
        raise ComemError(f"unknown runtime device {device!r}; choose one of: {', '.join(BLOCK_BYTES)}")
    block = BLOCK_BYTES[device]
    dname, b = dtype_bytes(dtype)
    batch = check_int(batch, "batch (streams)", 1, MAX_BATCH)
    spec = resolve(model)
    graph = get_graph(spec, params)
    clip, height, width = check_clip_size(spec, clip, size)
    continual = spec.continual and graph.continual_problem is None
    library = get_profile("continual-inference")   # what the PyTorch runtime allocates
    out = RuntimePeak(spec.name, device, dname, batch, clip, height, width)

    frame = graph.in_channels * height * width
    t_reg = evaluate_graph(graph, clip, height, library, record=True, continual=False, width=width,
                           bytes_per_float=b)
    weights, tensors = _weights(t_reg.rows, b, block, False)
    reg = out.regular
    reg.weights, reg.tensors = weights[0], tensors
    reg.input = frame * clip * batch * b
    reg.activations = t_reg.regular_transient("library") * batch * b
    reg.rounding = weights[1] - weights[0] + round_block(reg.input, block) - reg.input
    if continual:
        t = evaluate_graph(graph, clip, height, library, record=True, continual=True, width=width,
                           bytes_per_float=b, batch=batch)
        weights, tensors = _weights(t.rows, b, block, True)
        co = out.continual = PeakTerms(weights=weights[0], tensors=tensors)
        co.input = frame * batch * b
        exact = rounded = 0
        for row in t.rows:
            if row.state:
                n = row.state * batch * b
                exact += n * row.multiplicity
                rounded += round_block(n, block) * row.multiplicity
                co.tensors += row.multiplicity
        co.state = exact
        co.activations = t.transient("library") * batch * b
        co.rounding = weights[1] - weights[0] + (rounded - exact) + round_block(co.input, block) - co.input
    return out


def _weights(rows, b, block, continual):
    """((exact bytes, rounded bytes), tensors) of every layer's parameter and
    buffer tensors (continual: the continual-inference modules')."""
    exact = rounded = count = 0
    for row in rows:
        if row.role == Role.ALIGNMENT and not continual:
            continue
        for numel, is_int64 in row.kind.torch_tensors(row.cfg, row.x, continual):
            n = numel * (8 if is_int64 else b)
            exact += n * row.multiplicity
            rounded += round_block(n, block) * row.multiplicity
            count += row.multiplicity
    return (exact, rounded), count
