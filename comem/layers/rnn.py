"""``rnn``, ``gru``, ``lstm`` — recurrent layers over the frames of a 1D
model (``co.RNN``/``co.GRU``/``co.LSTM``, ``nn.RNN``/``nn.GRU``/``nn.LSTM``;
unidirectional, ``batch_first``; continual-inference feeds them ``(N, C, T)``).

Spec fields: ``hidden`` (``H``, required), ``layers`` (``L``, default 1),
``bias`` (default true).  ``G`` gates: 1 (RNN), 3 (GRU), 4 (LSTM); ``I`` the
input channels.

* params = ``G·H·(I + H) + (L−1)·G·H·(2H) + b·L·2·G·H``
* MACs per frame = ``G·H·(I+H) + (L−1)·G·H·2H`` (``rnn_mac``), biases
  ``b·L·2GH`` (``rnn_bias``), and the gate arithmetic ptflops adds per layer
  (``rnn_gate``: ``H`` for an RNN, ``7H`` GRU, ``10H`` LSTM —
  ``ptflops.pytorch_ops.rnn_flops``); a clip is ``T`` frames
* state (``get_state()``): the hidden state ``L·H`` (RNN, GRU) and the LSTM
  cell state ``L·H`` more: ``L·H`` or ``2·L·H``
* no delay; the receptive field is unbounded (every past frame reaches the
  state), reported as one frame as the library's ``receptive_field`` does
* ptflops hooks ``nn.RNN``/``nn.GRU``/``nn.LSTM`` by exact type: the
  continual-inference subclasses are not hooked (ptflops counts them 0)
"""
from __future__ import annotations

from comem.core import shim
from comem.errors import ComemError
from comem.layers.base import BatchAxis, LayerKind, StateTensor
from comem.layers.conv import positive

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
#: ptflops' element-wise gate arithmetic per hidden unit and layer
GATE_OPS = {"rnn": 1, "gru": 7, "lstm": 10}
STATES = {"rnn": 1, "gru": 1, "lstm": 2}


