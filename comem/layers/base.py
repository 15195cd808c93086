"""What every layer kind states, and the small types its formulas use.

A *layer kind* (``conv``, ``batchnorm``, ``avgpool``…) is a class with one
method per quantity.  Every method is plain arithmetic over the
:mod:`comem.shim`, so it evaluates on Python ints (exact), sympy symbols
(closed forms) and numpy arrays (sweeps) alike.

Shapes are ``Shape(c, t, h, w)``: channels, frames, height, width of the
*regular* (clip) model.  The continual model processes one frame per step;
its step tensors have the same ``c, h, w`` and one frame.

Quantities a kind provides (all per single instance of the layer):

``output(cfg, x)``          output shape of the regular model
``params(cfg, x)``          learnable parameters
``work(cfg, x, y, step)``   the elementary operations it performs, as
                            ``{op: count}`` for one clip (``step=False``) or
                            one continual step (``step=True``); counting
                            conventions (:mod:`comem.conventions`) weight them
``state(cfg, x, y, knobs)`` floats kept between steps by the continual layer
``temporal(cfg, x)``        ``(receptive_field, padding, stride)`` along time
``library_peak(cfg, x, y)`` floats continual-inference holds alive at the
                            layer's own peak inside one step, output included,
                            input excluded (for the ``library`` transient)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import shim


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


def conv_out(n, k, s, p, d=1):
    """Output length of a convolution / pooling window along one axis:
    ``floor((n + 2p - d(k-1) - 1) / s) + 1``."""
    return shim.fdiv(n + 2 * p - d * (k - 1) - 1, s) + 1


class LayerKind:
    """Base class: a kind that holds no state, has no parameters and does no
    counted work (identity-like)."""

    name = "identity"
    #: keys a spec may give for this kind (besides kind/name/label/when)
    fields: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    nested: tuple[str, ...] = ()
    text_fields: tuple[str, ...] = ()
    #: a one-line description shown in `comem kinds` and the README
    summary = ""
    #: symbolic form of the state formula for the paper profile, for tables
    state_formula = "0"
    #: ops a continual layer only performs on steps where it emits an output
    #: (every ``s_T``-th step for a temporal stride ``s_T``)
    output_only_ops: tuple[str, ...] = ()

    # -- phase 1: structure (channels, kernels) from spec fields --------------
    def configure(self, raw: dict, evaluate, c_in) -> dict:
        """Evaluate spec fields into a config dict; ``evaluate(key, default)``
        evaluates one field, ``c_in`` is the input channel count."""
        return {}

    def out_channels(self, cfg, c_in):
        return c_in

    # -- phase 2: quantities ----------------------------------------------------
    def output(self, cfg, x: Shape) -> Shape:
        return x

    def params(self, cfg, x: Shape):
        return 0

    def work(self, cfg, x: Shape, y: Shape, step: bool, ctx) -> dict:
        return {}

    def state(self, cfg, x: Shape, y: Shape, knobs, ctx):
        return 0

    def state_text(self, cfg, x: Shape, y: Shape, knobs, ctx):
        """(symbolic text, text with numbers) of the state formula."""
        return ("0", "0")

    def temporal(self, cfg, x: Shape, ctx):
        return (1, 0, 1)

    def library_peak(self, cfg, x: Shape, y: Shape, knobs):
        """Default: the layer allocates its output and nothing else
        (in-place activations allocate nothing)."""
        return 0 if cfg.get("inplace") else y.frame

    def check(self, cfg, x: Shape, y: Shape, where: str):
        """Raise a ComemError when the layer cannot run on this input."""
        return None

    def continual_ok(self, cfg) -> str | None:
        """None when the layer has a continual form; otherwise why not."""
        return None
