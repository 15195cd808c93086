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


def row_label(entry: dict, rows: list) -> str:
    """A published row's model as the table prints it: ``CoX3D-M_64`` for a
    continual row; a clip model's title, with its clip when the table lists
    that model at several clips (Table 1's ``R(2+1)D-18_8`` and ``_16``)."""
    from comem.spec.registry import resolve

    title = resolve(entry["model"]).title
    if entry.get("continual"):
        return f"Co{title}_{entry['clip']}"
    clips = {r["clip"] for r in rows if r["model"] == entry["model"] and not r.get("continual")}
    return f"{title}_{entry['clip']}" if len(clips) > 1 else title
