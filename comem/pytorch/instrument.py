"""Measure real models: state, parameters, per-step and per-clip work,
delay, receptive field and the transient peak of one step.

* **state** — after warming the continual model up through its receptive
  field, the floats in the floating tensors each module's ``get_state()``
  returns;
* **work** — forward hooks that read each module's real input/output tensors
  and count elementary operations (``conv_mac``, ``batchnorm``, …), each
  module once per step (``co.forward_stepping`` modules fire their hooks
  twice per call; the second firing is ignored); the regular model is also
  counted by ptflops itself (module hooks only);
* **delay / receptive field** — the library's own properties;
* **transient** — a ``TorchDispatchMode`` that records every tensor storage
  created during one step and when it is freed; the peak of live bytes
  (floating tensors and max-pool indices; state buffers, parameters and the
  input frame excluded).
"""
from __future__ import annotations

import weakref
from collections import defaultdict
from dataclasses import dataclass, field

from comem.pytorch import require_extra
from comem.layers.base import functional_op


@dataclass
class Measured:
    params: dict = field(default_factory=dict)       # row path -> params
    state: dict = field(default_factory=dict)        # row path -> floats
    work_step: dict = field(default_factory=dict)    # row path -> {op: n}, one full step
    work_avg: dict = field(default_factory=dict)     # row path -> {op: n}, summed over `stride` steps
    work_clip: dict = field(default_factory=dict)    # row path -> {op: n}, regular model
    ptflops_clip: int | None = None
    ptflops_params: int | None = None
    delay: int | None = None
    receptive_field: int | None = None
    transient_peak_bytes: int | None = None
    stride: int = 1
    unmapped_state: int = 0
    executed_step: int = 0   # the ``executed`` convention, measured at dispatch level (ExecutedCounter)


class _OpCounter:
    """Forward hooks on the mapped modules; each module counted once per
    step, by the layer kind that built it (``LayerKind.torch_work``)."""

    def __init__(self, row_map):
        self.by_row = defaultdict(lambda: defaultdict(int))
        self.seen = set()
        self.handles = []
        functional = getattr(row_map, "functional", set())
        for path, kind, modules in row_map.items():
            for m in modules:
                for hooked in kind.torch_hooked(m):
                    self.handles.append(hooked.register_forward_hook(self._hook(path, kind, path in functional)))

    def _hook(self, path, kind, functional=False):
        def hook(m, inp, out):
            if id(m) in self.seen:
                return
            if out is None and not kind.counts_without_output:
                return
            self.seen.add(id(m))
            for op, n in kind.torch_work(m, inp, out).items():
                self.by_row[path][functional_op(op) if functional else op] += n
        return hook

    def new_step(self):
        self.seen = set()

    def take(self):
        out = {p: dict(v) for p, v in self.by_row.items()}
        self.by_row = defaultdict(lambda: defaultdict(int))
        return out

    def remove(self):
        for h in self.handles:
            h.remove()


def _state_floats(module):
    import torch

    st = module.get_state() if hasattr(module, "get_state") else None
    if not st:
        return 0
    flat = st if isinstance(st, (tuple, list)) else (st,)
    return sum(t.numel() for t in flat if isinstance(t, torch.Tensor) and t.is_floating_point())


#: ops whose integer outputs are the indices of a max pool (held until it returns)
_INDEX_OPS = ("max_pool", "adaptive_max_pool")


class LiveTensorTracker:
    """Peak of the bytes in tensor storages created while active and still
    alive: floating tensors, and the int64 indices max pools compute.  The
    0-dim and ``k_T``-element integer tensors that index state buffers are
    bookkeeping, not counted."""

    def __init__(self, known_storages=()):
        from torch.utils._python_dispatch import TorchDispatchMode

        tracker = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                tracker._record(out, str(func))
                return out

        self._mode = _Mode()
        self.known = set(known_storages)
        if isinstance(known_storages, dict):
            # a storage alive before the step (old state) may be freed during it and its address
            # reused by a new tensor: forget it when it dies
            for key, st in known_storages.items():
                if st is not None:
                    weakref.finalize(st, self.known.discard, key)
        self.live = {}
        self.current = 0
        self.peak = 0

    def _free(self, key):
        self.current -= self.live.pop(key, 0)

    def _record(self, out, func):
        import torch
        from torch.utils._pytree import tree_flatten

        flat, _ = tree_flatten(out)
        for t in flat:
            if not isinstance(t, torch.Tensor):
                continue
            if not t.is_floating_point() and not (t.dtype == torch.int64 and any(o in func for o in _INDEX_OPS)):
                continue
            st = t.untyped_storage()
            key = st.data_ptr()
            if key in self.known or key in self.live or st.nbytes() == 0:
                continue
            self.live[key] = st.nbytes()
            self.current += st.nbytes()
            weakref.finalize(st, self._free, key)
            self.peak = max(self.peak, self.current)

    def __enter__(self):
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self._mode.__exit__(*exc)


