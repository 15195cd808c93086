"""Trace a regular ``torch.nn`` model into a dataflow graph of comem layers.

The model runs once on a fake input (``FakeTensorMode``: shapes only, no
arithmetic, so a large model traces in a second).  Two instruments watch it:

* forward hooks on every module: a module whose class a layer kind reads
  (``LayerKind.torch_types``) becomes one layer op, and what it does inside
  is not looked at;
* a ``TorchDispatchMode``: every aten op that runs outside such a module
  and touches the data — the functional glue of real video code — is
  classified: residual ``+``, gating ``*``, ``torch.cat`` of pathways, means,
  functional activations and pools, reshapes and permutes (followed as
  changes of layout), temporal slicing.

Each tensor carries a *layout*: which of its axes is the batch, the
channels, time, height, width (or the joints of a 2D model), so that a
channels-last ``nn.Linear`` is read as a projection over channels and a
``flatten`` of a 1×1×1 map as a squeeze.  Anything that cannot be mapped is
collected with the qualified name of the module it ran in; the import then
fails with one line listing them all.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from comem.errors import ComemError


@dataclass(eq=False)
class Value:
    """A tensor of the dataflow: its shape (batch included) and layout."""
    shape: tuple
    layout: tuple
    producer: "Op | None" = None
    unknown: bool = False  # made by something comem could not map (already reported)
    frame: bool = False    # one frame of a clip (``x[:, :, t]``, as ``co.Lambda`` does): no T axis

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

    @property
    def is_merge(self) -> bool:
        return self.merge is not None and not self.branches


# aten ops that only look at the data differently (views and copies)
_VIEWS = {"view", "_unsafe_view", "reshape", "_reshape_alias", "expand", "contiguous", "clone", "alias", "detach",
          "permute", "transpose", "t", "squeeze", "unsqueeze", "flatten", "lift_fresh", "lift_fresh_copy",
          "dropout", "feature_dropout", "alpha_dropout", "_to_copy", "to"}
# functional activations -> layer kinds
_ACTIVATIONS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid", "tanh": "tanh",
                "gelu": "gelu", "silu": "silu", "silu_": "silu", "hardswish": "hardswish",
                "hardswish_": "hardswish", "hardsigmoid": "hardsigmoid", "leaky_relu": "leaky_relu",
                "leaky_relu_": "leaky_relu", "elu": "elu", "elu_": "elu", "hardtanh": "relu6",
                "hardtanh_": "relu6", "_softmax": "softmax", "softmax": "softmax"}
_POOL_OPS = {"avg_pool1d": ("avgpool", 1), "avg_pool2d": ("avgpool", 2), "avg_pool3d": ("avgpool", 3),
             "max_pool1d": ("maxpool", 1), "max_pool2d": ("maxpool", 2), "max_pool3d": ("maxpool", 3),
             "max_pool2d_with_indices": ("maxpool", 2), "max_pool3d_with_indices": ("maxpool", 3),
             "_adaptive_avg_pool2d": ("avgpool", 2), "_adaptive_avg_pool3d": ("avgpool", 3),
             "adaptive_avg_pool1d": ("avgpool", 1), "adaptive_avg_pool2d": ("avgpool", 2),
             "adaptive_avg_pool3d": ("avgpool", 3), "adaptive_max_pool2d": ("maxpool", 2),
             "adaptive_max_pool3d": ("maxpool", 3)}


def _mappable(name: str) -> bool:
    """Whether some use of aten op ``name`` on the data is something comem reads."""
    return (name in _VIEWS or name in _ACTIVATIONS or name in _POOL_OPS
            or name in ("add", "add_", "mul", "mul_", "cat", "mean", "index_select", "slice", "select", "stack"))


def canonical_layout(dims: int) -> tuple:
    return ("B", "C", "T", "H", "W")[:2 + dims] if dims != 2 else ("B", "C", "T", "V")


class Tracer:
    """Run ``model`` on a fake ``(1, *input_shape)`` input and record ops."""

    def __init__(self, model, input_shape: tuple, kinds: dict, kit, by_class=None):
        self.model = model
        self.input_shape = tuple(input_shape)
        self.dims = len(self.input_shape) - 1
        self.kit = kit
        self.by_class = by_class if by_class is not None else {}
        for kind in kinds.values():
            for cls in kind.torch_types(kit):
                self.by_class.setdefault(cls, kind)
        self.values: dict = {}   # id(tensor) -> Value
        self.keep: list = []     # the traced tensors, alive so their ids stay unique
        self.ops: list = []
        self.stack: list = []    # qualified names of the modules running
        self.inside: list = []   # mapped modules entered (their internals are not traced)
        self.problems: list = []
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

    def add_op(self, raw, inputs, out_tensor, layout, merge=None, path=None):
        v = Value(tuple(out_tensor.shape), tuple(layout), frame=any(i.frame for i in inputs))
        op = Op(raw, list(inputs), v, path if path is not None else (self.stack[-1] if self.stack else ""), merge)
        v.producer = op
        self.ops.append(op)
        self.bind(out_tensor, v)
        return op

    def kind_of(self, module):
        for cls in type(module).__mro__:
            kind = self.by_class.get(cls)
            if kind is not None:
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
        def hook(module, args, output):
            try:
                if self.inside:
                    entered = self.inside.pop()
                    if entered and entered[0] is module and not self.inside:
                        same = [i for i, a in enumerate(args) if a is output]
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
        import torch

        kind = self.kind_of(module)
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        ins = [self.value_of(t) for t in tensors if self.value_of(t) is not None]
        if not ins:
            return  # works on constants only
        outs = [output] if isinstance(output, torch.Tensor) else [o for o in output if isinstance(o, torch.Tensor)] \
            if isinstance(output, (list, tuple)) else []
        if any(v.unknown for v in ins):
            self.poison(outs, ins[0])
            return
        if len(tensors) != 1 or not isinstance(output, torch.Tensor):
            self.problem(f"takes {len(tensors)} tensors")
            self.poison(outs, ins[0])
            return
        x = ins[0]
        try:
            raw = kind.from_torch(module, self.dims)
        except ComemError as exc:
            self.problem(str(exc))
            self.poison(outs, x)
            return
        layout = self.layer_layout(kind.name, x, module, output)
        if layout is not None:
            self.add_op(raw, [x], output, layout)
        else:
            self.poison(outs, x)

    def layer_layout(self, kind, x: Value, module, output):
        """The output layout of a layer, checking the input's."""
        canon = canonical_layout(self.dims)
        channels_last = x.layout[-1] == "C"
        if kind == "linear" and getattr(module, "channel_dim", None) is not None:  # co.Linear(channel_dim=...)
            if x.layout[module.channel_dim] != "C":
                self.problem(f"co.Linear over axis {module.channel_dim}, which is not the channels")
                return None
            return x.layout
        if kind in ("linear", "layernorm"):
            if not channels_last:
                self.problem(f"over the last axis, which is {x.layout[-1]!r}, not the "
                             "channels")
                return None
            return x.layout
        if kind == "flatten":
            return ("B", "C")
        if kind in ("conv", "avgpool", "maxpool", "groupnorm", "instancenorm"):
            if x.layout != canon:
                self.problem(f"on a tensor laid out {x.layout}; comem follows "
                             f"{canon} here")
                return None
            return canon
        if kind == "batchnorm" and (len(x.layout) < 2 or x.layout[1] != "C"):
            self.problem(f"over axis 1, which is {x.layout[1]!r}, not the channels")
            return None
        if kind == "softmax":
            dim = module.dim if module.dim is not None else -1
            if x.layout[dim] != "C":
                self.problem(f"Softmax over {x.layout[dim]!r}, not the channels")
                return None
        return x.layout

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
            return  # parameters, constants, index arithmetic
        name = func._overloadpacket.__name__
        outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        if not outs:
            return
        result = outs[0]
        x = ins[0]
        if any(v.unknown for v in ins):
            if not _mappable(name):
                self.problem(f"aten.{name} on the data is not something comem can map")
            self.poison(outs, x)
            return
        before = len(self.problems)
        self.classify(func, name, args, kwargs, ins, x, result)
        if len(self.problems) > before:
            self.poison(outs, x)

    def classify(self, func, name, args, kwargs, ins, x: Value, result):
        if name in _VIEWS:
            self.view(name, func, args, x, result)
        elif name in ("add", "add_", "mul", "mul_"):
            self.binary(name, args, ins, result)
        elif name == "cat":
            self.cat(args, kwargs, ins, result)
        elif name in _ACTIVATIONS:
            kind = _ACTIVATIONS[name]
            if kind == "relu6" and tuple(args[1:3]) not in ((0.0, 6.0), (0, 6)):
                self.problem(f"hardtanh{tuple(args[1:3])} is not ReLU6")
                return
            if kind == "softmax" and x.layout[args[1]] != "C":
                self.problem(f"softmax over {x.layout[args[1]]!r}, not the channels")
                return
            self.add_op({"kind": kind, "functional": True}, [x], result, x.layout)
        elif name == "mean":
            self.mean(args, kwargs, x, result)
        elif name in _POOL_OPS:
            self.pool(name, args, x, result)
        elif name in ("index_select", "slice"):
            self.temporal_select(name, args, x, result)
        elif name == "select":
            self.frame_select(args, x, result)
        elif name == "stack":
            self.frame_stack(args, kwargs, ins, result)
        else:
            self.problem(f"aten.{name} on the data is not something comem can map")

    def view(self, name, func, args, x: Value, result):
        """Follow a view: a new layout for the same data, or a flatten."""
        new_shape = tuple(result.shape)
        if name == "permute":
            order = [d % len(x.shape) for d in args[1]]
            self.bind(result, Value(new_shape, tuple(x.layout[d] for d in order), x.producer, frame=x.frame))
            return
        if name in ("transpose", "t"):
            d0, d1 = (args[1], args[2]) if name == "transpose" else (0, 1)
            lay = list(x.layout)
            lay[d0], lay[d1] = lay[d1], lay[d0]
            self.bind(result, Value(new_shape, tuple(lay), x.producer, frame=x.frame))
            return
        if new_shape == tuple(x.shape):
            self.bind(result, Value(new_shape, x.layout, x.producer, frame=x.frame))
            return
        layout = self._reshape_layout(x, new_shape)
        if layout is None:
            self.problem(f"a reshape {tuple(x.shape)} -> {new_shape} that mixes axes other than the channels with "
                         "a flatten")
            return
        if layout == "flatten":
            self.add_op({"kind": "flatten"}, [x], result, ("B", "C"))
            return
        self.bind(result, Value(new_shape, layout, x.producer, frame=x.frame))

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
                return "flatten"
        return None

    def binary(self, name, args, ins, result):
        import torch

        both = len(ins) == 2 and all(isinstance(a, torch.Tensor) for a in args[:2])
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

    def mean(self, args, kwargs, x: Value, result):
        dims = args[1] if len(args) > 1 else kwargs.get("dim")
        keep = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
        axes = {x.layout[d % len(x.layout)] for d in (dims if isinstance(dims, (list, tuple)) else [dims])}
        canon = canonical_layout(self.dims)
        if x.frame and x.layout == tuple(a for a in canon if a != "T") and axes == set(canon[3:]) and axes:
            self.add_op({"kind": "mean", "functional": True}, [x], result,
                        x.layout if keep else ("B", "C"))   # a spatial mean of each frame
            return
        if x.layout != canon:
            self.problem(f"a mean over {sorted(axes)} of a tensor laid out {x.layout}")
            return
        time_space, space = set(canon[2:]), set(canon[3:])
        if axes == time_space:
            raw = {"kind": "avgpool", "global": True, "adaptive": True, "functional": True}
        elif axes == space and space:
            raw = {"kind": "mean", "functional": True}
        else:
            self.problem(f"a mean over {sorted(axes)} (comem reads means over time and space, or space)")
            return
        layout = canon if keep else ("B", "C") if axes == time_space else ("B", "C", "T")
        self.add_op(raw, [x], result, layout)

    def pool(self, name, args, x: Value, result):
        kind, d = _POOL_OPS[name]
        if d != self.dims or x.layout != canonical_layout(self.dims):
            self.problem(f"a functional {name} on a tensor laid out {x.layout}")
            return
        if "adaptive" in name:
            size = args[1] if isinstance(args[1], (list, tuple)) else [args[1]]
            if any(s != 1 for s in size):
                self.problem(f"{name} to {tuple(size)}: comem reads adaptive pools to 1")
                return
            raw = {"kind": kind, "global": True, "adaptive": True, "functional": True}
        else:
            k = list(args[1]) if isinstance(args[1], (list, tuple)) else [args[1]] * d
            s = list(args[2]) if len(args) > 2 and args[2] else k
            p = list(args[3]) if len(args) > 3 else [0] * d
            raw = {"kind": kind, "kernel": k, "stride": s}
            if any(p):
                raw["padding"] = p
            raw["functional"] = True
        self.add_op(raw, [x], result, x.layout)

    def frame_select(self, args, x: Value, result):
        """``x[:, :, t]``: a function applied frame by frame (``co.Lambda``)
        is followed on the first frame; the others repeat it."""
        dim = args[1] % len(x.layout)
        if x.layout[dim] != "T" or x.frame:
            self.problem(f"aten.select along {x.layout[dim]!r} (comem follows frame-by-frame functions)")
            return
        if args[2] in (0, -x.shape[dim]) or x.shape[dim] == 1:
            self.bind(result, Value(tuple(result.shape), x.layout[:dim] + x.layout[dim + 1:], x.producer,
                                    frame=True))
        # other frames stay untraced: what is done to them repeats the first

    def frame_stack(self, args, kwargs, ins, result):
        """``torch.stack(frames, dim=2)``: the frame-by-frame result as a clip."""
        dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
        first = ins[0]
        canon = canonical_layout(self.dims)
        dim = dim % (len(first.layout) + 1)
        layout = first.layout[:dim] + ("T",) + first.layout[dim:]
        if len(ins) != 1 or not first.frame or "T" in first.layout or layout != canon[:len(layout)]:
            self.problem("torch.stack of tensors other than the frames of one clip along time")
            return
        self.bind(result, Value(tuple(result.shape), layout, first.producer))

    def temporal_select(self, name, args, x: Value, result):
        dim = args[1] % len(x.layout)
        if x.layout[dim] != "T":
            self.problem(f"aten.{name} along {x.layout[dim]!r} (comem follows frame subsampling)")
            return
        t_in, t_out = x.shape[dim], result.shape[dim]
        if name == "slice":
            start, step = (args[2] or 0), (args[4] if len(args) > 4 else 1)
            if start != 0 or t_in % step:
                self.problem(f"a slice of frames {args[2]}:{args[3]}:{step} of {t_in}")
                return
            factor = step
        else:
            factor = t_in // t_out if t_out else 0
        if factor < 1 or t_in // factor != t_out:
            self.problem(f"a selection of {t_out} of {t_in} frames that is not every n-th")
            return
        if factor == 1:
            self.bind(result, Value(tuple(result.shape), x.layout, x.producer))
            return
        self.add_op({"kind": "temporal_subsample", "factor": factor}, [x], result, x.layout)

    # -- the run ----------------------------------------------------------------
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

        handles = []
        for name, module in self.model.named_modules():
            handles.append(module.register_forward_pre_hook(self.pre_hook(name)))
            handles.append(module.register_forward_hook(self.post_hook(name)))
        was_training = self.model.training
        self.model.eval()

        def once(make_input):
            x = make_input()
            self.input = self.bind(x, Value(tuple(x.shape), canonical_layout(self.dims)))
            with torch.no_grad(), _Mode():
                return self.model(x)

        try:
            try:
                with FakeTensorMode(allow_non_fake_inputs=True) as fake:
                    out = once(lambda: fake.from_tensor(torch.empty((1,) + self.input_shape)))
            except Exception as exc:
                if "DataDependent" not in type(exc).__name__:
                    raise
                # a model that reads tensor values (continual-inference's index
                # arithmetic) runs once for real, on zeros
                self.__init__(self.model, self.input_shape, {}, self.kit, self.by_class)
                out = once(lambda: torch.zeros((1,) + self.input_shape))
        except ComemError:
            raise
        except Exception as exc:  # the user's model refused the input
            msg = " ".join(str(exc).split())[:300]
            raise ComemError(f"running the model on an input of shape {self.input_shape} failed "
                             f"({type(exc).__name__}: {msg}); check --input (C x T x H x W)") from None
        finally:
            for h in handles:
                h.remove()
            self.model.train(was_training)
        if not isinstance(out, torch.Tensor):
            raise ComemError(f"the model returns {type(out).__name__}; comem reads models that return one tensor")
        self.output = self.value_of(out)
        if self.problems:
            return self  # the caller refuses the model, naming them all
        if self.output is None:
            raise ComemError("the model's output does not depend on its input")
        return self
