"""From comem's structure of an imported model to a spec (a dict in the
format of the built-in TOML specs) and its TOML text.

* stages follow the network, not how its author nested modules: a new
  stage starts at every layer or block that changes the shape of the data
  (a strided or widening block, a pool, a projection); layers and blocks
  that keep it (activations, norms, identity residual blocks) stay in the
  stage before them — so a ResNet stage is its strided block and the blocks
  after it, and every stage output is the largest map since the one
  before.  The same network written flat, in one ``nn.Sequential`` or
  nested gives the same stages, named after the modules they hold; a graph
  of pathways becomes stages over streams (``source``, ``merge``), each
  split the same way;
* every composite (a residual, a squeeze-excitation gate, a parallel merge)
  becomes a ``[blocks.NAME]`` template, and identical composites share one;
* a stage made of ``n`` identical units (block + activation) is written as
  ``block`` + ``repeat``.
"""
from __future__ import annotations

import json
import re

from comem.layers import KINDS
from comem.layers.base import LayerKind
from comem.pytorch.importer.structure import INPUT, shared_prefix

_NAME_OK = re.compile(r"[^A-Za-z0-9_.-]")


def _clean(name: str, fallback: str) -> str:
    name = _NAME_OK.sub("_", name or "").strip("._") or fallback
    return name[:80]


class Emitter:
    def __init__(self, dims: int = 3):
        self.dims = dims
        self.blocks: dict = {}          # name -> block table
        self.by_signature: dict = {}    # signature -> name
        self.counter: dict = {}

    # -- layers and composites ----------------------------------------------------
    def layers(self, ops, prefix: str, stage: str) -> list:
        out, used = [], {}
        for op in ops:
            item = self.item(op, prefix, stage)
            base = item.get("name") or item.get("block") or "layer"
            n = used.get(base, 0)
            used[base] = n + 1
            if "name" in item and n:
                item["name"] = f"{base}_{n + 1}"
            elif "block" in item and n:
                item["name"] = f"{base}_{n + 1}"
            out.append(item)
        return out

    def item(self, op, prefix: str, stage: str) -> dict:
        swish = _swish(op)
        if swish is not None:
            return swish
        if op.branches:
            gate = self.gate(op, prefix, stage)
            return gate if gate is not None else {"block": self.composite(op, prefix, stage)}
        raw = dict(op.raw)
        rel = op.path[len(prefix) + 1:] if prefix and op.path.startswith(prefix + ".") else \
            ("" if op.path == prefix else op.path)
        if rel and op.path and not _functional(op):
            parts = rel.split(".")
            if parts[-1].isdigit():  # nn.Sequential's index: name it by what it is (b.0 -> b.conv)
                parts[-1] = raw["kind"]
            raw["name"] = _clean(".".join(parts), raw["kind"])
        else:
            raw["name"] = raw["kind"]
        return dict(sorted(raw.items(), key=lambda kv: _KEY_ORDER.get(kv[0], 99)))

    def gate(self, op, prefix: str, stage: str) -> dict | None:
        """A multiplicative gate ``x * g(x)`` that a kind stands for as one
        layer (a causal squeeze-excitation written out), or None."""
        if op.merge != "mul" or len(op.branches) != 2 or sum(1 for b in op.branches if not b) != 1:
            return None
        main = [item for item in self.layers(next(b for b in op.branches if b), op.path, stage)
                if not ("kind" in item and KINDS[item["kind"]].passthrough)]
        if not main or any("kind" not in item for item in main):
            return None
        for kind in KINDS.values():
            raw = kind.gate_block(main, _channels(op.inputs[0]))
            if raw is not None:
                rel = op.path[len(prefix) + 1:] if prefix and op.path.startswith(prefix + ".") else op.path
                return {"name": _clean(rel, raw["kind"]), **raw}
        return None

    def composite(self, op, prefix: str, stage: str) -> str:
        inner = op.path
        # an nn.Identity / Dropout branch is the identity shortcut it stands for
        branches = [[item for item in self.layers(b, inner, stage)
                     if not ("kind" in item and KINDS[item["kind"]].passthrough)]
                    for b in op.branches]
        table = _composite_table(op, branches, self.dims)
        sig = json.dumps(table, sort_keys=True)
        name = self.by_signature.get(sig)
        if name is None:
            kind = "se" if _is_gate(op, table) else table["type"]
            k = self.counter[(stage, kind)] = self.counter.get((stage, kind), 0) + 1
            name = _clean(f"{stage}_{kind}{k}".replace(".", "_"), f"block{len(self.blocks) + 1}")
            self.blocks[name] = table
            self.by_signature[sig] = name
        return name

    # -- stages -------------------------------------------------------------------------
    def chain_stages(self, ops) -> list:
        """One chain, cut where the data changes shape (:func:`partition`)."""
        out, seen = [], {}
        for group in partition(ops):
            key = _common_prefix(group)
            name = _stage_name(key or _first_name(group), seen)
            layers = self.layers(group, key, name)
            out.append(self.fold({"name": name, "layers": layers}))
        return out

    def stream_stages(self, chains) -> list:
        """Chains between pathway forks and merges: stages over streams, each
        chain cut as :meth:`chain_stages` cuts one."""
        out, seen, names = [], {}, {}
        for c in chains:
            groups = partition(c.ops) or [[]]
            for i, group in enumerate(groups):
                key = _common_prefix(group)
                name = _stage_name(key or (_first_name(group) if group else ("merge" if c.merge else "stage")), seen)
                if i == 0:
                    names[id(c)] = name
                    stage = {"name": name, "stream": name}
                    sources = ["input" if s is INPUT else names[id(s)] for s in c.sources]
                    if c.merge:
                        stage["source"] = sources
                        stage["merge"] = c.merge
                    else:
                        stage["source"] = sources[0]
                else:
                    stage = {"name": name, "stream": names[id(c)]}
                stage["layers"] = self.layers(group, key, name)
                out.append(stage)
        return out

    def fold(self, stage: dict) -> dict:
        """``n`` identical units (a block reference and what follows it, up to
        the next one) written as ``block`` + ``repeat``."""
        layers = stage["layers"]
        starts = [i for i, item in enumerate(layers) if "block" in item]
        if len(starts) < 2 or starts[0] != 0:
            return stage
        units = [layers[a:b] for a, b in zip(starts, starts[1:] + [len(layers)])]
        sig = [json.dumps([{k: v for k, v in it.items() if k != "name"} for it in u], sort_keys=True) for u in units]
        if len(set(sig)) != 1:
            return stage
        unit = [dict(it) for it in units[0]]
        name = _clean(f"{stage['name']}_unit".replace(".", "_"), "unit")
        self.blocks[name] = {"type": "sequence", "layers": unit}
        return {"name": stage["name"], "block": name, "repeat": len(units)}