#: aten ops of a linear layer's matrix product
_ATEN_LINEAR = "linear"   # aten.linear (the op, not comem's layer kind)
_MATMUL_OPS = frozenset({"addmm", "mm", "bmm", _ATEN_LINEAR})


class ExecutedCounter:
    """The arithmetic the runtime really dispatches, read off the aten ops:
    every ``convolution`` (output elements × input channels per group ×
    kernel taps: zero taps of a padded input included; plus one addition
    per output element for a bias), every matrix product of a linear layer
    (``addmm``/``mm``/``bmm``/``linear``: M·K·N, plus a bias; a 1-D bias added
apart, as an attention's in-projection of a 3-D query does; oneDNN's fused
LSTM layer), and — inside
    convolution and linear modules — the additions that gather stored
    partial outputs or add a bias apart (``sum``: input minus output
    elements; ``add``: output elements).  The
    independent measure of the ``executed`` convention."""

    def __init__(self, model):
        from torch.nn import Linear
        from torch.nn.modules.conv import _ConvNd
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self
        self.macs = 0
        self.adds = 0
        self.inside_conv = 0
        # torch's and continual-inference's convolutions and linear layers (a linear layer on a map of
        # several positions runs matmul + add: its bias additions are dispatched apart)
        conv_types = (_ConvNd, Linear)
        self.handles = []
        for m in model.modules():
            if isinstance(m, conv_types):
                self.handles.append(m.register_forward_pre_hook(self._enter))
                self.handles.append(m.register_forward_hook(self._leave))

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                counter._record(func._overloadpacket.__name__, args, out)
                return out

        self._mode = _Mode()

    def _enter(self, m, args):
        self.inside_conv += 1

    def _leave(self, m, args, out):
        self.inside_conv -= 1

    def _record(self, name, args, out):
        import torch

        if name == "convolution":
            w, bias = args[1], args[2]
            taps = 1
            for k in w.shape[1:]:
                taps *= k
            self.macs += out.numel() * taps
            if bias is not None:
                self.adds += out.numel()
        elif name in _MATMUL_OPS:
            a, b = (args[1], args[2]) if name == "addmm" else (args[0], args[1])
            k = a.shape[-1]
            self.macs += out.numel() * k
            if name == "addmm" or (name == _ATEN_LINEAR and len(args) > 2 and args[2] is not None):
                self.adds += out.numel()
        elif self.inside_conv and isinstance(out, torch.Tensor) and out.is_floating_point():
            if name == "sum":
                self.adds += args[0].numel() - out.numel()
            elif name in ("add", "add_"):
                self.adds += out.numel()
        elif name == "mkldnn_rnn_layer":
            # oneDNN's fused LSTM layer on the CPU: (input, w_ih, w_hh, b_ih, b_hh, ...), batch first
            x, w_ih, w_hh, b_ih, b_hh = args[:5]
            steps = x.numel() // x.shape[-1]
            self.macs += steps * (w_ih.numel() + w_hh.numel())
            if isinstance(b_ih, torch.Tensor) and args[12]:
                self.adds += steps * (b_ih.numel() + b_hh.numel())
        elif name in ("add", "add_") and _is_bias_add(args, out):
            # a projection's bias added apart from its matmul (an attention's in-projection of a
            # (T, N, D) query): a 1-D vector broadcast over the last axis
            self.adds += out.numel()

    @property
    def total(self) -> int:
        return self.macs + self.adds

    def __enter__(self):
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        self._mode.__exit__(*exc)

    def remove(self):
        for h in self.handles:
            h.remove()


def _is_bias_add(args, out) -> bool:
    import torch

    return (len(args) > 1 and isinstance(args[1], torch.Tensor) and isinstance(out, torch.Tensor)
            and args[1].dim() == 1 and out.dim() >= 2 and out.shape[-1] == args[1].shape[0]
            and out.is_floating_point())


