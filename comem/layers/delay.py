"""``delay`` — hold frames back (``co.Delay``).  Placed by hand in a spec, or
inserted automatically on the shorter branch of a residual / SE / parallel
merge so both branches line up in time.

Spec fields: ``frames``, ``crop`` (default false).

* state = ``frames·C·H·W`` (``co.Delay`` buffers ``frames`` input frames)
* receptive field ``frames + 1``, delay ``frames``
* regular model: identity

``crop = true`` is ``co.Delay(frames, auto_shrink=True)``, the centred
shortcut of a residual around unpadded temporal convolutions
(``co.Residual(residual_shrink=True)``, continual-skeletons' ``*`` models):
the regular model drops ``frames`` frames at each end; the continual layer
still buffers ``frames`` frames, and waits ``2·frames`` steps before its
first output, so it lines up with the centre of a ``2·frames + 1`` window —
receptive field ``2·frames + 1``, no padding, delay ``2·frames``.
"""
from __future__ import annotations

from .. import shim
from ..errors import ComemError
from ..expr import format_number
from .base import LayerKind, shape_symbols
from .conv import positive


class Delay(LayerKind):
    name = "delay"
    summary = "delays its input by a number of frames (co.Delay)"
    fields = ("frames", "crop")
    required = ("frames",)
    state_formulas = "delay * C * H * W"

    def configure(self, raw, evaluate, c_in, dims=3):
        crop = evaluate("crop", False)
        if not isinstance(crop, bool):
            raise ComemError(f"delay 'crop' must be true or false, got {crop!r}")
        return {"frames": positive(shim.structural(evaluate("frames", None)), "delay 'frames'", allow_zero=True), "c": c_in,
                "dims": dims, "crop": crop}

    def output(self, cfg, x, env=None):
        return x.with_(t=x.t - 2 * cfg["frames"]) if cfg.get("crop") else x

    def check(self, cfg, x, y, where):
        if shim.is_concrete(y.t) and y.t < 1:
            raise ComemError(f"{where}: cropping {cfg['frames']} frames at each end leaves no frame of {x.t}; "
                             "use a longer clip")

    def symbols(self, cfg, x, y, knobs):
        d = shape_symbols(x, y)
        d["delay"] = cfg["frames"]
        return d

    def state_text(self, cfg, x, y, knobs, formula=None, texts=None):
        """The frame count is always shown (``1×24×56×56``); a delay that
        aligns a parallel branch is written as its cause, the ``frames_text``
        the walker passes (``(3−1−1)×24×112×112``)."""
        texts = dict(texts or {})
        texts.setdefault("delay", cfg.get("frames_text") or (format_number(cfg["frames"]), 6))
        return super().state_text(cfg, x, y, knobs, formula, texts)

    def temporal(self, cfg, x, knobs):
        if cfg.get("crop"):
            return (2 * cfg["frames"] + 1, 0, 1)
        return (cfg["frames"] + 1, 0, 1)

    def library_peak(self, cfg, x, y, knobs):
        """``co.Delay`` returns ``buffer[index].clone()``: one copied frame
        (``Delay(0)`` returns its input)."""
        f = cfg["frames"]
        if shim.is_concrete(f) and f == 0:
            return 0
        return x.frame

    def torch_types(self, kit):
        return (kit.co.Delay,)

    def from_torch(self, m, dims):
        raw = {"kind": "delay", "frames": int(m.delay)}
        shrink = getattr(m, "auto_shrink", False)
        if shrink is True or shrink == "centered":
            raw["crop"] = True
        elif shrink:
            raise ComemError(f"co.Delay(auto_shrink={shrink!r}): comem reads centred crops only")
        return raw

    def torch_module(self, cfg, x, kit, continual, knobs):
        if cfg.get("crop"):
            return kit.co.Delay(cfg["frames"], temporal_fill="zeros", auto_shrink=True)
        return kit.co.Delay(cfg["frames"]) if continual else kit.nn.Identity()

    def state_traffic(self, cfg, x, y, knobs):
        """Stores the new frame and reads the one ``frames`` steps old."""
        return 2 * x.frame if not (shim.is_concrete(cfg["frames"]) and cfg["frames"] == 0) else 0

    def torch_tensors(self, cfg, x, continual=False):
        """co.Delay keeps an int64 ``state_index`` scalar."""
        return [(1, True)] if continual else []


DELAY = Delay()
