"""Measure the peak bytes a real eager run allocates, term by term, to check
:mod:`comem.model.runtime` (``comem bench``, ``tests/test_runtime.py``).

The models come from the spec through the validation builder.  On CPU the
terms are read off the live tensors: the parameters and buffers, the input,
the continual modules' state after warm-up (``get_state()``), and the peak
of the tensors created during one forward (:class:`LiveTensorTracker`:
floating tensors and max-pool indices).  ``torch.profiler`` also records the
allocator's own peak, which adds what kernels allocate inside themselves
(``slow_conv3d``'s column buffer at one thread): reported apart as scratch.
On CUDA the reading is ``torch.cuda.max_memory_allocated`` (Table 1's Mem.).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from comem.errors import ComemError, arg
from comem.pytorch import require_extra


@dataclass
class MeasuredPeak:
    device: str
    regular: dict = field(default_factory=dict)     # term -> bytes (and "total")
    continual: dict | None = None


def _bytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        st = t.untyped_storage()
        if st.data_ptr() in seen or st.nbytes() == 0:
            continue
        seen.add(st.data_ptr())
        total += st.nbytes()
    return total


def _state_tensors(model):
    import torch

    out = []
    for m in model.modules():
        st = m.get_state() if hasattr(m, "get_state") and callable(getattr(m, "get_state")) else None
        if st:
            out += [t for t in (st if isinstance(st, (tuple, list)) else (st,))
                    if isinstance(t, torch.Tensor) and t.is_floating_point()]
    return out


def build(model, clip, size, dtype="fp32", params=None):
    """(setup, regular module, continual module or None, (clip, height, width), torch dtype)."""
    require_extra()
    import torch

    from comem.api import check_clip_size, prepare
    from comem.core.units import dtype_bytes
    from comem.pytorch.build import build_models

    setup = prepare(model, None, None, params)
    clip, height, width = check_clip_size(setup.spec, clip, size)
    name, _ = dtype_bytes(dtype)
    tdt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp64": torch.float64}.get(name)
    if tdt is None:
        raise ComemError(f"{name} has no eager PyTorch model to measure; use fp32, fp16, bf16 or fp64")
    from comem.accounting.profiles import get_profile

    knobs = get_profile("continual-inference").as_dict()
    reg, _, com, _ = build_models(setup.graph, clip, height, knobs, setup.continual, width=width)
    reg = reg.eval().to(tdt)
    com = com.eval().to(tdt) if setup.continual and com is not None else None
    return setup, reg, com, (clip, height, width), tdt


def measure_peak(model, clip=None, size=None, dtype="fp32", batch=1, params=None, device="cpu",
                 seed=0, threads: int = 1) -> MeasuredPeak:
    """Peak allocated bytes of one regular forward and one continual step.
    On CPU at ``threads`` threads (1: the paper's one core; the kernels
    ATen picks, and the copies they make, depend on it)."""
    import torch

    if device == "cpu":
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return _measure_peak(model, clip, size, dtype, batch, params, device, seed)
        finally:
            torch.set_num_threads(before)
    return _measure_peak(model, clip, size, dtype, batch, params, device, seed)


def _measure_peak(model, clip, size, dtype, batch, params, device, seed) -> MeasuredPeak:
    import torch

    from comem.pytorch.instrument import LiveTensorTracker, _storages_of, input_dims

    setup, reg, com, (clip, h, w), tdt = build(model, clip, size, dtype, params)
    torch.manual_seed(seed)
    spatial = input_dims(setup.spec.dims, h, w)
    c_in = setup.graph.in_channels
    out = MeasuredPeak(device)
    if device == "cuda":
        return _measure_cuda(out, reg, com, c_in, clip, spatial, batch, tdt)
    weights = _bytes(list(reg.parameters()) + list(reg.buffers()))
    x = torch.randn(batch, c_in, clip, *spatial, dtype=tdt)
    tracker = LiveTensorTracker(_storages_of(reg, [x]))
    with torch.no_grad(), tracker:
        y = reg(x)
    del y
    out.regular = {"weights": weights, "input": _bytes([x]), "state": 0, "activations": tracker.peak}
    out.regular["total"] = sum(out.regular.values())
    if com is None:
        return out
    # steps by forward_step (see measure_continual: a global call mode would make the forward a
    # retroactive transformer layer runs inside its step a step too)
    frame = lambda: torch.randn(batch, c_in, *spatial, dtype=tdt)  # noqa: E731
    with torch.no_grad():
        for _ in range(int(com.receptive_field) + 2):
            com.forward_step(frame())
    state = _state_tensors(com)
    state_keys = {t.untyped_storage().data_ptr() for t in state}
    own = [t for t in list(com.parameters()) + list(com.buffers()) if t.untyped_storage().data_ptr() not in state_keys]
    x = frame()
    tracker = LiveTensorTracker(_storages_of(com, [x]))
    with torch.no_grad(), tracker:
        y = com.forward_step(x)
    del y
    out.continual = {"weights": _bytes(own), "input": _bytes([x]), "state": _bytes(state),
                     "activations": tracker.peak}
    out.continual["total"] = sum(out.continual.values())
    return out


def _measure_cuda(out, reg, com, c_in, clip, spatial, batch, tdt):
    import torch

    if not torch.cuda.is_available():
        raise ComemError(f"{arg('device')} cuda: no CUDA device is available here; use {arg('device')} cpu")
    dev = torch.device("cuda")
    reg = reg.to(dev)
    x = torch.randn(batch, c_in, clip, *spatial, dtype=tdt, device=dev)
    with torch.no_grad():
        reg(x)  # warm-up (cuDNN algorithm choice)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        reg(x)
        torch.cuda.synchronize()
    out.regular = {"total": torch.cuda.max_memory_allocated()}
    reg.cpu()
    del x
    torch.cuda.empty_cache()
    if com is None:
        return out
    com = com.to(dev)
    with torch.no_grad():
        for _ in range(int(com.receptive_field) + 2):
            com.forward_step(torch.randn(batch, c_in, *spatial, dtype=tdt, device=dev))
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        com.forward_step(torch.randn(batch, c_in, *spatial, dtype=tdt, device=dev))
        torch.cuda.synchronize()
    out.continual = {"total": torch.cuda.max_memory_allocated()}
    return out


def allocator_peak_cpu(module, x, step: bool = False) -> int:
    """The CPU allocator's peak during one call, from ``torch.profiler``'s
    memory events (everything the allocator handed out, kernels' scratch
    included), relative to the bytes alive when it started."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        module.forward_step(x) if step else module(x)
    current = peak = 0
    # each event's own allocations and frees (an op's self usage; [memory] events are frees outside
    # any op), in time order
    events = sorted((e for e in prof.events() if getattr(e, "self_cpu_memory_usage", 0)),
                    key=lambda e: e.time_range.start)
    for e in events:
        current += e.self_cpu_memory_usage
        peak = max(peak, current)
    return peak


class _quiet_stderr:
    """Silence what the profiler's C++ side prints on stderr."""

    def __enter__(self):
        import os
        import sys

        sys.stderr.flush()
        self.saved = os.dup(2)
        self.null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self.null, 2)
        return self

    def __exit__(self, *exc):
        import os

        os.dup2(self.saved, 2)
        os.close(self.saved)
        os.close(self.null)
        return False