def _storages_of(model, extra=()):
    """The storages alive before a step: ``{data_ptr: storage}`` for the
    state and the input (which a step may free), ``{data_ptr: None}`` for
    weights and buffers."""
    import torch

    keys = {}

    def add(t):
        st = t.untyped_storage()
        keys[st.data_ptr()] = st

    for p in list(model.parameters()) + list(model.buffers()):
        keys[p.untyped_storage().data_ptr()] = None   # alive throughout
    for m in model.modules():
        st = m.get_state() if hasattr(m, "get_state") and callable(getattr(m, "get_state")) else None
        if st:
            for t in (st if isinstance(st, (tuple, list)) else (st,)):
                if isinstance(t, torch.Tensor):
                    add(t)
    for t in extra:
        add(t)
    return keys


def input_dims(dims, height, width) -> tuple:
    """The spatial dims of one input frame: (H, W), (V,) or () — a 2D
    model of several bodies (``size = [V, M]``) takes (V, M)."""
    if dims == 2 and width not in (None, 1):
        return (height, width)
    return (height, width)[:dims - 1]


def measure_regular(model, row_map, in_channels, clip, size, use_ptflops=True, seed=0, width=None, dims=3):
    require_extra()
    import torch

    torch.manual_seed(seed)
    m = Measured()
    for path, _, mods in row_map.items():
        m.params[path] = sum(p.numel() for mod in mods for p in mod.parameters(recurse=True))
    counter = _OpCounter(row_map)
    spatial = input_dims(dims, size, size if width is None else width)
    x = torch.randn(1, in_channels, clip, *spatial)
    with torch.no_grad():
        model(x)
    m.work_clip = counter.take()
    counter.remove()
    if use_ptflops:
        from ptflops import get_model_complexity_info

        with torch.no_grad():
            macs, params = get_model_complexity_info(
                model, (in_channels, clip, *spatial), as_strings=False, print_per_layer_stat=False,
                backend="pytorch", backend_specific_config={"count_functional": False}, verbose=False)
        m.ptflops_clip, m.ptflops_params = int(macs), int(params)
    return m


def measure_continual(model, row_map, in_channels, size, stride: int = 1, seed=0, width=None, dims=3):
    """Warm up through the receptive field, then measure ``stride`` steps."""
    require_extra()
    import torch

    torch.manual_seed(seed)
    m = Measured(stride=stride)
    for path, _, mods in row_map.items():
        m.params[path] = sum(p.numel() for mod in mods for p in mod.parameters(recurse=False))
    m.delay = int(model.delay)
    m.receptive_field = int(model.receptive_field)
    spatial = input_dims(dims, size, size if width is None else width)
    frame = lambda: torch.randn(1, in_channels, *spatial)  # noqa: E731
    # model.forward_step, not model(x) under co.call_mode("forward_step"): the global call mode would
    # also turn the forward a retroactive transformer layer runs inside its step into a step
    with torch.no_grad():
        warm = m.receptive_field + 2 * stride
        for _ in range(warm):
            model.forward_step(frame())
    mapped = set()
    for path, _, mods in row_map.items():
        total = 0
        for mod in mods:
            for sub in mod.modules():
                if id(sub) in mapped:
                    continue
                mapped.add(id(sub))
                total += _state_floats(sub)
        m.state[path] = total
    m.unmapped_state = sum(_state_floats(sub) for sub in model.modules() if id(sub) not in mapped)
    counter = _OpCounter(row_map)
    executed = ExecutedCounter(model)
    steps = []
    with torch.no_grad():
        for _ in range(stride):
            counter.new_step()
            x = frame()
            known = _storages_of(model, [x])
            tracker = LiveTensorTracker(known)
            before = executed.total
            with tracker, executed:
                out = model.forward_step(x)
            del out
            steps.append((counter.take(), tracker.peak, executed.total - before))
    executed.remove()
    # the full step is the one in which the most work ran
    def total(w):
        return sum(sum(v.values()) for v in w.values())

    full = max(steps, key=lambda s: total(s[0]))
    m.work_step = full[0]
    m.transient_peak_bytes = full[1]
    m.executed_step = full[2]
    avg = defaultdict(lambda: defaultdict(int))
    for w, _, _ in steps:
        for path, ops in w.items():
            for op, n in ops.items():
                avg[path][op] += n
    m.work_avg = {p: dict(v) for p, v in avg.items()}
    counter.remove()
    return m