_KEY_ORDER = {"name": 0, "kind": 1, "block": 1, "out": 2, "kernel": 3, "stride": 4, "padding": 5, "dilation": 6,
              "groups": 7, "functional": 98}


def _functional(op) -> bool:
    """A functional call in the model's own forward: named by its kind."""
    return op.glue and "." not in op.path


def _keeps_shape(op) -> bool:
    inputs = [v for v in op.inputs if v is not None]
    return bool(inputs) and all(tuple(v.shape) == tuple(op.output.shape) for v in inputs)


def partition(ops) -> list:
    """The ops of a chain in stages: a new stage at every op that changes
    the shape of the data; ops that keep it join the stage before."""
    groups: list = []
    for op in ops:
        if not groups or not _keeps_shape(op):
            groups.append([])
        groups[-1].append(op)
    return groups


def _all_paths(op):
    if op.branches:
        return [p for b in op.branches for o in b for p in _all_paths(o)] or [op.path]
    return [op.path]


def _common_prefix(group) -> str:
    """The deepest module holding every op of the group ("" when none)."""
    paths = [p.split(".") for op in group for p in _all_paths(op) if p]
    if not paths or len(paths) < sum(len(_all_paths(op)) for op in group):
        return ""
    common = shared_prefix(paths)
    if len(group) == 1 and not group[0].branches:
        return group[0].path  # a single layer: its own module
    return ".".join(common)


def _first_name(group) -> str:
    op = group[0]
    if op.path:
        return op.path
    return op.raw.get("kind", "stage") if op.raw else (op.merge or "stage")


