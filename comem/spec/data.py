"""Data shipped beside the architecture specs: published tables
(``specs/published/*.toml``, values as the papers print them) and device facts
(``specs/devices/*.toml``).  Read here, once each, by whoever needs them: the
reproductions, the device models, the plots."""
from __future__ import annotations

import functools
import tomllib

from comem.spec.registry import builtin_spec_dir


@functools.cache
def _read(folder: str, name: str) -> dict:
    with open(builtin_spec_dir() / folder / name, "rb") as fh:
        return tomllib.load(fh)


def published(name: str = "co3d-eccv2022.toml") -> dict:
    """A publication's printed values (``specs/published/NAME``); do not mutate."""
    return _read("published", name)


def devices(name: str = "devices.toml") -> dict:
    """Device facts (``specs/devices/NAME``); do not mutate."""
    return _read("devices", name)
