"""From comem's structure of an imported model to a spec (a dict in the
format of the built-in TOML specs) and its TOML text.

* a single chain is split into stages after the model's top-level modules
  (``layer1``, ``s2``, ``head``...); a graph of pathways becomes stages over
  streams (``source``, ``merge``);
* every composite (a residual, a squeeze-excitation gate, a parallel merge)
  becomes a ``[blocks.NAME]`` template, and identical composites share one;
* a stage made of ``n`` identical units (block + activation) is written as
  ``block`` + ``repeat``.
"""
from __future__ import annotations

import json
import re

from comem.pytorch.importer.structure import INPUT

_NAME_OK = re.compile(r"[^A-Za-z0-9_.-]")


def _clean(name: str, fallback: str) -> str:
    name = _NAME_OK.sub("_", name or "").strip("._") or fallback
    return name[:80]


class Emitter:
    def __init__(self):
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
            return {"block": self.composite(op, prefix, stage)}
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

    def composite(self, op, prefix: str, stage: str) -> str:
        inner = op.path
        # an nn.Identity / Dropout branch is the identity shortcut it stands for
        branches = [[item for item in self.layers(b, inner, stage) if item.get("kind") != "identity"]
                    for b in op.branches]
        table = _composite_table(op, branches)
        sig = json.dumps(table, sort_keys=True)
        name = self.by_signature.get(sig)
        if name is None:
            kind = "se" if _is_gate(op, table) else table["type"]
            k = self.counter[(stage, kind)] = self.counter.get((stage, kind), 0) + 1
            name = _clean(f"{stage}_{kind}{k}", f"block{len(self.blocks) + 1}")
            self.blocks[name] = table
            self.by_signature[sig] = name
        return name

    # -- stages -------------------------------------------------------------------------
    def chain_stages(self, ops) -> list:
        """One chain, cut after the model's top-level modules."""
        stages: list = []
        for op in ops:
            key = op.path.split(".")[0] if op.path else ""
            if not stages or (key and key != stages[-1][0]):
                stages.append((key or "head", []))
            stages[-1][1].append(op)
        out, seen = [], {}
        for key, group in stages:
            name = _stage_name(key, seen)
            layers = self.layers(group, key, name)
            out.append(self.fold({"name": name, "layers": layers}))
        return out

    def stream_stages(self, chains) -> list:
        """Chains between pathway forks and merges: stages over streams."""
        out, seen, names = [], {}, {}
        for c in chains:
            key = c.ops[0].path.split(".")[0] if c.ops and c.ops[0].path else ("merge" if c.merge else "stage")
            name = _stage_name(key, seen)
            names[id(c)] = name
            stage = {"name": name, "stream": name}
            sources = ["input" if s is INPUT else names[id(s)] for s in c.sources]
            if c.merge:
                stage["source"] = sources
                stage["merge"] = c.merge
            else:
                stage["source"] = sources[0]
            stage["layers"] = self.layers(c.ops, key, name)
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
        name = _clean(f"{stage['name']}_unit", "unit")
        self.blocks[name] = {"type": "sequence", "layers": unit}
        return {"name": stage["name"], "block": name, "repeat": len(units)}


_KEY_ORDER = {"name": 0, "kind": 1, "block": 1, "out": 2, "kernel": 3, "stride": 4, "padding": 5, "dilation": 6,
              "groups": 7, "functional": 98}


def _functional(op) -> bool:
    return bool(op.raw) and op.raw.get("kind") in ("flatten", "mean") and "." not in op.path


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
    if sig.branches or not sig.raw or sig.raw.get("kind") != "sigmoid":
        return None
    raw = {"name": "swish", "kind": "swish"}
    if sig.raw.get("functional"):
        raw["functional"] = True
    return raw


def _is_gate(op, table) -> bool:
    return table.get("merge") == "mul"


def _composite_table(op, branches) -> dict:
    """A residual (identity or 1x1x1-projection shortcut) when the branches
    are that, else a parallel block."""
    merge = op.merge
    c_in, c_out = _channels(op.inputs[0]), _channels(op.output)
    if len(branches) == 2:
        empty = [i for i, b in enumerate(branches) if not b]
        if len(empty) == 1:
            main = branches[1 - empty[0]]
            if merge == "mul" and main and main[0].get("kind") == "avgpool" and main[0].get("global"):
                main[0] = dict(main[0], window="se")  # an SE gate: the se_pool knob decides its window
            table = {"type": "residual", "shortcut": "identity", "main": main}
            if merge != "sum":
                table["merge"] = merge
            return table
        if merge == "sum" and not empty:
            for i in (0, 1):
                sc, main = branches[i], branches[1 - i]
                if _is_projection(sc, main, c_in, c_out):
                    return {"type": "residual", "shortcut": "auto", "main": main}
    return {"type": "parallel", "merge": merge, "branches": branches}


def _channels(value) -> int:
    return value.sizes.get("C", 0)


def _strides(layers):
    t = h = w = 1
    for raw in layers:
        if "block" in raw:
            return None
        if raw.get("kind") in ("conv", "avgpool", "maxpool") and not raw.get("global"):
            default = raw.get("kernel", 1) if raw["kind"] != "conv" else 1
            s = raw.get("stride", default)
            s = s if isinstance(s, list) else [s] * 3
            s = s + [1] * (3 - len(s))
            t, h, w = t * s[0], h * s[1], w * s[2]
    return (t, h, w)


def _is_projection(sc, main, c_in, c_out) -> bool:
    """The shortcut comem's ``shortcut = "auto"`` builds: a 1x1x1 conv without
    bias at the main branch's stride, then an affine batch norm."""
    if len(sc) != 2 or sc[0].get("kind") != "conv" or sc[1].get("kind") != "batchnorm":
        return False
    conv, bn = sc
    if conv.get("bias", True) or conv.get("groups", 1) != 1 or conv.get("padding") or bn.get("affine", True) is False:
        return False
    kernel = conv["kernel"] if isinstance(conv["kernel"], list) else [conv["kernel"]]
    if any(k != 1 for k in kernel) or conv.get("dilation"):
        return False
    stride = _strides(main)
    s = conv.get("stride", 1)
    s = tuple((s if isinstance(s, list) else [s] * len(kernel)) + [1] * (3 - len(kernel)))
    return stride is not None and s == stride and (c_in != c_out or any(v != 1 for v in stride)) and \
        conv.get("out") == c_out


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
