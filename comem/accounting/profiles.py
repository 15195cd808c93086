"""Accounting conventions: named profiles made of orthogonal knobs.

Each knob is one decision about *what counts*.  A profile fixes every knob;
any knob can be changed on its own (``--knob conv_state=library-buffer``),
which is how comem answers what-if questions.

=================  ===============  =====================  ===============
knob               ``paper``        ``continual-inference``  ``stream-buffer``
=================  ===============  =====================  ===============
conv_state         partial-outputs  library-buffer         input-frames
residual_delay     block-input      auto                   auto
pool_state         k-1              k                      running-sum
se_pool            frame            frame                  clip-causal
transient          stage-output     library                liveness
errata             printed          consistent             consistent
unit_kernel_stride honoured         ignored                honoured
temporal_padding   symmetric        symmetric              causal
=================  ===============  =====================  ===============

``conv_state``
    ``partial-outputs``: Eq. (5), ``d_T(k_T−1)·c_O·n_H·n_W``;
    ``library-buffer``: continual-inference 1.2.4's ``(k_T−1)²·c_O·n_H·n_W``;
    ``input-frames``: ``d_T(k_T−1)·c_I·H·W`` (keep raw input frames).
``residual_delay``
    where a residual/SE shortcut's delay buffer sits: ``block-input`` (the
    block's input map, Table 4) or ``auto`` (continual-inference: identity
    shortcuts delay the input, projection shortcuts delay the projection's
    output — ``BroadcastReduce(auto_delay=True)``).
``pool_state``
    frames a continual pool keeps: ``k-1`` (paper, pool_5 ``(T−1)·C``),
    ``k`` (continual-inference keeps the whole window, ``d(k−1)+1``) or
    ``running-sum`` (MoViNet: a global average pool over the past keeps one
    running sum per channel and a frame counter; windowed pools keep their
    ``k−1`` earlier pooled frames).
The ``stream-buffer`` profile is MoViNet's stream mode (tensorflow/models
``official/projects/movinet``): causal temporal convolutions cache their
``k_T−1`` input frames (the stream buffer), SE and the head pool keep running
sums, nothing is delayed.

``se_pool``
    ``frame``: SE blocks pool one frame (paper: temporal pooling dropped);
    ``clip``: SE blocks pool over the clip as a continual pool does, which
    delays the pooled gate by ``T−1`` frames, so the multiplied branch is
    delay-aligned (what continual-inference would do);
    ``clip-causal``: SE blocks pool over the past ``T`` frames and gate the
    current frame with it (pooled frames kept, no alignment delay).
``transient``
    what the worst-case transient of one step is: ``stage-output`` (the
    largest stage output map, as Appendix A counts it), ``largest-map`` (the
    largest output map of any layer), ``liveness`` (peak of simultaneously
    live maps: a layer's input and output plus maps held by enclosing
    residual/SE branches), ``library`` (liveness plus the temporaries
    continual-inference allocates inside its layers).
``unit_kernel_stride``
    what a continual convolution with a one-frame kernel and a temporal
    stride ``s`` does: emits every ``s``-th frame (``honoured``) or, as
    continual-inference 1.2.4's ``co.Conv3d`` does, every frame
    (``ignored``), so the layers after it run every frame.  Only the
    operations per input frame change.
``temporal_padding``
    ``symmetric``: temporal convolutions and pools pad as the spec says, and a
    continual layer delays its output by ``k−1−p``; ``causal``: they pad
    ``(k−1)·d`` frames before and none after (MoViNet's causal mode), so
    each emits the frame that just arrived, with no delay, and regular
    models keep ``ceil(T/s)`` frames.
``errata``
    ``printed``: where a spec records an erratum for this network and
    accounting (:mod:`comem.spec.errata`), report the published value (and the
    equation-consistent one beside it); ``consistent``: use the equations.
"""
from __future__ import annotations

from dataclasses import dataclass

from comem.errors import ComemError
from comem.errors import suggest

KNOBS: dict[str, tuple[str, ...]] = {
    "conv_state": ("partial-outputs", "library-buffer", "input-frames"),
    "residual_delay": ("block-input", "auto"),
    "pool_state": ("k-1", "k", "running-sum"),
    "se_pool": ("frame", "clip", "clip-causal"),
    "transient": ("stage-output", "largest-map", "liveness", "library"),
    "errata": ("printed", "consistent"),
    "unit_kernel_stride": ("honoured", "ignored"),
    "temporal_padding": ("symmetric", "causal"),
}

#: knobs that change the model rather than how it is accounted for: every
#: accounting shown side by side applies them
MODEL_KNOBS = ("se_pool",)

PROFILES: dict[str, dict[str, str]] = {
    "paper": {
        "conv_state": "partial-outputs",
        "residual_delay": "block-input",
        "pool_state": "k-1",
        "se_pool": "frame",
        "transient": "stage-output",
        "errata": "printed",
        "unit_kernel_stride": "honoured",
        "temporal_padding": "symmetric",
    },
    "continual-inference": {
        "conv_state": "library-buffer",
        "residual_delay": "auto",
        "pool_state": "k",
        "se_pool": "frame",
        "transient": "library",
        "errata": "consistent",
        "unit_kernel_stride": "ignored",
        "temporal_padding": "symmetric",
    },
    "stream-buffer": {
        "conv_state": "input-frames",
        "residual_delay": "auto",
        "pool_state": "running-sum",
        "se_pool": "clip-causal",
        "transient": "liveness",
        "errata": "consistent",
        "unit_kernel_stride": "honoured",
        "temporal_padding": "causal",
    },
}

PROFILE_ALIASES = {"co": "continual-inference", "library": "continual-inference", "ci": "continual-inference"}

PROFILE_DOC = {
    "paper": "the publication's accounting (Eqs. 5/7, Appendix A Table 4)",
    "continual-inference": "what continual-inference 1.2.4 really allocates (validated against the library)",
    "stream-buffer": "MoViNet-style streaming: causal convs cache k_T-1 input frames, running-sum pools, no delay",
}


@dataclass(frozen=True)
class Profile:
    name: str  # the named base profile
    knobs: tuple  # sorted (knob, value) pairs
    changed: tuple = ()  # knobs changed from the base profile

    def __getitem__(self, key):
        return dict(self.knobs)[key]

    def as_dict(self) -> dict:
        return dict(self.knobs)

    @property
    def label(self) -> str:
        if not self.changed:
            return self.name
        return self.name + "+" + ",".join(f"{k}={v}" for k, v in self.changed)


def get_profile(name: str = "paper", **overrides) -> Profile:
    key = ("paper" if name is None else str(name)).strip().lower()
    key = PROFILE_ALIASES.get(key, key)
    if key not in PROFILES:
        raise ComemError(f"unknown profile {name!r}{suggest(key, PROFILES)}; choose one of: {', '.join(PROFILES)}")
    knobs = dict(PROFILES[key])
    changed = []
    for k, v in overrides.items():
        if v is None:
            continue
        k2 = k.replace("-", "_")
        if k2 not in KNOBS:
            raise ComemError(f"unknown knob {k!r}{suggest(k2, KNOBS)}; knobs: {', '.join(KNOBS)}")
        v2 = str(v).strip().lower()
        if v2 not in KNOBS[k2]:
            raise ComemError(f"knob {k2} has no value {v!r}{suggest(v2, KNOBS[k2])}; choose one of: "
                             f"{', '.join(KNOBS[k2])}")
        if knobs[k2] != v2:
            changed.append((k2, v2))
        knobs[k2] = v2
    return Profile(key, tuple(sorted(knobs.items())), tuple(changed))
