"""Element-wise activations and other per-element layers: ``relu``,
``relu6``, ``leaky_relu``, ``elu``, ``gelu``, ``swish`` (``x·sigmoid(x)``
written out, as X3D does), ``silu`` (PyTorch's fused Swish), ``hardswish``,
``sigmoid``, ``hardsigmoid``, ``tanh``, ``softmax``, ``dropout``,
``identity``.

All are frame-wise: no parameters, no state, no delay.  Their work is one
operation per element, tagged by the activation so each counting convention
can decide (ptflops hooks ReLU, ReLU6, LeakyReLU, ELU and GELU modules, not
Swish/SiLU/Hardswish/Sigmoid/Tanh/Softmax; fvcore counts none of them).
"""
from __future__ import annotations

from comem.core import shim
from comem.errors import ComemError
from comem.layers.base import LayerKind


#: activations whose elements cost an exp, erf or tanh (the latency model's ``transcendental`` class)
TRANSCENDENTAL = ("swish", "silu", "gelu", "elu", "sigmoid", "tanh", "softmax")


class Activation(LayerKind):
    fields = ("inplace",)
    framewise = True

    def __init__(self, name, op, summary, torch_factory):
        self.name = name
        self.op = op
        self.summary = summary
        #: (kit, cfg) -> the regular nn module
        self.torch_factory = torch_factory

    def configure(self, raw, evaluate, c_in, dims=3):
        return {"c": c_in, "inplace": bool(shim.structural(evaluate("inplace", False))), "dims": dims}

    def work(self, cfg, x, y, step, knobs):
        if self.op is None:
            return {}
        return {self.op: x.frame if step else x.numel}

    def op_class(self, cfg, x, y):
        """``transcendental`` for activations built on exp/erf/tanh (Swish,
        SiLU, GELU, ELU, sigmoid, tanh, softmax), ``activation`` for the
        piecewise-linear ones, ``none`` for dropout and identity."""
        if not self.op:
            return "none"
        return "transcendental" if self.name in TRANSCENDENTAL else "activation"

    def library_peak(self, cfg, x, y, knobs):
        """Swish written out, ``x·sigmoid(x)``, holds the sigmoid and the
        product (2 maps); dropout and identity return their input at
        inference (0); others allocate their output (nothing when in place)."""
        if self.op is None:
            return 0
        if self.name == "swish":
            return 2 * y.frame
        return 0 if cfg.get("inplace") else y.frame

    def torch_module(self, cfg, x, kit, continual, knobs):
        m = self.torch_factory(kit, cfg)
        return kit.framewise(m) if continual else m

    def torch_types(self, kit):
        nn = kit.nn
        return {"relu": (nn.ReLU,), "relu6": (nn.ReLU6,), "leaky_relu": (nn.LeakyReLU,), "elu": (nn.ELU,),
                "gelu": (nn.GELU,), "silu": (nn.SiLU,), "hardswish": (nn.Hardswish,), "sigmoid": (nn.Sigmoid,),
                "hardsigmoid": (nn.Hardsigmoid,), "tanh": (nn.Tanh,), "softmax": (nn.Softmax,),
                "dropout": (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout),
                "identity": (nn.Identity,)}.get(self.name, ())

    def from_torch(self, m, dims):
        raw = {"kind": self.name}
        if getattr(m, "inplace", False):
            raw["inplace"] = True
        if self.name == "softmax" and m.dim not in (1, -1, None):
            raise ComemError(f"Softmax over dim {m.dim}: comem reads a softmax over the classes (channels)")
        return raw

    def torch_work(self, m, inp, out):
        return {self.op: out.numel()} if self.op else {}

    @property
    def aten_ops(self):
        """The functional calls on the data this activation stands for."""
        return _ATEN.get(self.name, ())

    def from_aten(self, call):
        if self.name == "relu6" and tuple(call.args[1:3]) not in ((0.0, 6.0), (0, 6)):
            raise ComemError(f"hardtanh{tuple(call.args[1:3])} is not ReLU6")
        if self.name == "softmax" and call.layout[call.arg(1, "dim")] != "C":
            raise ComemError(f"softmax over {call.layout[call.arg(1, 'dim')]!r}, not the channels")
        call.out_layout = call.layout
        return {"kind": self.name, "functional": True}

    def torch_output_layout(self, module, layout, canon):
        if self.name == "softmax":
            d = module.dim if module.dim is not None else -1
            if layout[d] != "C":
                raise ComemError(f"Softmax over {layout[d]!r}, not the channels")
        return tuple(layout)


_ATEN = {"relu": ("relu", "relu_"), "sigmoid": ("sigmoid", "sigmoid_"), "tanh": ("tanh", "tanh_"), "gelu": ("gelu",),
         "silu": ("silu", "silu_"), "hardswish": ("hardswish", "hardswish_"),
         "hardsigmoid": ("hardsigmoid", "hardsigmoid_"), "leaky_relu": ("leaky_relu", "leaky_relu_"),
         "elu": ("elu", "elu_"), "relu6": ("hardtanh", "hardtanh_"), "softmax": ("_softmax", "softmax")}


RELU = Activation("relu", "relu", "ReLU, element-wise", lambda kit, cfg: kit.nn.ReLU(inplace=cfg["inplace"]))
RELU6 = Activation("relu6", "relu6", "ReLU6, element-wise", lambda kit, cfg: kit.nn.ReLU6(inplace=cfg["inplace"]))
LEAKY_RELU = Activation("leaky_relu", "leaky_relu", "leaky ReLU, element-wise",
                        lambda kit, cfg: kit.nn.LeakyReLU(inplace=cfg["inplace"]))
ELU = Activation("elu", "elu", "ELU, element-wise", lambda kit, cfg: kit.nn.ELU(inplace=cfg["inplace"]))
GELU = Activation("gelu", "gelu", "GELU, element-wise", lambda kit, cfg: kit.nn.GELU())
SWISH = Activation("swish", "swish", "Swish x·sigmoid(x) written out (X3D), element-wise", lambda kit, cfg: kit.Swish())
SILU = Activation("silu", "swish", "SiLU, PyTorch's fused Swish, element-wise",
                  lambda kit, cfg: kit.nn.SiLU(inplace=cfg["inplace"]))
HARDSWISH = Activation("hardswish", "hardswish", "Hardswish, element-wise",
                       lambda kit, cfg: kit.nn.Hardswish(inplace=cfg["inplace"]))
HARDSIGMOID = Activation("hardsigmoid", "hardsigmoid", "Hardsigmoid, element-wise",
                         lambda kit, cfg: kit.nn.Hardsigmoid(inplace=cfg["inplace"]))
TANH = Activation("tanh", "tanh", "tanh, element-wise", lambda kit, cfg: kit.nn.Tanh())
SIGMOID = Activation("sigmoid", "sigmoid", "sigmoid, element-wise", lambda kit, cfg: kit.nn.Sigmoid())
SOFTMAX = Activation("softmax", "softmax", "softmax over classes", lambda kit, cfg: kit.nn.Softmax(dim=1))
#: X3D's ``x * sigmoid(x)`` written out
SWISH.self_gate_of = SIGMOID.name
DROPOUT = Activation("dropout", None, "dropout (identity at inference)", lambda kit, cfg: kit.nn.Dropout(0.5))
IDENTITY = Activation("identity", None, "identity", lambda kit, cfg: kit.nn.Identity())
DROPOUT.passthrough = IDENTITY.passthrough = True
