"""comem's vocabularies: every fixed set of words a spec, a profile or a report
uses, as a ``StrEnum``.  Text from a TOML file, the CLI or the Python API is
converted here once, at the boundary (:func:`parse`), and code compares
members, never bare strings; a member still equals its text, so machine
formats and specs keep the words they always had."""
from __future__ import annotations

from enum import StrEnum

from comem.errors import ComemError


class BlockType(StrEnum):
    """How a ``[blocks.NAME]`` template composes its layers."""
    SEQUENCE = "sequence"
    RESIDUAL = "residual"
    PARALLEL = "parallel"


class Shortcut(StrEnum):
    """A residual block's shortcut when it is not a list of layers."""
    AUTO = "auto"
    IDENTITY = "identity"
    PROJECTION = "projection"


class Merge(StrEnum):
    """How branches (or streams) combine."""
    SUM = "sum"
    MUL = "mul"
    CONCAT = "concat"


class Align(StrEnum):
    """How a residual's shortcut lines up with its main branch in time: delayed by
    the main branch's delay, or cropped/delayed to the window's centre
    (co.Residual(residual_shrink=True))."""
    DELAY = "delay"
    CENTRE = "centre"


class Role(StrEnum):
    """What a row of the layer table is: a layer of the spec, or a delay the
    continual model inserts to line a shortcut up with its branch."""
    LAYER = "layer"
    ALIGNMENT = "alignment"


class TransientRule(StrEnum):
    """Rules of the ``transient`` knob: what one step's worst-case transient is."""
    STAGE_OUTPUT = "stage-output"
    LARGEST_MAP = "largest-map"
    LIVENESS = "liveness"
    LIBRARY = "library"


def parse(vocab: type[StrEnum], text, what: str, allowed=None):
    """``text`` as a member of ``vocab`` (``allowed``: a subset), or a one-line
    error naming ``what`` and the words it takes."""
    members = list(allowed or vocab)
    for m in members:
        if text == m.value:
            return m
    words = ", ".join(repr(m.value) for m in members[:-1]) + f" or {members[-1].value!r}" if len(members) > 1 else repr(
        members[0].value)
    raise ComemError(f"{what} must be {words}, got {text!r}")
