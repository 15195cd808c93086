"""``delay`` — hold frames back (``co.Delay``).  Placed by hand in a spec, or
inserted automatically on the shorter branch of a residual / SE / parallel
merge so both branches line up in time.

Spec fields: ``frames``.

* state = ``frames·C·H·W`` (``co.Delay`` buffers ``frames`` input frames)
* receptive field ``frames + 1``, delay ``frames``
* regular model: identity
"""
from __future__ import annotations

from comem.core import shim
from comem.errors import ComemError
from comem.core.expr import format_number
from comem.layers.base import BatchAxis, LayerKind, StateTensor, frame_axes, shape_symbols
from comem.layers.conv import positive


class Delay(LayerKind):
    name = "delay"
    summary = "delays its input by a number of frames (co.Delay)"
    fields = ("frames",)
    required = ("frames",)
    state_formulas = "delay * C * H * W"

    def configure(self, raw, evaluate, c_in, dims=3):
        return {"frames": positive(shim.structural(evaluate("frames", None)), "delay 'frames'", allow_zero=True), "c": c_in,
                "dims": dims}

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
        return (cfg["frames"] + 1, 0, 1)

    def state_tensors(self, cfg, x, y, knobs):
        """``co.Delay``'s ``state_buffer`` ``(frames, B, C, H, W)`` (zeros)
        and, where the library places the delays (``residual_delay =
        auto``), its int64 ``state_index``, which starts at ``−frames``
        (``−2·frames`` for a delay that shrinks a centred shortcut,
        ``auto_shrink``); none for a delay of 0 frames."""
        frames = cfg["frames"]
        if shim.is_concrete(frames) and frames == 0:
            return []
        f, frame = frame_axes(x, cfg.get("dims", 3))
        start = -2 * frames if cfg.get("shrink") else -frames
        line = [StateTensor("state_buffer", "delay-line", (frames, BatchAxis(f), *frame))]
        if knobs.get("residual_delay") != "auto":
            return line
        return line + [StateTensor("state_index", "index", (), "int64", start)]

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
        if getattr(m, "auto_shrink", False):
            raise ComemError("co.Delay(auto_shrink=...) crops the regular shortcut of a centred residual: write "
                             "the block as a residual with align = 'centre'")
        return {"kind": "delay", "frames": int(m.delay)}

    def op_class(self, cfg, x, y):
        return "copy"

    def torch_module(self, cfg, x, kit, continual, knobs):
        return kit.co.Delay(cfg["frames"]) if continual else kit.nn.Identity()

    def state_traffic(self, cfg, x, y, knobs):
        """Stores the new frame and reads the one ``frames`` steps old."""
        return 2 * x.frame if not (shim.is_concrete(cfg["frames"]) and cfg["frames"] == 0) else 0

    def torch_tensors(self, cfg, x, continual=False):
        """co.Delay keeps an int64 ``state_index`` scalar."""
        return [(1, True)] if continual else []


DELAY = Delay()