def _stage_name(key: str, seen: dict) -> str:
    base = _clean(key, "stage")
    if base[0].isdigit():
        base = f"stage{base}"
    n = seen.get(base, 0)
    seen[base] = n + 1
    return base if not n else f"{base}_{n + 1}"


def _swish(op) -> dict | None:
    """``x * sigmoid(x)`` (X3D's Swish written out): the swish kind."""
    if op.merge != "mul" or len(op.branches) != 2 or sorted(len(b) for b in op.branches) != [0, 1]:
        return None
    (sig,) = [b[0] for b in op.branches if b]
    if sig.branches or not sig.raw:
        return None
    gate = next((k for k in KINDS.values() if k.self_gate_of and k.self_gate_of == sig.raw.get("kind")), None)
    if gate is None:
        return None
    raw = {"name": gate.name, "kind": gate.name}
    if sig.raw.get("functional"):
        raw["functional"] = True
    return raw


def _is_gate(op, table) -> bool:
    return table.get("merge") == "mul"


def _SHORTCUT_KINDS():
    """The composite kinds that build a shortcut of their own."""
    return [k for k in KINDS.values() if type(k).is_auto_shortcut is not LayerKind.is_auto_shortcut]


def _composite_table(op, branches, dims) -> dict:
    """A residual (identity or 1x1x1-projection shortcut) when the branches
    are that, else a parallel block."""
    merge = op.merge
    c_in, c_out = _channels(op.inputs[0]), _channels(op.output)
    if len(branches) == 2:
        empty = [i for i, b in enumerate(branches) if not b]
        if len(empty) == 1:
            main = branches[1 - empty[0]]
            gate = KINDS[main[0]["kind"]].gate_pool(main[0]) if merge == "mul" and main and "kind" in main[0] \
                else None
            if gate is not None:
                main[0] = gate  # an SE gate: the se_pool knob decides its window
            table = {"type": "residual", "shortcut": "identity", "main": main}
            if merge != "sum":
                table["merge"] = merge
            return table
        if merge == "sum" and not empty:
            for kind in _SHORTCUT_KINDS():
                for i in (0, 1):
                    sc, main = branches[i], branches[1 - i]
                    if kind.is_auto_shortcut(sc, _strides(main, dims), c_in, c_out, KINDS):
                        return {"type": kind.name, "shortcut": "auto", "main": main}
    return {"type": "parallel", "merge": merge, "branches": branches}


def _channels(value) -> int:
    return value.sizes.get("C", 0)


def _strides(layers, dims):
    """The main branch's total stride, each layer's by its kind; None when it
    holds a block."""
    t = h = w = 1
    for raw in layers:
        if "block" in raw:
            return None
        st, sh, sw = KINDS[raw["kind"]].import_strides(raw, dims)
        t, h, w = t * st, h * sh, w * sw
    return (t, h, w)


# ---------------------------------------------------------------------------
# TOML text

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_layers(key: str, layers: list) -> list:
    if not layers:
        return [f"{key} = []"]
    return [f"{key} = ["] + [f"  {_toml_value(item)}," for item in layers] + ["]"]


def to_toml(data: dict, header: str = "") -> str:
    """A spec dict as TOML in the built-in specs' layout."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()] if header else []
    lines += ["", "[model]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in data["model"].items()]
    if data.get("params"):
        lines += ["", "[params]"] + [f"{k} = {_toml_value(v)}" for k, v in data["params"].items()]
    for name, block in data.get("blocks", {}).items():
        lines += ["", f"[blocks.{name}]"]
        for k, v in block.items():
            if k in ("layers", "main"):
                lines += _toml_layers(k, v)
            elif k == "branches":
                lines.append("branches = [")
                for branch in v:
                    if not branch:
                        lines.append("  [],")
                        continue
                    lines.append("  [")
                    lines += [f"    {_toml_value(item)}," for item in branch]
                    lines.append("  ],")
                lines.append("]")
            else:
                lines.append(f"{k} = {_toml_value(v)}")
    for stage in data["stages"]:
        lines += ["", "[[stages]]"]
        for k, v in stage.items():
            lines += _toml_layers(k, v) if k == "layers" else [f"{k} = {_toml_value(v)}"]
    return "\n".join(lines).lstrip("\n") + "\n"
