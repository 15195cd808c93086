"""What every layer kind states, and the small types its formulas use.

A *layer kind* (``conv``, ``batchnorm``, ``avgpool``…) is a class with one
method per quantity.  Every method is plain arithmetic over the
:mod:`comem.core.shim`, so it evaluates on Python ints (exact), sympy symbols
(closed forms) and numpy arrays (sweeps) alike.

Shapes are ``Shape(c, t, h, w)``: channels, frames, height, width of the
*regular* (clip) model.  The continual model processes one frame per step;
its step tensors have the same ``c, h, w`` and one frame.

Quantities a kind provides (all per single instance of the layer):

``output(cfg, x, env)``       output shape of the regular model
``params(cfg, x)``            learnable parameters
``work(cfg, x, y, step, knobs)``
                              (``knobs``: an :class:`Env`, the knob values and
                              the model's input shape)
                              the elementary operations it performs, as
                              ``{op: count}`` for one clip (``step=False``)
                              or one continual step (``step=True``);
                              counting conventions (:mod:`comem.accounting.conventions`)
                              weigh them
``state_formulas``            the floats a continual layer keeps between
                              steps, written **once** as a formula over the
                              names :meth:`symbols` gives (one text, or one
                              per value of the knob ``state_knob``); the
                              walker evaluates it (numbers, symbols, arrays)
                              and renders it as text (:meth:`state_text`)
``temporal(cfg, x, knobs)``   ``(receptive_field, padding, stride)`` in time;
                              the delay is ``receptive_field − 1 − padding``
                              (:data:`DELAY_FORMULA`)
``library_peak(cfg, x, y, knobs)``
                              floats continual-inference holds alive at the
                              layer's own peak inside one step, output
                              included, input excluded (``library`` transient)

and, for ``comem validate`` (PyTorch is imported only there), the modules
that implement it (:meth:`torch_module`) and the operations an instrumented
module performed (:meth:`torch_work`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comem.core import shim
from comem.errors import ComemError
from comem.core.expr import parse

#: the output delay of any layer, from its temporal receptive field and
#: padding (continual-inference ``module.py``; Eq. 7 for a convolution)
DELAY_FORMULA = "r_T - 1 - p_T"


@dataclass(frozen=True)
class Shape:
    c: Any
    t: Any
    h: Any
    w: Any

    @property
    def frame(self):
        """Floats in one frame (``c·h·w``)."""
        return self.c * self.h * self.w

    @property
    def numel(self):
        """Floats in the whole clip tensor (``c·t·h·w``; the frame first, so a
        clip-by-size grid is multiplied once)."""
        return self.t * (self.c * self.h * self.w)

    def with_(self, **kw) -> "Shape":
        d = {"c": self.c, "t": self.t, "h": self.h, "w": self.w}
        d.update(kw)
        return Shape(**d)


class Env(dict):
    """What a kind's formulas may read besides its own input: the knob values
    (it is a dict of them); ``model_input``, the model's input shape
    (SlowFast's ResNet head sizes its pool from the crop, ``crop // 32``);
    and ``index_floats``, how many values of the analysed dtype one int64
    index occupies (``8 / bytes per value``: 2 at fp32, 4 at fp16), for the
    transients that hold max-pool indices; and ``batched``, whether the
    streams run as a batch of more than one (the library's reshapes copy
    then, where one stream's are views)."""

    def __init__(self, knobs, model_input: "Shape | None" = None, bytes_per_float: int = 4, batch: int = 1):
        super().__init__(knobs)
        self.model_input = model_input
        self.index_floats = 8 // bytes_per_float
        self.batched = batch > 1


#: the operation classes a kind's :meth:`LayerKind.op_class` may name: the
#: latency model (comem.device.latency) times each with a device profile's
#: own efficiencies and fixed cost per call ({d} = 1, 2, 3 dimensions)
OP_CLASSES = tuple(f"conv{d}d_{g}" for d in (1, 2, 3) for g in ("dense", "grouped", "depthwise", "pointwise")) + (
    "linear", "attention", "norm", "activation", "transcendental", "pool", "maxpool", "concat", "copy", "elementwise",
    "none") + tuple(f"conv{d}d_depthwise_{v}" for d in (1, 2, 3) for v in ("temporal", "strided"))

#: what a fit with few parameters (a platform's published rows) tells apart:
#: dense arithmetic, depthwise/grouped convolutions, and the rest
OP_WORK_GROUPS = {c: ("dw" if "depthwise" in c or "grouped" in c else "dense")
                  for c in OP_CLASSES if c.startswith("conv")} | {"linear": "dense", "attention": "dense"}

#: the axes of a kernel/stride/padding list, by the model's dims
AXES = {3: "[T, H, W]", 2: "[T, V]", 1: "[T]"}


FUNCTIONAL = "@functional"


def functional_op(op: str) -> str:
    """The name of ``op`` done by a functional call rather than a module."""
    return op if op.endswith(FUNCTIONAL) else op + FUNCTIONAL


def axes(v, what, dims=3, fill=1):
    """A kernel / stride / padding / dilation field as (T, H, W): one number
    for every axis, or one per axis of the model (``[T, H, W]``, ``[T, V]``
    for a 2D model over (time, joints), ``[T]`` for 1D); axes the model does
    not have are ``fill`` (1; 0 for padding)."""
    if isinstance(v, (list, tuple)):
        if len(v) != dims:
            raise ComemError(f"{what} must be one number or a list {AXES[dims]}, got {len(v)} values")
        vals = tuple(shim.structural(x) for x in v)
    else:
        vals = (shim.structural(v),) * dims
    return vals + (fill,) * (3 - dims)


def causal(knobs) -> bool:
    """Temporal padding is causal (knob ``temporal_padding``): ``(k−1)·d``
    frames before, none after — an output frame per input frame (over the
    stride) and no delay, as MoViNet's stream mode runs."""
    return bool(knobs) and knobs.get("temporal_padding") == "causal"


def time_out(n, k, s, p, d, knobs):
    """Output frames of a temporal window: symmetric padding ``p`` by the
    spec, or causal padding."""
    if causal(knobs):
        return shim.fdiv(n - 1, s) + 1
    return conv_out(n, k, s, p, d)


def conv_out(n, k, s, p, d=1):
    """Output length of a convolution / pooling window along one axis:
    ``floor((n + 2p - d(k-1) - 1) / s) + 1``."""
    return shim.fdiv(n + 2 * p - d * (k - 1) - 1, s) + 1


@dataclass(frozen=True)
class BatchAxis:
    """The batch axis of a state tensor: ``factor`` streams' worth per stream
    (a 2D model folds its bodies into the batch, an attention its heads)."""
    factor: Any = 1

    def at(self, batch):
        return self.factor * batch

    def __str__(self):
        return "B" if shim.is_concrete(self.factor) and self.factor == 1 else f"{self.factor}B"


@dataclass(frozen=True)
class StateTensor:
    """One tensor of a continual layer's state, as its kind declares it
    (:meth:`LayerKind.state_tensors`): its own ``name`` in the layer (the
    library's buffer name, MoViNet's state name), its ``role``
    (:data:`STATE_ROLES`), its ``shape`` (ints, one :class:`BatchAxis`),
    ``dtype`` (``"float"``: the analysed dtype; ``"int64"``/``"int32"``: an
    index or counter, never counted as state floats) and the value every
    element starts at (``init``: a number or ``"-inf"``)."""
    name: str
    role: str
    shape: tuple
    dtype: str = "float"
    init: Any = 0

    @property
    def is_float(self) -> bool:
        return self.dtype == "float"

    def numel(self, batch=1):
        n = 1
        for d in self.shape:
            n = n * (d.at(batch) if isinstance(d, BatchAxis) else d)
        return n


#: what a state tensor holds
STATE_ROLES = {
    "partial-sums": "partial output sums of a temporal convolution",
    "input-frames": "raw input frames a temporal convolution keeps (a stream buffer)",
    "pool-window": "pooled frames of a temporal pooling window",
    "running-sum": "a cumulative (running) sum of a causal global pool",
    "delay-line": "frames held back to align a branch or a delayed output",
    "keys-values": "an attention's cached keys and values",
    "queries": "an attention's cached queries and partial results",
    "hidden": "a recurrent layer's hidden / cell state",
    "index": "a position index into a circular buffer (an integer)",
    "counter": "a step or frame counter (an integer)",
}


def frame_axes(s: Shape, dims: int):
    """(batch factor, per-frame axes) of a step tensor of shape ``s`` in a
    ``dims`` model: ``(C, H, W)`` for video; ``(C, V)`` with the bodies
    (``w``) folded into the batch for a 2D model; ``(C,)`` for 1D."""
    if dims == 3:
        return 1, (s.c, s.h, s.w)
    if dims == 2:
        return s.w, (s.c, s.h)
    return s.h * s.w, (s.c,)


def shape_symbols(x: Shape, y: Shape) -> dict:
    """The symbols every kind's formulas may use: input ``c_I, T, H, W``
    (``C`` for kinds that keep the channel count) and output ``c_O, n_T,
    n_H, n_W``."""
    return {"C": x.c, "c_I": x.c, "T": x.t, "H": x.h, "W": x.w, "c_O": y.c, "n_T": y.t, "n_H": y.h, "n_W": y.w}


def _positional(function) -> tuple[list[str], int]:
    """A method's positional parameters (``self`` excluded) and how many of
    them have no default."""
    import inspect

    params = [p for p in list(inspect.signature(function).parameters.values())[1:]
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [p.name for p in params], sum(p.default is p.empty for p in params)


class LayerKind:
    """Base class: a kind that holds no state, has no parameters and does no
    counted work (identity-like)."""

    name = "identity"
    #: keys a spec may give for this kind (besides kind/name/label/when)
    fields: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    nested: tuple[str, ...] = ()
    #: fields holding a list of layer lists (``parallel`` branches)
    nested_lists: tuple[str, ...] = ()
    text_fields: tuple[str, ...] = ()
    #: a one-line description shown in `comem kinds` and the README
    summary = ""
    #: the continual state in floats: one formula, or {knob value: formula}
    #: chosen by the knob ``state_knob`` (formulas over :meth:`symbols`)
    state_formulas: str | dict = "0"
    state_knob: str | None = None
    #: or the spec field whose value picks the formula (``attention``'s ``mode``)
    state_field: str | None = None
    #: ops a continual layer only performs on steps where it emits an output
    #: (every ``s_T``-th step for a temporal stride ``s_T``)
    output_only_ops: tuple[str, ...] = ()
    #: ops of this kind's own that comem/conventions.py does not list:
    #: {op: {convention: weight}}, one weight per convention
    op_weights: dict = {}
    #: composite kinds (residual, se) expand into branches at phase 1
    composite = False
    #: continual-inference runs it frame by frame (``co.forward_stepping``)
    framewise = False
    #: the hooked module still did counted work on a step with no output
    #: (a continual pool behind a temporal stride pools every frame)
    counts_without_output = False

    def __init_subclass__(cls, **kwargs):
        """A kind's interface is checked when its class is defined: field
        tuples are tuples, required fields are fields, a formula table names
        what picks its formula, and every method it overrides keeps the base
        method's parameters (the walker, the builders and the importer call
        them by position)."""
        super().__init_subclass__(**kwargs)
        problems = []
        for attr in ("fields", "required", "nested", "nested_lists", "text_fields", "output_only_ops"):
            if not isinstance(getattr(cls, attr), tuple):
                problems.append(f"{attr} must be a tuple")
        if not set(cls.required) <= set(cls.fields):
            problems.append(f"required fields {sorted(set(cls.required) - set(cls.fields))} are not in fields")
        if isinstance(cls.state_formulas, dict) and not (cls.state_knob or cls.state_field):
            problems.append("a table of state_formulas needs state_knob or state_field to pick one")
        elif not isinstance(cls.state_formulas, (str, dict)):
            problems.append("state_formulas must be a formula text or {value: formula text}")
        if not isinstance(cls.op_weights, dict) or not all(isinstance(w, dict) for w in cls.op_weights.values()):
            problems.append("op_weights must be {op: {convention: weight}}")
        for name, member in vars(cls).items():
            base = getattr(LayerKind, name, None)
            if name.startswith("_") or not callable(member) or not callable(base):
                continue
            want, _ = _positional(base)
            have, required = _positional(member)
            if not required <= len(want) <= len(have):
                problems.append(f"{name}({', '.join(have)}) must take {len(want)} arguments ({', '.join(want)})")
        if problems:
            raise TypeError(f"layer kind class {cls.__qualname__}: " + "; ".join(problems))

    # -- phase 1: structure (channels, kernels) from spec fields --------------
    def configure(self, raw: dict, evaluate, c_in, dims: int = 3) -> dict:
        """Evaluate spec fields into a config dict; ``evaluate(key, default)``
        evaluates one field, ``c_in`` is the input channel count, ``dims``
        the model's (3: video, 2: time x joints/features, 1: time)."""
        return {"dims": dims}

    def out_channels(self, cfg, c_in):
        return c_in

    # -- phase 2: quantities ----------------------------------------------------
    def output(self, cfg, x: Shape, env: Env | None = None) -> Shape:
        return x

    def params(self, cfg, x: Shape):
        return 0

    def work(self, cfg, x: Shape, y: Shape, step: bool, knobs) -> dict:
        return {}

    def counted_work(self, cfg, x: Shape, y: Shape, step: bool, knobs) -> dict:
        """:meth:`work`, its ops marked ``op@functional`` when the layer is a
        functional call (``F.relu(x)``, ``x.mean(...)``) in the model it was
        read from — which conventions that hook only modules (ptflops) skip;
        ``functional = "regular"``: a functional call in the regular model
        only (ST-GCN's ``x.mean`` where CoST-GCN has a ``co.AvgPool1d``)."""
        work = self.work(cfg, x, y, step, knobs)
        f = cfg.get("functional") if isinstance(cfg, dict) else None
        if f is True or (f == "regular" and not step):
            return {functional_op(op): n for op, n in work.items()}
        return work

    def output_only(self, cfg) -> tuple:
        ops = self.output_only_ops
        functional = isinstance(cfg, dict) and cfg.get("functional") is True
        return tuple(functional_op(op) for op in ops) if functional else ops

    def symbols(self, cfg, x: Shape, y: Shape, knobs) -> dict:
        """Values of the names the formulas use."""
        return shape_symbols(x, y)

    def state_formula(self, cfg, knobs) -> str:
        f = self.state_formulas
        if not isinstance(f, dict):
            return f
        return f[cfg[self.state_field]] if self.state_field else f[knobs[self.state_knob]]

    def state(self, cfg, x: Shape, y: Shape, knobs, formula: str | None = None):
        """Floats of state: ``formula`` (default: the kind's own) evaluated."""
        formula = formula or self.state_formula(cfg, knobs)
        if formula == "0":
            return 0
        return parse(formula).evaluate(self.symbols(cfg, x, y, knobs))

    def state_text(self, cfg, x: Shape, y: Shape, knobs, formula: str | None = None, texts=None):
        """(symbolic text, text with numbers) of the state formula."""
        e = parse(formula or self.state_formula(cfg, knobs))
        return e.render(), e.render(self.symbols(cfg, x, y, knobs), texts)

    def state_tensors(self, cfg, x: Shape, y: Shape, knobs) -> list:
        """The tensors the continual layer keeps (:class:`StateTensor`), in
        the order its continual module keeps them, their float elements
        summing to :meth:`state` at batch 1.  Default: none when the layer
        keeps no state; one ``(B, floats)`` tensor for a kind that declares
        no layout of its own."""
        n = self.state(cfg, x, y, knobs)
        if shim.is_concrete(n) and n == 0:
            return []
        return [StateTensor("state", "state", (BatchAxis(), n))]

    def temporal(self, cfg, x: Shape, knobs):
        return (1, 0, 1)

    def emit_stride(self, cfg, x: Shape, knobs):
        """Every how many steps the continual layer emits an output (the
        rate the layers after it run at): its temporal stride, unless the
        library does otherwise."""
        return self.temporal(cfg, x, knobs)[2]

    def delay_text(self, cfg, x: Shape, knobs):
        """``r_T−1−p_T`` with this layer's numbers (``3−1−1``), and its
        rendering precedence, for the alignment delays it causes."""
        rf, pad, _ = self.temporal(cfg, x, knobs)
        return parse(DELAY_FORMULA).render_parts({"r_T": rf, "p_T": pad})

    def library_peak(self, cfg, x: Shape, y: Shape, knobs):
        """Default: the layer allocates its output and nothing else
        (in-place activations allocate nothing)."""
        return 0 if cfg.get("inplace") else y.frame

    def held(self, cfg, x: Shape) -> dict:
        """What the layer's module holds besides its continual state, in
        values, by how it holds them: ``trainable`` (its parameters,
        :meth:`params`: what ptflops and the papers count), ``frozen``
        (parameters it does not train, ``requires_grad=False``: a graph
        convolution's fixed adjacency), ``buffers`` (float buffers: a batch
        norm's running mean and variance) and ``int64`` (integer buffers: its
        ``num_batches_tracked``).  Default: the parameters, all trained."""
        return {"trainable": self.params(cfg, x), "frozen": 0, "buffers": 0, "int64": 0}

    def torch_tensors(self, cfg, x: Shape, continual: bool = False) -> list:
        """The parameter and buffer tensors PyTorch allocates for this layer
        (``continual``: its continual-inference module's, state buffer aside):
        ``[(elements, int64?)]`` — what a runtime's allocator holds, each one
        block.  Default: one tensor of the layer's params, if any."""
        p = self.params(cfg, x)
        return [(p, False)] if not (shim.is_concrete(p) and p == 0) else []

    def state_traffic(self, cfg, x: Shape, y: Shape, knobs):
        """Floats one continual step reads and writes besides its input and
        output (state buffers, the library's copies), for the roofline."""
        return 0

    # -- latency (comem.device.latency) -------------------------------------------
    def op_class(self, cfg, x: Shape, y: Shape) -> str:
        """The operation class (:data:`OP_CLASSES`) the latency model times
        this layer as, with the device profile's efficiencies and fixed cost
        for that class.  Default ``none``: the layer costs its module call."""
        return "none"

    def op_traffic(self, cfg, x: Shape, y: Shape, step: bool):
        """Floats the implementation moves besides the layer's input, output
        and weights (a convolution's unfolded input), for the latency model.
        Default 0."""
        return 0

    def op_calls(self, cfg, step: bool):
        """Module calls one regular clip (``step=False``) or continual step
        of this layer makes, each paying the class's fixed cost; a layer built
        of several modules (a transformer layer) makes several.  Default 1."""
        return 1

    def library_peak_clip(self, cfg, x: Shape, y: Shape, knobs):
        """Floats a regular (clip) forward of this layer allocates besides its
        output, counted by the ``library`` transient rule (default 0)."""
        return 0

    def library_note(self, cfg, knobs) -> str | None:
        """A remark the report adds to the transient when this layer is
        counted by the ``library`` rule (how it counts what it allocates)."""
        return None

    def check(self, cfg, x: Shape, y: Shape, where: str):
        """Raise a ComemError when the layer cannot run on this input."""
        return None

    def continual_ok(self, cfg) -> str | None:
        """None when the layer has a continual form; otherwise why not."""
        return None

    # -- validation (comem validate): PyTorch modules ---------------------------
    def torch_module(self, cfg, x: Shape, kit, continual: bool, knobs):
        """The module implementing this layer: ``kit`` holds ``torch``,
        ``nn``, ``co`` and comem's helper modules
        (:mod:`comem.pytorch.modules`); ``continual`` picks the
        continual-inference form."""
        return kit.framewise(kit.nn.Identity()) if continual else kit.nn.Identity()

    def published_step_count(self, cfg, x: Shape, y: Shape, work_step: dict):
        """What the paper's toolchain (ptflops 0.6 hooked on continual-inference
        modules, :mod:`comem.reproduce.co3d`) counted for one step of this layer:
        ptflops' own count, twice for frame-wise modules, whose hooks
        ``co.forward_stepping`` fires twice per call."""
        from comem.accounting.conventions import weigh

        return weigh(work_step, "ptflops") * (2 if self.framewise else 1)

    def published_clip_count(self, cfg, x: Shape, y: Shape, work_clip: dict):
        """What the authors' toolchain (ptflops 0.6) counted for this layer in
        a regular clip (:mod:`comem.reproduce.beyond`): by default ptflops'."""
        from comem.accounting.conventions import weigh

        return weigh(work_clip, "ptflops")

    # -- import (comem import, comem.from_module): PyTorch modules -> spec ----
    def torch_types(self, kit) -> tuple:
        """The module classes (torch.nn and continual-inference) this kind
        reads when a model is imported."""
        return ()

    def from_torch(self, m, dims: int) -> dict:
        """The spec fields of module ``m`` (``{"kind": ..., ...}``); a
        ComemError names what cannot be mapped."""
        return {"kind": self.name}

    #: the input layout the kind needs when read from a model
    #: (:meth:`torch_output_layout`): ``any`` (element-wise, the layout is
    #: kept), ``canonical`` (batch, channels, then time and the frame's axes
    #: in order: convolutions, pools), ``channels_first`` (channels on axis
    #: 1), ``channels_last`` (channels on the last axis: ``nn.Linear``),
    #: ``flatten`` (any in, ``(batch, features)`` out)
    torch_layout = "any"
    #: aten ops (overload-packet names) whose functional call on the data
    #: this kind may stand for (``F.relu`` → ``relu``); :meth:`from_aten`
    #: decides each call
    aten_ops: tuple = ()
    #: what the importer may ask for by role rather than by kind:
    #: ``flatten`` (a reshape merging the channels with the axes after them)
    import_role: str | None = None
    #: the layer hands its input on untouched at inference (identity,
    #: dropout): an imported branch of only such layers is a plain shortcut
    passthrough = False
    #: the kind ``g`` of a gate ``x * g(x)`` written out that this kind is
    #: (X3D's Swish: ``sigmoid``)
    self_gate_of: str | None = None

    def torch_fields(self, module, dims: int, layout: tuple) -> dict:
        """The spec fields of ``module`` run on an input laid out ``layout``
        (default: :meth:`from_torch`, whatever the layout)."""
        return self.from_torch(module, dims)

    def torch_match(self, module) -> bool:
        """Whether ``module``, of a class :meth:`torch_types` does not list
        (model code not on PyPI), is this kind, recognised by what it holds."""
        return False

    def torch_output_layout(self, module, layout: tuple, canon: tuple) -> tuple:
        """The layout of this layer's output on an input laid out ``layout``
        (axis labels ``B``, ``C``, ``T``, ``H``, ``W`` / ``V``); ``canon`` is
        the model's canonical layout.  A ComemError says why the layer does
        not read that input as comem's formulas do."""
        rule = self.torch_layout
        layout = tuple(layout)
        if rule == "canonical" and layout != tuple(canon):
            raise ComemError(f"on a tensor laid out {layout}; comem follows {tuple(canon)} here")
        if rule == "channels_first" and (len(layout) < 2 or layout[1] != "C"):
            raise ComemError(f"over axis 1, which is {layout[1] if len(layout) > 1 else None!r}, not the channels")
        if rule == "channels_last" and layout[-1] != "C":
            raise ComemError(f"over the last axis, which is {layout[-1]!r}, not the channels")
        if rule == "flatten":
            return ("B", "C")
        return tuple(canon) if rule == "canonical" else layout

    def from_aten(self, call) -> "dict | None":
        """The spec fields of a functional call on the data (``call``: an
        :class:`AtenCall`) with ``call.out_layout`` set, or None when this
        kind does not stand for that call; a ComemError says why it cannot."""
        return None

    def import_strides(self, raw: dict, dims: int) -> tuple:
        """``(s_T, s_H, s_W)`` of a layer written as spec fields ``raw``
        (an imported residual's main branch decides its shortcut by them)."""
        return (1, 1, 1)

    def gate_pool(self, raw: dict) -> "dict | None":
        """The fields of this layer when it opens a multiplicative gate
        (squeeze-excitation), or None when it cannot."""
        return None

    def torch_time_pad(self, raw: dict, front: int) -> dict:
        """The fields of this layer read on an input that ``front`` frames of
        zeros were concatenated before in time (a causal model's empty stream
        buffer, ``torch.cat((zeros, x), 2)``); a ComemError says why not."""
        raise ComemError(f"frames padded in time by torch.cat of zeros before a {self.name} layer, which reads no "
                         "temporal padding")

    def gate_block(self, main: list, c_in) -> "dict | None":
        """The fields of one layer of this kind standing for a whole
        multiplicative gate ``x * g(x)`` whose branch ``g`` opens with a layer
        of this kind (``main``: the branch's layers as spec fields), or None."""
        return None

    def is_auto_shortcut(self, shortcut: list, main_strides: tuple, c_in, c_out, kinds: dict) -> bool:
        """Whether the layers ``shortcut`` (spec fields) are the shortcut this
        composite kind builds itself for a main branch of ``main_strides``."""
        return False

    def torch_hooked(self, module) -> list:
        """The modules whose forward hooks count this layer's work."""
        return [module]

    def torch_work(self, module, inp, out) -> dict:
        """``{op: count}`` one hooked module performed, from its real tensors."""
        return {}


@dataclass
class AtenCall:
    """A functional op on the data, as the importer saw it: the op's name
    and arguments, the input's layout (the model's ``canon``ical one when
    time and space are in order), its shape, whether it is one frame of a
    clip (``x[:, :, t]``), and the output's shape.  A kind that stands for
    the call sets ``out_layout``."""
    name: str
    args: tuple
    kwargs: dict
    layout: tuple
    canon: tuple
    shape: tuple
    out_shape: tuple
    frame: bool = False
    out_layout: tuple | None = None
    #: why no kind stands for the call, said by a kind that declined it
    refusal: str | None = None

    def arg(self, i, key, default=None):
        if len(self.args) > i:
            return self.args[i]
        return self.kwargs.get(key, default)

    def axes(self, dims) -> set:
        """The labels of the axes ``dims`` (one index or a list)."""
        dims = dims if isinstance(dims, (list, tuple)) else [dims]
        return {self.layout[d % len(self.layout)] for d in dims}

    @property
    def space(self) -> set:
        return set(self.canon[3:])

    @property
    def time_space(self) -> set:
        return set(self.canon[2:])
