"""The built-in specs: where they live, their names and aliases, and resolving a
name, an alias or a path to a :class:`~comem.spec.schema.Spec`."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

from comem.errors import ComemError, suggest
from comem.spec.load import load_spec
from comem.spec.schema import Spec

# ---------------------------------------------------------------------------
# where the built-in specs live

def builtin_spec_dir() -> Path:
    """Directory of the specs shipped with comem (inside the package when
    installed; ``specs/`` of the checkout when run from source)."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "specs"
    if packaged.is_dir():
        return packaged
    return package.parent / "specs"



# ---------------------------------------------------------------------------
# registry of built-in specs

_REGISTRY: dict[str, Path] | None = None


def _registry() -> dict[str, Path]:
    """name/alias -> spec path, read cheaply from the [model] tables."""
    global _REGISTRY
    if _REGISTRY is None:
        reg: dict[str, Path] = {}
        d = builtin_spec_dir()
        for p in sorted(d.glob("*.toml")) if d.is_dir() else []:
            reg[p.stem] = p
        _REGISTRY = reg
    return _REGISTRY


_SPEC_CACHE: dict[str, Spec] = {}


def builtin_names() -> list[str]:
    return sorted(_registry())


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace("×", "x")


def resolve(name_or_path) -> Spec:
    """A built-in model by name or alias, or a spec file by path."""
    if isinstance(name_or_path, Spec):
        return name_or_path
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ComemError(f"model must be a name or a path, got {type(name_or_path).__name__}")
    text = os.fspath(name_or_path)
    if not text.strip():
        raise ComemError("model name is empty; run 'comem list' to see the known models")
    looks_like_path = text.endswith(".toml") or os.sep in text or "/" in text
    if looks_like_path:
        return load_spec(Path(text))
    norm = _normalise(text)
    if norm in _SPEC_CACHE:
        return _SPEC_CACHE[norm]
    reg = _registry()
    if norm in reg:
        spec = load_spec(reg[norm])
        _SPEC_CACHE[norm] = spec
        return spec
    aliases = all_aliases()
    if norm in aliases:
        return resolve(aliases[norm])
    if Path(text).exists():
        return load_spec(Path(text))
    options = sorted(set(reg) | set(aliases))
    raise ComemError(f"unknown model {text!r}{suggest(norm, options)}; run 'comem list' for the known models "
                     "or pass a spec file (path/to/spec.toml)")


_ALIASES: dict[str, str] | None = None


def all_aliases() -> dict[str, str]:
    global _ALIASES
    if _ALIASES is None:
        out = {}
        for name, p in _registry().items():
            try:
                with open(p, "rb") as fh:
                    data = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError):  # pragma: no cover - shipped specs are valid
                continue
            for a in (data.get("model", {}) or {}).get("aliases", []) or []:
                out[_normalise(a)] = name
        _ALIASES = out
    return _ALIASES
