"""Element-wise activations and other per-element layers: ``relu``,
``swish`` (``x·sigmoid(x)``), ``sigmoid``, ``softmax``, ``dropout``,
``identity``.

All are frame-wise: no parameters, no state, no delay.  Their work is one
operation per element, tagged by the activation so each counting convention
can decide (ptflops counts ReLU-family modules, not Swish/Sigmoid/Softmax;
fvcore counts none of them).
"""
from __future__ import annotations

from .base import LayerKind


class Activation(LayerKind):
    fields = ("inplace",)
    framewise = True

    def __init__(self, name, op, summary, torch_factory):
        self.name = name
        self.op = op
        self.summary = summary
        #: (kit, cfg) -> the regular nn module
        self.torch_factory = torch_factory

    def configure(self, raw, evaluate, c_in):
        return {"c": c_in, "inplace": bool(evaluate("inplace", False))}

    def work(self, cfg, x, y, step, knobs):
        if self.op is None:
            return {}
        return {self.op: x.frame if step else x.numel}

    def library_peak(self, cfg, x, y, knobs):
        """Swish ``x·sigmoid(x)`` holds the sigmoid and the product (2 maps);
        dropout and identity return their input at inference (0); others
        allocate their output (nothing when in place)."""
        if self.op is None:
            return 0
        if self.op == "swish":
            return 2 * y.frame
        return 0 if cfg.get("inplace") else y.frame

    def torch_module(self, cfg, x, kit, continual, knobs):
        m = self.torch_factory(kit, cfg)
        return kit.framewise(m) if continual else m

    def torch_work(self, m, inp, out):
        return {self.op: out.numel()} if self.op else {}


RELU = Activation("relu", "relu", "ReLU, element-wise", lambda kit, cfg: kit.nn.ReLU(inplace=cfg["inplace"]))
SWISH = Activation("swish", "swish", "Swish x·sigmoid(x), element-wise", lambda kit, cfg: kit.Swish())
SIGMOID = Activation("sigmoid", "sigmoid", "sigmoid, element-wise", lambda kit, cfg: kit.nn.Sigmoid())
SOFTMAX = Activation("softmax", "softmax", "softmax over classes", lambda kit, cfg: kit.nn.Softmax(dim=1))
DROPOUT = Activation("dropout", None, "dropout (identity at inference)", lambda kit, cfg: kit.nn.Dropout(0.5))
IDENTITY = Activation("identity", None, "identity", lambda kit, cfg: kit.nn.Identity())
