"""Trace a regular ``torch.nn`` model into a dataflow graph of comem layers.

The model runs once on a fake input (``FakeTensorMode``: shapes only, no
arithmetic, so a large model traces in a second).  Two instruments watch it:

* forward hooks on every module: a module that a layer kind reads
  (``LayerKind.torch_types``, or ``LayerKind.torch_match`` for model code
  not on PyPI) becomes one layer op, and what it does inside is not looked
  at — unless its class overrides ``forward``/``forward_step`` of the class
  the kind reads (continual-transformers' ``SelectOrDelay(co.Delay)``): such
  a module is read by what it does;
* a ``TorchDispatchMode``: every aten op that runs outside such a module
  and touches the data — the functional glue of real video code — is
  classified: residual ``+``, gating ``*``, ``torch.cat`` of pathways,
  reshapes and permutes (followed as changes of layout), and the functional
  calls the layer kinds answer for (``LayerKind.aten_ops``: activations,
  pools, means, frame subsampling).

Modules may pass lists, tuples and dicts of tensors between them
(pytorchvideo's multi-pathway blocks); a model that takes a list of
pathways is fed from one clip as SlowFast's ``PackPathway`` transform does.

Each tensor carries a *layout*: which of its axes is the batch, the
channels, time, height, width (or the joints of a 2D model), so that a
channels-last ``nn.Linear`` is read as a projection over channels and a
``flatten`` of a 1×1×1 map as a squeeze.  Anything that cannot be mapped is
collected with the qualified name of the module it ran in; the import then
fails with one line listing them all.  Nothing torch logs or warns while
the model runs reaches the terminal.
"""
from __future__ import annotations

import contextlib
import operator
from dataclasses import dataclass, field

from comem.errors import ComemError
from comem.layers.base import AtenCall


@dataclass(eq=False)
class Value:
    """A tensor of the dataflow: its shape (batch included) and layout."""
    shape: tuple
    layout: tuple
    producer: "Op | None" = None
    unknown: bool = False  # made by something comem could not map (already reported)
    frame: bool = False    # one frame of a clip (``x[:, :, t]``, as ``co.Lambda`` does): no T axis
    parts: dict = field(default_factory=dict)  # sizes of the single axes merged into one (``"MVC"``)
    averaged: frozenset = frozenset()  # axes a mean already averaged, before it covers time and space

    @property
    def sizes(self) -> dict:
        return dict(zip(self.layout, self.shape))


@dataclass(eq=False)
class Op:
    """One layer (``raw``: its spec fields) or a merge of several values."""
    raw: dict | None
    inputs: list
    output: Value
    path: str
    merge: str | None = None
    branches: list = field(default_factory=list)  # a collapsed parallel: lists of Ops
    glue: bool = False  # a functional call in a forward, not a module

    @property
    def is_merge(self) -> bool:
        return self.merge is not None and not self.branches


# aten ops that only look at the data differently (views and copies)
_VIEWS = {"view", "_unsafe_view", "reshape", "_reshape_alias", "expand", "contiguous", "clone", "alias", "detach",
          "permute", "transpose", "t", "squeeze", "unsqueeze", "flatten", "lift_fresh", "lift_fresh_copy",
          "dropout", "feature_dropout", "alpha_dropout", "_to_copy", "to"}
_MERGES = ("add", "add_", "mul", "mul_", "cat", "select", "stack")
# what a few unmappable ops on the data usually are, for the refusal
_CONSTRUCTS = {"bmm": "a batched matrix product of the data (attention or a graph product written out)",
               "mm": "a matrix product of the data (a graph product or attention written out)",
               "matmul": "a matrix product of the data (a graph product or attention written out)",
               "einsum": "an einsum over the data", "baddbmm": "a batched matrix product of the data",
               "_scaled_dot_product_flash_attention_for_cpu": "scaled dot-product attention written functionally",
               "_scaled_dot_product_efficient_attention": "scaled dot-product attention written functionally",
               "scaled_dot_product_attention": "scaled dot-product attention written functionally"}


_FLATTEN = object()  # a reshape that merges the channels with the axes after them


def canonical_layout(dims: int) -> tuple:
    return ("B", "C", "T", "H", "W")[:2 + dims] if dims != 2 else ("B", "C", "T", "V")


