"""The parsed spec: the data classes a TOML spec becomes (see :mod:`comem.spec.load`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# ---------------------------------------------------------------------------
# the parsed spec

@dataclass
class Block:
    name: str
    type: str  # "sequence" | "residual"
    args: dict[str, Any]
    layers: list[dict]  # sequence layers, or residual main branch
    shortcut: Any = "auto"
    merge: str = "sum"
    label: str | None = None
    #: how a residual's shortcut lines up with its main branch: "delay" (by
    #: the main branch's delay) or "centre" (co.Residual(residual_shrink=True))
    align: str = "delay"


@dataclass
class Stage:
    name: str
    index: int
    layers: list[dict] | None = None
    block: str | None = None
    repeat: Any = 1
    args: dict[str, Any] = field(default_factory=dict)
    first: dict[str, Any] = field(default_factory=dict)
    cycle: list[dict[str, Any]] = field(default_factory=list)
    label: str | None = None
    stream: str = "main"
    source: Any = None  # stream name or list of names (merge)
    merge: str | None = None
    merge_into: str | None = None


@dataclass
class Erratum:
    """A published number that disagrees with the equations.

    ``quantity = "state"``: ``printed`` is the formula the publication used
    for the matching layers (``stage``, ``layer``), over the layer kind's
    symbols; it replaces the kind's formula under ``errata = printed``.
    ``quantity = "transient"``: ``printed`` and ``consistent`` are rules of
    the ``transient`` knob.  ``quantity = "label"``: a note only.
    ``when``: knob values under which the publication's number was made
    (e.g. ``conv_state = "partial-outputs"``); elsewhere it does not apply."""
    id: str
    source: str
    note: str
    when: dict = field(default_factory=dict)
    stage: str | None = None
    layer: str | None = None
    quantity: str = "state"
    printed: str | None = None
    consistent: str | None = None
    equation: str | None = None


@dataclass(frozen=True)
class Spec:
    """A loaded spec: immutable (its tables are read-only views and tuples),
    so every analysis of it, and the layer trees cached on it, stay valid.
    Parameter overrides are arguments of the analysis (``params=``), never
    edits of the spec."""
    name: str
    title: str
    path: str
    aliases: list[str]
    description: str
    references: list[str]
    clip: int
    size: int  # the frame height (the joints of a 2D model; 1 for a 1D model)
    in_channels: int | str  # a number, or an expression over the parameters
    continual: bool
    continual_note: str
    params: dict[str, Any]
    blocks: dict[str, Block]
    stages: list[Stage]
    errata: list[Erratum]
    family: str = ""
    #: [(rule expression, message)]: inputs the network cannot take
    constraints: list = field(default_factory=list)
    #: the frame width (= size for square video frames; 1 for 2D and 1D models)
    width: int = 0
    #: 3: video (C, T, H, W); 2: (C, T, V), time x joints or features; 1: (C, T)
    dims: int = 3
    #: name -> comem.spec.domain.Domain: the values a parameter may take ([domains]; others get their type's default)
    domains: dict = field(default_factory=dict)
    #: phase-1 layer trees built from this spec, by parameter overrides (see comem.api.get_graph)
    graphs: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        for name in ("params", "blocks", "domains"):
            value = getattr(self, name)
            if isinstance(value, dict):
                object.__setattr__(self, name, MappingProxyType(dict(value)))
        for name in ("aliases", "references", "stages", "errata", "constraints"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