class Recurrent(LayerKind):
    fields = ("hidden", "layers", "bias")
    required = ("hidden",)
    op_weights = {
        "rnn_mac": {"ptflops": 1, "macs": 1, "flops": 2, "fvcore": 1, "executed": 1},
        "rnn_bias": {"ptflops": 1, "macs": 0, "flops": 1, "fvcore": 0, "executed": 1},
        "rnn_gate": {"ptflops": 1, "macs": 0, "flops": 0, "fvcore": 0, "executed": 0},
    }

    def __init__(self, name):
        self.name = name
        self.summary = {"rnn": "Elman RNN", "gru": "GRU", "lstm": "LSTM"}[name] + \
            " over frames (state: hidden" + (" and cell" if name == "lstm" else "") + " per layer)"
        self.state_formulas = "2 * L * H_h" if STATES[name] == 2 else "L * H_h"

    def configure(self, raw, evaluate, c_in, dims=3):
        if dims != 1:
            raise ComemError(f"{self.name} runs over the frames of a 1D model (dims = 1, input C x T)")
        bias = evaluate("bias", True)
        if not isinstance(bias, bool):
            raise ComemError(f"{self.name} 'bias' must be true or false, got {bias!r}")
        return {"c_in": c_in, "hidden": positive(evaluate("hidden", None), f"{self.name} 'hidden'"),
                "layers": positive(evaluate("layers", 1), f"{self.name} 'layers'"), "bias": bias, "dims": dims}

    def out_channels(self, cfg, c_in):
        return cfg["hidden"]

    def output(self, cfg, x, env=None):
        return x.with_(c=cfg["hidden"])

    def macs_per_frame(self, cfg):
        G, H, L = GATES[self.name], cfg["hidden"], cfg["layers"]
        return G * H * (cfg["c_in"] + H) + (L - 1) * G * H * 2 * H

    def params(self, cfg, x):
        G, H, L = GATES[self.name], cfg["hidden"], cfg["layers"]
        return self.macs_per_frame(cfg) + (L * 2 * G * H if cfg["bias"] else 0)

    def torch_tensors(self, cfg, x, continual=False):
        G, H, L = GATES[self.name], cfg["hidden"], cfg["layers"]
        out = []
        for i in range(L):
            out += [(G * H * (cfg["c_in"] if i == 0 else H), False), (G * H * H, False)]
            if cfg["bias"]:
                out += [(G * H, False), (G * H, False)]
        return out

    def work(self, cfg, x, y, step, knobs):
        frames = 1 if step else x.t
        G, H, L = GATES[self.name], cfg["hidden"], cfg["layers"]
        work = {"rnn_mac": frames * self.macs_per_frame(cfg), "rnn_gate": frames * L * GATE_OPS[self.name] * H}
        if cfg["bias"]:
            work["rnn_bias"] = frames * L * 2 * G * H
        return work

    def symbols(self, cfg, x, y, knobs):
        return {"L": cfg["layers"], "H_h": cfg["hidden"]}

    def state_tensors(self, cfg, x, y, knobs):
        """The hidden state ``h`` ``(L, B, H)`` (zeros) and, for an LSTM, the
        cell state ``c``: what ``co.RNN``/``co.GRU``/``co.LSTM`` keep."""
        shape = (cfg["layers"], BatchAxis(x.h * x.w), cfg["hidden"])
        out = [StateTensor("h", "hidden", shape)]
        return out + ([StateTensor("c", "hidden", shape)] if STATES[self.name] == 2 else [])

    def library_peak(self, cfg, x, y, knobs):
        """What one step allocates at its peak in eager PyTorch 2.13 on the
        CPU (``co.*.forward_step`` runs the ``nn`` module on one frame):
        RNN — each layer's ``tanh`` output, the output and the stacked
        ``h_n``: ``2LH + H``; GRU — the two gate projections (``6H``), the
        update, one difference per layer and, from two layers on, the
        stacked layer outputs: ``7H + LH (+ H)``; LSTM (oneDNN's
        ``mkldnn_rnn_layer``) — per layer its output, ``h`` and ``c``, the
        output and the stacked ``h_n``, ``c_n``: ``(4L + 1)H``.  (cuDNN
        allocates otherwise.)"""
        H, L = cfg["hidden"], cfg["layers"]
        if self.name == "rnn":
            return 2 * L * H + H
        if self.name == "gru":
            multi = 0 if (shim.is_concrete(L) and L == 1) else H
            return 7 * H + L * H + multi
        return (4 * L + 1) * H

    def op_class(self, cfg, x, y):
        return "linear"

    def op_calls(self, cfg, step):
        """One recurrent module call per layer (its frames loop inside the kernel)."""
        return cfg["layers"]

    def torch_module(self, cfg, x, kit, continual, knobs):
        cls = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}[self.name]
        if continual:
            return getattr(kit.co, cls)(cfg["c_in"], cfg["hidden"], num_layers=cfg["layers"], bias=cfg["bias"])
        return kit.ChannelsFirstRecurrent(getattr(kit.nn, cls)(cfg["c_in"], cfg["hidden"], num_layers=cfg["layers"],
                                                              bias=cfg["bias"], batch_first=True))

    def torch_types(self, kit):
        cls = {"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}[self.name]
        return (getattr(kit.co, cls),)

    def torch_hooked(self, module):
        return [getattr(module, "rnn", module)]  # the regular kit module wraps the nn module

    def torch_work(self, m, inp, out):
        """ptflops' arithmetic (``rnn_flops``) from the module's real weights
        and input: ``(N, C)`` a step, ``(N, C, T)`` a continual forward,
        ``(N, T, C)`` a batch-first ``nn`` module."""
        x = inp[0] if isinstance(inp, tuple) else inp
        if x.dim() == 2:
            frames = 1
        else:
            frames = x.shape[2] if type(m).__module__.startswith("continual") else x.shape[1]
        n, H, L = x.shape[0], m.hidden_size, m.num_layers
        macs = sum(getattr(m, f"weight_ih_l{i}").numel() + getattr(m, f"weight_hh_l{i}").numel() for i in range(L))
        w = {"rnn_mac": macs * n * frames, "rnn_gate": L * GATE_OPS[self.name] * H * n * frames}
        if m.bias:
            w["rnn_bias"] = sum(getattr(m, f"bias_ih_l{i}").numel() + getattr(m, f"bias_hh_l{i}").numel()
                                for i in range(L)) * n * frames
        return w

    def from_torch(self, m, dims):
        if getattr(m, "bidirectional", False):
            raise ComemError(f"a bidirectional {type(m).__name__} reads the future: it has no continual form")
        raw = {"kind": self.name, "hidden": m.hidden_size}
        if m.num_layers != 1:
            raw["layers"] = m.num_layers
        if not m.bias:
            raw["bias"] = False
        return raw


RNN = Recurrent("rnn")
GRU = Recurrent("gru")
LSTM = Recurrent("lstm")
