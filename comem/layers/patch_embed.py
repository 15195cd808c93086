"""``patch_embed`` — a video transformer's patch embedding (pytorchvideo's
``PatchEmbed``: a ``Conv3d`` over the clip, then
``x.flatten(2).transpose(1, 2)``): the clip becomes a sequence of tokens.

Spec fields: ``out`` (the embedding width ``D``), ``kernel``, ``stride``,
``padding`` (``[T, H, W]``), ``bias`` (default true).

Tokens are laid out as shapes ``(c=D, t=1, h=n, w=1)``: ``n`` tokens of
``D`` channels (the token kinds — ``spacetime_position``,
``multiscale_block``, ``sequence_pool`` — and ``layernorm`` / ``linear``
over the channels read them so); the grid the tokens came from is
``n_T × n_H × n_W``, the convolution's output.

* params = ``D·c_I·k_T·k_H·k_W + b·D``
* MACs = ``D·c_I·k_T·k_H·k_W`` per output position (``n_T·n_H·n_W``), bias
  ``D`` per position (ptflops' convolution hook; fvcore counts the MACs)
* regular only: a token sequence has no frame-by-frame form
"""
from __future__ import annotations

from comem.errors import ComemError
from comem.layers.base import LayerKind, axes, conv_out
from comem.layers.conv import positive

NO_CONTINUAL = "a video transformer's tokens mix the whole clip; comem has no continual form of it"


def tokens_layout(layout, what):
    """The token layout ``(B, N, C)`` a token kind reads (channels last)."""
    if tuple(layout) != ("B", "N", "C"):
        raise ComemError(f"{what} on a tensor laid out {tuple(layout)}; comem follows tokens (B, N, C) here")
    return ("B", "N", "C")


def grid_of(raw_grid, what):
    g = [positive(v, what) for v in raw_grid] if isinstance(raw_grid, (list, tuple)) else None
    if g is None or len(g) != 3:
        raise ComemError(f"{what} must be a list [T, H, W] of the token grid")
    return tuple(g)


class PatchEmbed(LayerKind):
    name = "patch_embed"
    summary = "video transformer patch embedding: Conv3d, then flatten time and space into tokens"
    fields = ("out", "kernel", "stride", "padding", "bias")
    required = ("out", "kernel")

    def configure(self, raw, evaluate, c_in, dims=3):
        if dims != 3:
            raise ComemError("patch_embed embeds a video clip: it needs a 3D model (C x T x H x W)")
        bias = evaluate("bias", True)
        if not isinstance(bias, bool):
            raise ComemError(f"patch_embed 'bias' must be true or false, got {bias!r}")
        return {"c_in": c_in, "c_out": positive(evaluate("out", None), "patch_embed 'out'"),
                "k": axes(evaluate("kernel", None), "patch_embed 'kernel'"),
                "s": axes(evaluate("stride", 1), "patch_embed 'stride'"),
                "p": axes(evaluate("padding", 0), "patch_embed 'padding'", fill=0), "bias": bias, "dims": dims}

    def out_channels(self, cfg, c_in):
        return cfg["c_out"]

    def grid(self, cfg, x):
        return tuple(conv_out(n, k, s, p) for n, k, s, p in zip((x.t, x.h, x.w), cfg["k"], cfg["s"], cfg["p"]))

    def output(self, cfg, x, env=None):
        t, h, w = self.grid(cfg, x)
        return x.with_(c=cfg["c_out"], t=1, h=t * h * w, w=1)

    def check(self, cfg, x, y, where):
        if any(isinstance(v, int) and v < 1 for v in self.grid(cfg, x)):
            raise ComemError(f"{where}: the clip {x.t}x{x.h}x{x.w} is smaller than the patch kernel")

    def params(self, cfg, x):
        k = cfg["k"][0] * cfg["k"][1] * cfg["k"][2]
        return cfg["c_out"] * cfg["c_in"] * k + (cfg["c_out"] if cfg["bias"] else 0)

    def torch_tensors(self, cfg, x, continual=False):
        k = cfg["k"][0] * cfg["k"][1] * cfg["k"][2]
        return [(cfg["c_out"] * cfg["c_in"] * k, False)] + ([(cfg["c_out"], False)] if cfg["bias"] else [])

    def work(self, cfg, x, y, step, knobs):
        t, h, w = self.grid(cfg, x)
        positions = t * h * w
        k = cfg["k"][0] * cfg["k"][1] * cfg["k"][2]
        out = {"conv_mac": cfg["c_out"] * cfg["c_in"] * k * positions}
        if cfg["bias"]:
            out["conv_bias"] = cfg["c_out"] * positions
        return out

    def continual_ok(self, cfg):
        return NO_CONTINUAL

    def op_class(self, cfg, x, y):
        return "conv3d_dense"

    # -- import: pytorchvideo's PatchEmbed (recognised by what it holds) --------
    def torch_match(self, module):
        conv = getattr(module, "patch_model", None)
        return type(module).__name__ == "PatchEmbed" and conv is not None and hasattr(conv, "kernel_size")

    def torch_output_layout(self, module, layout, canon):
        if tuple(layout) != tuple(canon):
            raise ComemError(f"on a tensor laid out {tuple(layout)}; comem follows {tuple(canon)} here")
        return ("B", "N", "C")

    def from_torch(self, m, dims):
        conv = m.patch_model
        if type(conv).__name__ != "Conv3d" or dims != 3:
            raise ComemError(f"a patch embedding by {type(conv).__name__} (comem reads a Conv3d patch embedding "
                             "of a video clip)")
        if conv.groups != 1 or tuple(conv.dilation) != (1, 1, 1) or not isinstance(conv.padding, tuple):
            raise ComemError("a patch embedding with groups, dilation or string padding, which comem does not map")
        raw = {"kind": self.name, "out": conv.out_channels, "kernel": list(conv.kernel_size),
               "stride": list(conv.stride), "padding": list(conv.padding)}
        if conv.bias is None:
            raw["bias"] = False
        return raw


PATCH_EMBED = PatchEmbed()