def plain(value):
    """Spec fields as plain Python: numpy and torch integer scalars (a
    head pool's kernel computed with numpy) become ints, float scalars
    floats, tuples lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, int):
        return int(value)
    if type(value).__name__ in ("bool_", "bool"):
        return bool(value)
    try:
        return operator.index(value)
    except TypeError:
        pass
    if isinstance(value, float) or hasattr(value, "__float__"):
        f = float(value)
        return int(f) if f.is_integer() and type(value).__name__.startswith("int") else f
    return value


def _flat_tensors(obj):
    """The tensors in a (nested) list / tuple / dict, in order."""
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _flat_tensors(o)]
    return []


_LIBRARIES = ("torch.", "continual.")


def _overrides(cls, base) -> bool:
    """Whether ``cls`` (a subclass of ``base``) is model code that defines
    its own forward or forward_step(s); the libraries' own subclasses
    (``co.Linear`` of ``nn.Linear``) do what the kind reads."""
    for c in cls.__mro__:
        if c is base:
            return False
        if c.__module__.startswith(_LIBRARIES):
            continue
        if any(name in vars(c) for name in ("forward", "forward_step", "forward_steps")):
            return True
    return False


@contextlib.contextmanager
def quiet():
    """Nothing torch (or the model) logs or warns reaches the terminal."""
    import logging
    import warnings

    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


class Tracer:
    """Run ``model`` on a fake ``(1, *input_shape)`` input and record ops."""

    def __init__(self, model, input_shape: tuple, kinds: dict, kit, by_class=None, pathways=None, bodies=False):
        self.model = model
        self.input_shape = tuple(input_shape)
        #: a skeleton model's input ``(C, T, V, M)``: M bodies, which it folds into the batch
        self.bodies = self.input_shape[3] if bodies else None
        self.dims = len(self.input_shape) - 1 - (1 if bodies else 0)
        self.kit = kit
        self.kinds = kinds
        self.pathways = pathways
        self.by_class = by_class if by_class is not None else {}
        for kind in kinds.values():
            for cls in kind.torch_types(kit):
                self.by_class.setdefault(cls, kind)
        self.by_aten: dict = {}
        for kind in kinds.values():
            for name in kind.aten_ops:
                self.by_aten.setdefault(name, []).append(kind)
        self.roles = {kind.import_role: kind for kind in kinds.values() if kind.import_role}
        self.values: dict = {}   # id(tensor) -> Value
        self.keep: list = []     # the traced tensors, alive so their ids stay unique
        self.ops: list = []
        self.stack: list = []    # qualified names of the modules running
        self.inside: list = []   # mapped modules entered (their internals are not traced)
        self.problems: list = []
        self.failed_in = None    # where the model raised, if it did
        self.fed = None          # the pathways' subsampling the model was fed (None: one tensor)
        self.framewise: set = set()  # values whose first frame a frame-by-frame function took
        self._causal_reset()
        self.classes = {name: type(m).__name__ for name, m in model.named_modules()}

    # -- bookkeeping --------------------------------------------------------
    def where(self) -> str:
        name = self.stack[-1] if self.stack else ""
        return f"{name} ({self.classes.get(name, '?')})" if name else "the model's forward"

    def problem(self, what: str):
        msg = f"{self.where()}: {what}"
        if msg not in self.problems:
            self.problems.append(msg)

    def value_of(self, t):
        return self.values.get(id(t))

    def poison(self, tensors, like: Value):
        """Carry on past something unmappable (already reported), so that
        every other problem of the model is found in the same run."""
        for t in tensors:
            if self.value_of(t) is None:
                n = len(t.shape)
                layout = like.layout if n == len(like.layout) else (("B",) + ("?",) * (n - 1))[:n]
                self.bind(t, Value(tuple(t.shape), layout, None, unknown=True))

    def bind(self, t, value: Value):
        self.values[id(t)] = value
        self.keep.append(t)
        return value

    def add_op(self, raw, inputs, out_tensor, layout, merge=None, path=None, glue=False):
        same = inputs and tuple(out_tensor.shape) == tuple(inputs[0].shape)
        v = Value(tuple(out_tensor.shape), tuple(layout), frame=any(i.frame for i in inputs),
                  parts=dict(inputs[0].parts) if same else {})
        op = Op(plain(raw) if raw is not None else None, list(inputs), v,
                path if path is not None else (self.stack[-1] if self.stack else ""), merge, glue=glue)
        v.producer = op
        self.ops.append(op)
        self.bind(out_tensor, v)
        return op

    def kind_of(self, module):
        """The kind that reads ``module``: by its class — unless a subclass
        overrides what that class does — or by what it holds."""
        for cls in type(module).__mro__:
            kind = self.by_class.get(cls)
            if kind is not None:
                return None if _overrides(type(module), cls) else kind
        for kind in self.kinds.values():
            if kind.torch_match(module):
                return kind
        return None

    # -- module hooks -----------------------------------------------------------
    def pre_hook(self, name):
        def hook(module, args):
            self.stack.append(name)
            if self.inside:
                self.inside.append(None)
            elif self.kind_of(module) is not None:
                versions = [getattr(a, "_version", None) for a in args]
                self.inside.append((module, versions))
        return hook

    def post_hook(self, name):
        import torch

        def hook(module, args, output):
            try:
                if self.inside:
                    entered = self.inside.pop()
                    if entered and entered[0] is module and not self.inside:
                        same = [i for i, a in enumerate(args) if a is output]
                        if same and not isinstance(output, torch.Tensor):
                            return None  # a list handed back untouched (nn.Identity on pathways)
                        if same and getattr(output, "_version", None) == entered[1][same[0]]:
                            # it handed back its input untouched (identity, dropout, a delay in clip
                            # mode): give its output an identity of its own, unseen by the trace
                            self.inside.append(None)
                            output = output.view_as(output)
                            self.inside.pop()
                            self.layer(module, args, output)
                            return output
                        self.layer(module, args, output)
            finally:
                self.stack.pop()
            return None
        return hook

    def layer(self, module, args, output):
        kind = self.kind_of(module)
        tensors = _flat_tensors(list(args))
        ins = [self.value_of(t) for t in tensors if self.value_of(t) is not None]
        if not ins:
            return  # works on constants only
        outs = _flat_tensors(output)
        if any(v.unknown for v in ins):
            self.poison(outs, ins[0])
            return
        import torch

        item = getattr(kind, "torch_output_item", None)
        if item is not None and isinstance(output, (tuple, list)) and len(output) > item:
            output = output[item]  # a module returning (data, metadata): pytorchvideo's (tokens, thw)
        if len(tensors) != 1 or not isinstance(output, torch.Tensor):
            self.problem(f"a {kind.name} layer that takes {len(tensors)} tensors and returns "
                         f"{type(output).__name__}")
            self.poison(outs, ins[0])
            return
        x = ins[0]
        try:
            raw = kind.torch_fields(module, self.dims, self.norm(x.layout))
            raw = self.causal_input(kind, raw, x)
            call_fields = getattr(kind, "torch_call_fields", None)
            if call_fields is not None:  # what the module is called with besides the data
                raw = {**raw, **call_fields(module, args)}
            layout = self.denorm(kind.torch_output_layout(module, self.norm(x.layout), canonical_layout(self.dims)),
                                 x.layout)
        except ComemError as exc:
            self.problem(str(exc))
            self.poison(outs, x)
            return
        self.add_op(raw, [x], output, layout)

    # -- functional ops -------------------------------------------------------
    def dispatch(self, func, args, kwargs, out):
        import torch
        from torch.utils._pytree import tree_flatten

        if self.inside:
            return
        flat, _ = tree_flatten((args, kwargs))
        tensors = [t for t in flat if isinstance(t, torch.Tensor)]
        ins = [self.value_of(t) for t in tensors if self.value_of(t) is not None]
        if not ins:
            self.constant(func._overloadpacket.__name__, args, kwargs, out, tensors)
            return  # parameters, constants, index arithmetic
        name = func._overloadpacket.__name__
        outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        if not outs:
            return
        result = outs[0]
        x = ins[0]
        if any(v.unknown for v in ins):
            counted = name == "div" and len(args) > 1 and id(args[1]) in self.counts  # a cumulative mean
            if not (name in _VIEWS or name in _MERGES or name in self.by_aten or counted):
                self.problem(self._unmapped(name))
            self.poison(outs, x)
            return
        before = len(self.problems)
        self.classify(name, args, kwargs, ins, x, result)
        if len(self.problems) > before:
            self.poison(outs, x)

    @staticmethod
    def _unmapped(name) -> str:
        what = _CONSTRUCTS.get(name)
        return f"aten.{name} on the data: {what}, which comem does not map" if what else \
            f"aten.{name} on the data is not something comem can map"

    def classify(self, name, args, kwargs, ins, x: Value, result):
        if self.causal_op(name, args, kwargs, ins, x, result):
            return
        if name in _VIEWS:
            self.view(name, args, x, result)
        elif name in ("add", "add_", "mul", "mul_"):
            self.binary(name, args, ins, result)
        elif name == "cat":
            self.cat(args, kwargs, ins, result)
        elif name == "select":
            self.frame_select(args, x, result)
        elif name == "stack":
            self.frame_stack(args, kwargs, ins, result)
        elif name in self.by_aten:
            self.functional(name, args, kwargs, x, result)
        else:
            self.problem(self._unmapped(name))

    # -- a skeleton model's bodies, folded into the batch -----------------------------
    def norm(self, layout) -> tuple:
        """The layout a kind sees: bodies folded into the batch (``BM``) are
        the batch of per-body samples comem's formulas count (``P = V·M``)."""
        if not self.bodies:
            return tuple(layout)
        return tuple("B" if lab in ("BM", "MB") else lab for lab in layout)


    def denorm(self, layout, like) -> tuple:
        fold = next((lab for lab in like if lab in ("BM", "MB")), None) if self.bodies else None
        if fold is None or layout is None:
            return layout
        return tuple(fold if lab == "B" else lab for lab in layout)

    def atoms(self, x: Value):
        """``[(axis, size)]`` of ``x``'s axes with merged labels split, or None."""
        out = []
        for lab, n in zip(x.layout, x.shape):
            if lab == "1":
                continue  # an axis of one added by a reshape: no data axis
            if len(lab) == 1:
                out.append((lab, n))
                continue
            sizes = [x.parts.get(a, 1 if a == "B" else self.bodies if a == "M" else None) for a in lab]
            known = 1
            for s in sizes:
                known *= s if s else 1
            if sizes.count(None) > 1 or (sizes.count(None) == 1 and n % known):
                return None
            out += [(a, s if s else n // known) for a, s in zip(lab, sizes)]
        return out

    def regroup(self, x: Value, new_shape):
        """Layout and merged sizes after a reshape that merges or splits axes
        without reordering them (``(N, M, V, C, T)`` -> ``(N, M·V·C, T)``)."""
        atoms = self.atoms(x)
        if atoms is None:
            return None
        groups, i = [], 0
        for n in new_shape:
            group, prod = [], 1
            if n == 1:
                while i < len(atoms) and atoms[i][1] == 1:  # the batch and one body: one axis
                    group.append(atoms[i])
                    i += 1
            else:
                while i < len(atoms) and prod < n:
                    group.append(atoms[i])
                    prod *= atoms[i][1]
                    i += 1
                if prod != n:
                    return None
            groups.append(group)
        if any(s != 1 for _, s in atoms[i:]):
            return None
        layout = tuple("".join(a for a, _ in g) or "1" for g in groups)
        if len(set(layout)) != len(layout) or any(sum(lab.count(a) for lab in layout) > 1 for a, _ in atoms):
            return None
        parts = dict(x.parts)
        parts.update({a: s for g in groups for a, s in g})
        return layout, parts

    def partial_mean(self, args, kwargs, x: Value, result) -> bool:
        """Means taken one axis group at a time (``x.view(N, M, C, -1)
        .mean(3).mean(1)``: over time and joints, then bodies): once they
        cover time and space, one global average pool."""
        dims = args[1] if len(args) > 1 else kwargs.get("dim")
        keep = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
        dims = [d % len(x.layout) for d in (dims if isinstance(dims, (list, tuple)) else [dims])]
        labels = [x.layout[d] for d in dims]
        new = set("".join(labels)) - {"1"}
        canon = canonical_layout(self.dims)
        target = tuple(a for a in canon if a != "T") if x.frame else canon  # one frame (co.Lambda) or the clip
        full = set(target[2:] if not x.frame else target[2:]) | ({"M"} if self.bodies and self.bodies > 1 else set())
        done = set(x.averaged) | new
        if keep or not new <= full or not done <= full or "C" in new or \
                (not x.averaged and self.norm(x.layout) == target):
            return False
        kept = tuple(lab for i, lab in enumerate(x.layout) if i not in dims)
        rest = tuple(lab for lab in kept if lab != "1")
        if done != full:
            self.bind(result, Value(tuple(result.shape), kept, x.producer, frame=x.frame, parts=x.parts,
                                    averaged=frozenset(done)))
            return True
        call = AtenCall("mean", (None, list(range(2 if not x.frame else 2, len(target)))), {}, target, canon,
                        tuple(x.shape), tuple(result.shape), x.frame)
        for kind in self.by_aten.get("mean", []):
            raw = kind.from_aten(call)
            if raw is not None and call.out_layout == ("B", "C") and self.norm(rest) == ("B", "C"):
                self.add_op(raw, [x], result, self.norm(kept), glue=True)
                return True
        return False

    def functional(self, name, args, kwargs, x: Value, result):
        """A functional call some kind stands for (``F.relu``, ``x.mean``)."""
        if name == "mean" and self.partial_mean(args, kwargs, x, result):
            return
        if x.averaged:
            self.problem(f"aten.{name} on a tensor averaged over {sorted(x.averaged)} only")
            return
        reasons, refusal = [], None
        for kind in self.by_aten[name]:
            call = AtenCall(name, tuple(args), dict(kwargs), self.norm(x.layout), canonical_layout(self.dims),
                            tuple(x.shape), tuple(result.shape), x.frame)
            try:
                raw = kind.from_aten(call)
            except ComemError as exc:
                reasons.append(str(exc))
                continue
            if raw is not None:
                self.add_op(raw, [x], result, self.denorm(call.out_layout, x.layout), glue=True)
                return
            if call.out_layout is not None:  # the same data (every frame selected)
                self.bind(result, Value(tuple(result.shape), self.denorm(call.out_layout, x.layout), x.producer,
                                        frame=x.frame, parts=x.parts))
                return
            refusal = call.refusal or refusal
        if reasons:
            self.problem(reasons[0])
        elif refusal:
            self.problem(refusal)
        else:
            self.problem(self._unmapped(name))

    def view(self, name, args, x: Value, result):
        """Follow a view: a new layout for the same data, or a flatten."""
        new_shape = tuple(result.shape)
        if name == "permute":
            order = [d % len(x.shape) for d in args[1]]
            self.bind(result, Value(new_shape, tuple(x.layout[d] for d in order), x.producer, frame=x.frame,
                                    parts=x.parts))
            return
        if name in ("transpose", "t"):
            d0, d1 = (args[1], args[2]) if name == "transpose" else (0, 1)
            lay = list(x.layout)
            lay[d0], lay[d1] = lay[d1], lay[d0]
            self.bind(result, Value(new_shape, tuple(lay), x.producer, frame=x.frame, parts=x.parts))
            return
        if new_shape == tuple(x.shape):
            self.bind(result, Value(new_shape, x.layout, x.producer, frame=x.frame, parts=x.parts,
                                    averaged=x.averaged))
            return
        found = self.regroup(x, new_shape) if self.bodies else None  # the batch holds the bodies: keep it
        layout, parts = found if found is not None else (self._reshape_layout(x, new_shape), x.parts)
        if layout is None:
            sizes = x.sizes
            tokens = 1
            for lab in canonical_layout(self.dims)[2:]:
                tokens *= sizes.get(lab, 1)
            if "T" in sizes and len(new_shape) == 3 and sizes.get("C") in new_shape and tokens in new_shape \
                    and tokens > sizes.get("T", 1):
                self.problem(f"a reshape {tuple(x.shape)} -> {new_shape} that flattens time and space into tokens "
                             "(a video transformer's patch embedding), which comem does not map")
            else:
                self.problem(f"a reshape {tuple(x.shape)} -> {new_shape} that mixes axes other than the channels "
                             "with a flatten")
            return
        if layout is _FLATTEN:
            flatten = self.roles.get("flatten")
            self.add_op(flatten.from_torch(None, self.dims), [x], result, ("B", "C"), glue=True)
            return
        self.bind(result, Value(new_shape, layout, x.producer, frame=x.frame, parts=parts, averaged=x.averaged))

    def _reshape_layout(self, x: Value, new_shape):
        """Layout after a reshape: squeezes/unsqueezes of size-1 axes keep the
        labels; merging the channels with later axes is a flatten."""
        big_old = [(lab, n) for lab, n in zip(x.layout, x.shape) if n != 1]
        big_new = [n for n in new_shape if n != 1]
        if [n for _, n in big_old] == big_new:
            labels = iter(lab for lab, _ in big_old)
            lay = [next(labels) if n != 1 else None for n in new_shape]
            canon = canonical_layout(self.dims)
            if len(new_shape) == len(canon) and all(lab in (None, c) for lab, c in zip(lay, canon)):
                return canon
            if lay and lay[0] is None:
                lay[0] = "B"
            used = {lab for lab in lay if lab}
            fill = iter(lab for lab in canon if lab not in used)
            return tuple(lab if lab else next(fill, "1") for lab in lay)
        # merging trailing axes from the channels on into one: a flatten
        if len(new_shape) == 2 and new_shape[0] == x.shape[0] and x.layout[:2] == ("B", "C"):
            total = 1
            for n in x.shape[1:]:
                total *= n
            if total == new_shape[1]:
                return _FLATTEN
        return None

    def binary(self, name, args, ins, result):
        import torch

        both = len(ins) == 2 and all(isinstance(a, torch.Tensor) for a in args[:2])
        neutral = 0 if name.startswith("add") else 1
        if len(ins) == 1 and len(args) >= 2 and any(not isinstance(a, torch.Tensor) and a == neutral
                                                    for a in args[:2]) and args[2:3] in ((), (1,)):
            # ``z + 0`` (continual-skeletons' ``zero`` residual), ``x * 1``: the same data
            self.bind(result, Value(tuple(result.shape), ins[0].layout, ins[0].producer, frame=ins[0].frame,
                                    parts=ins[0].parts))
            return
        if not both:
            self.problem(f"aten.{name} with a constant operand (comem follows sums and products of the data)")
            return
        a, b = ins
        merge = "sum" if name.startswith("add") else "mul"
        if merge == "mul" and len(a.shape) == len(b.shape):
            sa, sb = a.sizes, b.sizes
            big, small = (a, b) if sum(sa.values()) >= sum(sb.values()) else (b, a)
            layout = big.layout
        else:
            layout = a.layout if len(a.shape) >= len(b.shape) else b.layout
        self.add_op(None, [a, b], result, layout, merge=merge)

    def cat(self, args, kwargs, ins, result):
        dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
        lay = ins[0].layout
        if lay[dim % len(lay)] != "C":
            self.problem(f"torch.cat along {lay[dim % len(lay)]!r}; comem concatenates channels")
            return
        self.add_op(None, ins, result, lay, merge="concat")

    def frame_select(self, args, x: Value, result):
        """``x[:, :, t]``: a function applied frame by frame (``co.Lambda``)
        is followed on the first frame; the others repeat it."""
        dim = args[1] % len(x.layout)
        if x.layout[dim] != "T" or x.frame:
            self.problem(f"aten.select along {x.layout[dim]!r} (comem follows frame-by-frame functions)")
            return
        if args[2] in (0, -x.shape[dim]) or x.shape[dim] == 1:
            self.framewise.add(id(x))
            self.bind(result, Value(tuple(result.shape), x.layout[:dim] + x.layout[dim + 1:], x.producer,
                                    frame=True, parts=x.parts))
        elif id(x) not in self.framewise:
            # one frame picked out of the clip, not the frames of a frame-by-frame function
            self.problem(f"selects frame {args[2]} of {x.shape[dim]} (x[:, :, {args[2]}], as a single-output "
                         "layer's shortcut picks the token its attention answers for), which comem does not map")
        # other frames stay untraced: what is done to them repeats the first

    def frame_stack(self, args, kwargs, ins, result):
        """``torch.stack(frames, dim=2)``: the frame-by-frame result as a clip."""
        dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
        first = ins[0]
        canon = canonical_layout(self.dims)
        dim = dim % (len(first.layout) + 1)
        layout = first.layout[:dim] + ("T",) + first.layout[dim:]
        canonical = self.norm(layout) == canon[:len(layout)] or (self.bodies and dim == len(layout) - 1)
        if len(ins) != 1 or not first.frame or "T" in first.layout or not canonical:
            self.problem("torch.stack of tensors other than the frames of one clip along time")
            return
        self.bind(result, Value(tuple(result.shape), layout, first.producer, parts=first.parts))

    # -- the run ----------------------------------------------------------------
    def _feed(self, x, factors):
        """The model's input from one clip: the clip, or — for a model of
        pathways — one clip per pathway, every ``f``-th frame
        (``PackPathway``: ``torch.index_select`` of ``T // f`` frames)."""
        import torch

        if factors is None:
            return x
        out = []
        for f in factors:
            if f == 1:
                out.append(x)
            else:
                t = x.shape[2]
                idx = torch.linspace(0, t - 1, t // f).long()
                out.append(torch.index_select(x, 2, idx))
        return out

    def _pathway_candidates(self):
        """Slow/fast pathway feeds to try on a model that refuses one tensor:
        ``[T // α frames, T frames]`` for α = 2, 4, 8 …"""
        if self.pathways is not None:
            return [tuple(self.pathways)]
        t = self.input_shape[1]
        return [(a, 1) for a in range(2, t + 1) if t // a >= 1]

    def run(self):
        import torch
        from torch._subclasses.fake_tensor import FakeTensorMode
        from torch.utils._python_dispatch import TorchDispatchMode

        tracer = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                tracer.dispatch(func, args, kwargs, out)
                return out

        was_training = self.model.training
        self.model.eval()

        def once(make_input, factors):
            handles = []
            for name, module in self.model.named_modules():
                handles.append(module.register_forward_pre_hook(self.pre_hook(name)))
                handles.append(module.register_forward_hook(self.post_hook(name)))
            try:
                x = make_input()
                layout = canonical_layout(self.dims) + (("M",) if self.bodies else ())
                self.input = self.bind(x, Value(tuple(x.shape), layout, parts=dict(zip(layout, x.shape))))
                with torch.no_grad(), _Mode():
                    return self.model(self._feed(x, factors))
            except Exception:
                if self.failed_in is None:
                    self.failed_in = self.where()
                raise
            finally:
                for h in handles:
                    h.remove()

        def attempt(factors):
            try:
                with FakeTensorMode(allow_non_fake_inputs=True) as fake:
                    return once(lambda: fake.from_tensor(torch.empty((1,) + self.input_shape)), factors)
            except Exception as exc:
                if "DataDependent" not in type(exc).__name__:
                    raise
                # a model that reads tensor values (continual-inference's index
                # arithmetic) runs once for real, on zeros
                self.reset()
                return once(lambda: torch.zeros((1,) + self.input_shape), factors)

        try:
            with quiet():
                first = None
                feeds = [self.pathways] if self.pathways is not None else [None]
                out = None
                for i, factors in enumerate(feeds):
                    try:
                        out = attempt(factors)
                        self.fed = factors
                        break
                    except ComemError:
                        raise
                    except Exception as exc:
                        if first is None:
                            first = (exc, self.failed_in)
                        if i == 0 and self.pathways is None:
                            feeds.extend(self._pathway_candidates())
                        self.reset()
                else:
                    exc, where = first
                    msg = " ".join(str(exc).split())[:300]
                    at = f" in {where}" if where and where != "the model's forward" else ""
                    raise ComemError(f"running the model on an input of shape {self.input_shape} failed{at} "
                                     f"({type(exc).__name__}: {msg}); check the input shape (C x T x H x W)")
        finally:
            self.model.train(was_training)
        outs = [t for t in _flat_tensors(out) if self.value_of(t) is not None]
        if not isinstance(out, torch.Tensor):
            if len(outs) != 1:
                raise ComemError(f"the model returns {type(out).__name__} of {len(outs)} tensors computed from its "
                                 "input; comem reads models with one output")
            out = outs[0]
        self.output = self.value_of(out)
        if self.output is not None and self.output.unknown and not self.problems:
            self.problems.extend(self.deferred)  # the output depends on what only a stream keeps
        if self.problems:
            return self  # the caller refuses the model, naming them all
        if self.output is None:
            raise ComemError("the model's output does not depend on its input")
        return self

    def reset(self):
        self.values, self.keep, self.ops, self.stack, self.inside, self.problems = {}, [], [], [], [], []
        self.failed_in, self.framewise = None, set()
        self._causal_reset()

    # -- a causal (MoViNet-style) model run over a whole clip ---------------------------
    # Its stream buffers start empty: a ``torch.cat`` of zeros before the frames
    # is causal temporal padding, read by the layer after it; its cumulative
    # pools (``cumsum`` over time divided by the frame count) are asked of the
    # kinds; the slices that keep a stream's last frames for the next call are
    # state, refused only when the output depends on them.
    def _causal_reset(self):
        self.zeros, self.counts, self.constants = set(), {}, []  # constant zeros / frame counts (kept alive)
        self.tpads: dict = {}     # id(Value) -> frames of zeros concatenated before it in time
        self.running: dict = {}   # id(Value) -> ("sum" | "mean", the Value accumulated over time)
        self.deferred: list = []  # slices a stream keeps for its next call
        self.gains: dict = {}     # id(0-dim parameter) -> its name
        self.scalar_gains: list = []  # learnable scalar gains multiplied onto the data (ReZero's alpha)
        for pname, p in self.model.named_parameters():
            if p.dim() == 0:
                self.gains[id(p)] = pname

    def constant(self, name, args, kwargs, out, tensors):
        """Follow the constants a causal model makes: zeros (an empty stream
        buffer) and ``arange(1, T + 1)`` (the frame count of a cumulative mean)."""
        import torch

        if not isinstance(out, torch.Tensor):
            return
        if name in ("zeros", "new_zeros", "zeros_like"):
            self.zeros.add(id(out))
        elif name == "arange" and len(args) >= 2 and args[0] == 1 and (len(args) < 3 or args[2] == 1):
            self.counts[id(out)] = args[1] - 1
        elif tensors and id(tensors[0]) in self.zeros and tensors[0] is args[0] and name in _VIEWS:
            self.zeros.add(id(out))
        elif tensors and id(tensors[0]) in self.counts and tensors[0] is args[0] and (
                name in _VIEWS or name in ("slice", "expand") or
                (name == "add" and len(args) > 1 and not isinstance(args[1], torch.Tensor) and args[1] == 0)):
            self.counts[id(out)] = self.counts[id(tensors[0])]
        else:
            return
        self.constants.append(out)

    def causal_input(self, kind, raw, x: Value) -> dict:
        """A mapped layer's fields on an input padded in time by zeros."""
        if id(x) in self.running:
            raise ComemError("a cumulative sum over time used as data (comem reads it divided by the frame count)")
        front = self.tpads.get(id(x))
        return raw if front is None else kind.torch_time_pad(raw, front)

    def causal_op(self, name, args, kwargs, ins, x: Value, result) -> bool:
        """The functional ops of a causal model run over a whole clip."""
        import torch

        if name == "slice" and len(args) > 2 and isinstance(args[2], int) and args[2] < 0 and \
                x.layout[args[1] % len(x.layout)] == "T":
            run = self.running.get(id(x))
            if run and run[0] == "mean" and result.shape[args[1]] == 1 and len(x.layout) == 5:
                return self._cumulative_pool(run[1], result)   # the last frame of a cumulative mean
            self.deferred.append(f"{self.where()}: keeps the last {-args[2]} frame(s) of a tensor for the next "
                                 "call (a stream buffer) and computes the output from them")
            self.bind(result, Value(tuple(result.shape), x.layout, None, unknown=True))
            return True
        if any(id(v) in self.tpads for v in ins):
            self.problem(f"aten.{name} on frames padded in time by torch.cat of zeros (comem reads such padding "
                         "only right before a layer that pads, e.g. a convolution)")
            return True
        if name == "constant_pad_nd" and x.layout == canonical_layout(self.dims) and len(x.layout) > 2:
            pad = list(args[1]) + [0] * (2 * (len(x.layout) - 2) - len(args[1]))
            front, back = pad[2 * (len(x.layout) - 3)], pad[2 * (len(x.layout) - 3) + 1]   # F.pad: last axis first
            value = args[2] if len(args) > 2 else 0
            if front > 0 and back == 0 and value == 0 and not any(pad[:2 * (len(x.layout) - 3)]):
                v = self.bind(result, Value(tuple(result.shape), x.layout, x.producer, frame=x.frame, parts=x.parts))
                self.tpads[id(v)] = front   # F.pad(x, (0, 0, 0, 0, k_T - 1, 0)): causal padding
                return True
        if name == "cat":
            tensors = list(args[0])
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0) % len(x.layout)
            traced = [t for t in tensors if self.value_of(t) is not None]
            if x.layout[dim] == "T" and len(traced) == 1 and tensors[-1] is traced[0] and \
                    all(id(t) in self.zeros for t in tensors[:-1]):
                v = self.bind(result, Value(tuple(result.shape), x.layout, x.producer, frame=x.frame, parts=x.parts))
                self.tpads[id(v)] = sum(t.shape[dim] for t in tensors[:-1])
                return True
            run = self.running.get(id(ins[0])) if len(ins) == 2 and len(traced) == 2 else None
            if x.layout[dim] == "C" and run and run[0] == "mean" and run[1] is ins[1]:
                return self._pooled_and_frame(ins[1], result)
        if any(id(v) in self.running for v in ins):
            run = self.running.get(id(x))
            count = self.counts.get(id(args[1])) if name == "div" and len(args) > 1 else None
            if run and run[0] == "sum" and count is not None and count == x.sizes.get("T"):
                v = self.bind(result, Value(tuple(result.shape), x.layout, None, frame=x.frame))
                self.running[id(v)] = ("mean", run[1])
                return True
            self.problem(f"aten.{name} on a cumulative sum over time (comem reads it divided by the frame count "
                         "arange(1, T + 1): a cumulative average)")
            return True
        if name == "cumsum":
            dim = (args[1] if len(args) > 1 else kwargs.get("dim")) % len(x.layout)
            frame = [n for lab, n in x.sizes.items() if lab not in ("B", "C", "T")]
            if x.layout[dim] == "T" and x.layout == canonical_layout(self.dims) and all(n == 1 for n in frame):
                v = self.bind(result, Value(tuple(result.shape), x.layout, None, frame=x.frame))
                self.running[id(v)] = ("sum", x)
                return True
            self.problem(f"aten.cumsum along {x.layout[dim]!r} of a tensor {tuple(x.shape)} (comem reads a "
                         "cumulative sum over time of frames averaged over space)")
            return True
        if name in ("mul", "mul_") and len(ins) == 1 and len(args) >= 2:
            gain = next((a for a in args[:2] if isinstance(a, torch.Tensor) and id(a) in self.gains), None)
            if gain is not None:
                if self.gains[id(gain)] not in self.scalar_gains:
                    self.scalar_gains.append(self.gains[id(gain)])
                self.bind(result, Value(tuple(result.shape), x.layout, x.producer, frame=x.frame, parts=x.parts))
                return True
        return False

    def _cumulative_pool(self, base: Value, result) -> bool:
        """The last frame of a cumulative average over time of frames averaged
        over space: the global average pool of the clip (causal: a running sum)."""
        canon = canonical_layout(self.dims)
        call = AtenCall("mean", (None, list(range(2, len(canon))), True), {}, tuple(base.layout), canon,
                        tuple(base.shape), tuple(result.shape))
        for kind in self.by_aten.get("mean", []):
            try:
                raw = kind.from_aten(call)
            except ComemError:
                continue
            if raw is not None and call.out_layout == canon:
                self.add_op(raw, [base], result, canon, glue=True)
                return True
        self.problem("the last frame of a cumulative average over time, which no layer kind reads as a pool")
        return True

    def _pooled_and_frame(self, base: Value, result) -> bool:
        """``cat((cumulative mean over time, frame), dim=1)`` of frames averaged
        over space: a causal squeeze (MoViNet's se_type 2plus3d), asked of the
        kinds that read ``cumsum``."""
        canon = canonical_layout(self.dims)
        call = AtenCall("cumsum", (None, 2), {"concat": "frame"}, tuple(base.layout), canon, tuple(base.shape),
                        tuple(result.shape))
        for kind in self.by_aten.get("cumsum", []):
            raw = kind.from_aten(call)
            if raw is not None:
                self.add_op(raw, [base], result, call.out_layout or base.layout, glue=True)
                return True
        self.problem("a cumulative average over time concatenated with the frames along channels, which no layer "
                     "kind reads")
        return True
