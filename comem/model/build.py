"""Phase 1: turn a :class:`~comem.spec.Spec` into a tree of layer nodes.

Everything that does not depend on the input clip and size is fixed here:
which layers exist, their channels, kernels, strides and groups, how many
times each repeated block occurs.  The tree is cached per (spec, parameter
overrides, symbols) and then evaluated (phase 2, :mod:`comem.model.walk`) for
any clip/size — Python ints, sympy symbols or numpy arrays.

Repeated blocks are *not* unrolled: a stage of ``N`` blocks becomes its
first block plus one node per cycle variant with a ``multiplicity``.
That keeps evaluation cheap and lets ``N`` be symbolic (a
symbolic depth factor).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from comem.core import shim
from comem.errors import ComemError, suggest
from comem.core.expr import evaluate as eval_value
from comem.core.expr import to_exact
from comem.layers import KINDS
from comem.layers.nodes import LayerNode, SeqNode, StageNode, total_stride, walk_streams
from comem.core.vocab import Align, BlockType, Merge
from comem.spec.schema import Spec


@dataclass
class Graph:
    spec: Spec
    stages: list
    params: dict
    in_channels: int
    continual_problem: str | None = None
    symbols: dict = field(default_factory=dict)
    spatial_stride: int = 1  # along the height (the joints of a 2D model)
    temporal_stride: int = 1
    width_stride: int = 1
    #: parameters whose value differs from the spec's (or that are symbols):
    #: the graph is another network than the one the spec's errata describe
    changed_params: tuple = ()
    #: some [[constraints]] rule depends on the frame size
    constraints_use_size: bool = False


MAX_BLOCKS = 10_000


class _Builder:
    def __init__(self, spec: Spec, params: dict):
        self.spec = spec
        self.params = params
        self.dims = spec.dims
        self.continual_problem = None

    def fail(self, where, msg):
        raise ComemError(f"spec {self.spec.name}: {where}: {msg}")

    # -- layers -------------------------------------------------------------
    def build_list(self, layers, env, c_in, path, stage, blocks, multiplicity):
        children = []
        c = c_in
        for i, raw in enumerate(layers):
            node, c = self.build_layer(raw, env, c, path, stage, blocks, multiplicity, i)
            if node is not None:
                children.append(node)
        return children, c

    def build_layer(self, raw, env, c_in, path, stage, blocks, multiplicity, index):
        where = f"{path}[{index}]" if not raw.get("name") else f"{path}.{raw['name']}"
        if "when" in raw:
            cond = shim.structural(eval_value(raw["when"], env, f"{where}: 'when'"))
            if not isinstance(cond, bool):
                if shim.is_concrete(cond):
                    cond = bool(cond)
                else:
                    self.fail(where, "'when' cannot depend on a symbolic parameter")
            if not cond:
                return None, c_in
        if "block" in raw:
            return self.build_block_ref(raw, env, c_in, path, stage, blocks, multiplicity, where)
        kind = KINDS[raw["kind"]]
        name = raw.get("name") or f"{kind.name}{index}"
        lpath = f"{path}.{name}"
        if kind.composite:
            return kind.expand(self, raw, env, c_in, lpath, stage, blocks, multiplicity)
        fenv = dict(env)
        fenv["c_in"] = c_in

        def evaluate(key, default):
            if key not in raw:
                return default
            if key in kind.text_fields:  # a word, not an expression
                return raw[key]
            return eval_value(raw[key], fenv, f"{lpath}: {key!r}")

        try:
            cfg = kind.configure(raw, evaluate, c_in, self.dims)
        except ComemError as exc:
            msg = str(exc)
            if msg.startswith(f"{lpath}:"):
                raise
            self.fail(lpath, msg)
        if raw.get("functional"):
            cfg["functional"] = "regular" if raw["functional"] == "regular" else True
        problem = kind.continual_ok(cfg)
        if problem and self.continual_problem is None:
            self.continual_problem = f"{lpath}: {problem}"
        node = LayerNode(kind=kind, cfg=cfg, name=name, path=lpath, stage=stage, label=raw.get("label"),
                         blocks=blocks, multiplicity=multiplicity)
        return node, kind.out_channels(cfg, c_in)

    def build_block_ref(self, raw, env, c_in, path, stage, blocks, multiplicity, where):
        block = self.spec.blocks[raw["block"]]
        benv = dict(self.params)
        explicit = raw.get("args") or {}
        for k, v in explicit.items():
            benv[k] = eval_value(v, env, f"{where}: argument {k!r}")
        for k, v in block.args.items():
            if k not in explicit:
                benv[k] = eval_value(v, benv, f"{where}: block argument {k!r}")
        name = raw.get("name") or block.name
        return self.instantiate_block(block, benv, c_in, f"{path}.{name}", stage, blocks, multiplicity,
                                      raw.get("label"))

    def instantiate_block(self, block, env, c_in, path, stage, blocks, multiplicity, label=None):
        if block.type == BlockType.SEQUENCE:
            children, c = self.build_list(block.layers, env, c_in, path, stage, blocks, multiplicity)
            return SeqNode(children, path.rsplit(".", 1)[-1], path, stage, 1, blocks), c
        # a block of type T is the composite layer kind T (residual, parallel)
        raw = {"kind": block.type, "main": block.layers, "branches": block.layers, "shortcut": block.shortcut,
               "merge": block.merge, "label": label or block.label or block.type}
        if block.align != Align.DELAY:
            raw["align"] = block.align
        return KINDS[block.type].expand(self, raw, env, c_in, path, stage, blocks, multiplicity)

    # -- stages -------------------------------------------------------------
    def build_stage(self, st, env, c_in):
        senv = dict(env)
        for k, v in st.args.items():
            senv[k] = eval_value(v, senv, f"stage {st.name!r}: argument {k!r}")
        if st.layers is not None:
            children, c = self.build_list(st.layers, senv, c_in, st.name, st.name, None, 1)
            return SeqNode(children, st.name, st.name, st.name), c
        if st.block is None:  # a pure merge stage
            return SeqNode([], st.name, st.name, st.name), c_in
        block = self.spec.blocks[st.block]
        n = shim.structural(eval_value(st.repeat, senv, f"stage {st.name!r}: 'repeat'"))
        if shim.is_concrete(n):
            if isinstance(n, bool) or n != int(n):
                self.fail(f"stage {st.name!r}", f"'repeat' must be a whole number, got {n}")
            n = int(n)
            if n < 1:
                self.fail(f"stage {st.name!r}", f"'repeat' must be at least 1, got {n}")
            if n > MAX_BLOCKS:
                self.fail(f"stage {st.name!r}", f"'repeat' = {n} is absurdly large (limit {MAX_BLOCKS})")
        cycle = st.cycle or [{}]
        period = len(cycle)

        def block_env(i):
            benv = dict(senv)
            given = set(st.args) | set(cycle[i % period]) | (set(st.first) if i == 0 else set())
            for k, v in cycle[i % period].items():
                benv[k] = eval_value(v, senv, f"stage {st.name!r}: cycle argument {k!r}")
            benv["index"] = i
            if i == 0:
                for k, v in st.first.items():
                    benv[k] = eval_value(v, senv, f"stage {st.name!r}: first-block argument {k!r}")
            for k, v in block.args.items():
                if k not in given:
                    benv[k] = eval_value(v, benv, f"stage {st.name!r}: block argument {k!r}")
            return benv

        children = []
        first, c = self.instantiate_block(block, block_env(0), c_in, f"{st.name}.block1", st.name, (1,), 1)
        children.append(first)
        c_rest = c
        for j in range(period):
            if shim.is_concrete(n):
                idx = tuple(i + 1 for i in range(1, n) if i % period == j)
                cnt = len(idx)
                if cnt == 0:
                    continue
                label = _range_label(idx)
            else:
                cnt = shim.fdiv(n - 1 - j, period) + 1 - (1 if j == 0 else 0)
                idx = None
                label = f"v{j + 1}"
            node, c2 = self.instantiate_block(block, block_env(j if j else period), c_rest,
                                              f"{st.name}.block{label}", st.name, idx, 1)
            if _differs(c2, c_rest):
                self.fail(f"stage {st.name!r}", "repeated blocks after the first must keep their channel count")
            node.multiplicity = cnt
            children.append(node)
        return SeqNode(children, st.name, st.name, st.name), c


def _differs(a, b) -> bool:
    """Channel counts differ (at some point of a parameter grid: a split)."""
    if shim.is_concrete(a) and shim.is_concrete(b):
        return a != b
    d = a != b
    if isinstance(d, bool):
        return d
    d = shim.structural(d)
    return d if isinstance(d, bool) else False  # symbolic: cannot tell here


def _range_label(idx):
    """1-based block indices -> '2-7' or '2,4,6'."""
    if not idx:
        return ""
    if len(idx) == 1:
        return str(idx[0])
    if all(b - a == 1 for a, b in zip(idx, idx[1:])):
        return f"{idx[0]}-{idx[-1]}"
    return ",".join(str(i) for i in idx)


def build_graph(spec: Spec, overrides: dict | None = None, symbols: dict | None = None) -> Graph:
    """Phase 1 for one spec with parameter ``overrides`` (name -> value) and
    ``symbols`` (name -> sympy Symbol) replacing parameters."""
    overrides = overrides or {}
    symbols = symbols or {}
    for k in list(overrides) + list(symbols):
        if k not in spec.params:
            raise ComemError(f"model {spec.name} has no parameter {k!r}{suggest(k, spec.params)}; "
                             f"its parameters: {', '.join(spec.params) or 'none'}")
    from comem.spec.domain import check_params

    check_params(spec, overrides)  # every path that sets a parameter comes here
    env: dict[str, Any] = {}
    default: dict[str, Any] = {}
    for k, v in spec.params.items():
        default[k] = eval_value(v, default, f"spec {spec.name}: parameter {k!r}")
        if k in symbols:
            env[k] = symbols[k]
        elif k in overrides:
            env[k] = to_exact(overrides[k]) if shim.is_concrete(overrides[k]) else overrides[k]
        else:
            env[k] = eval_value(v, env, f"spec {spec.name}: parameter {k!r}")
    b = _Builder(spec, env)
    try:
        g = _build(spec, b, env, symbols)
    except ComemError as exc:
        msg = str(exc)
        raise ComemError(msg if msg.startswith("spec ") else f"spec {spec.name}: {msg}") from None
    g.changed_params = _changed_params(spec, env, default, overrides, symbols)
    from comem.core.expr import parse

    g.constraints_use_size = any(parse(rule).names & {"size", "height", "width"} for rule, _ in spec.constraints)
    return g


def _changed_params(spec, env, default, overrides, symbols) -> tuple:
    """The parameters whose value makes another network than the spec's (its
    errata do not carry over).  Over a parameter grid, the designs that are
    the spec's own network and the others are split apart; in a group of
    other networks, every swept parameter is named."""
    out, grid = [], []
    for k in spec.params:
        if k in symbols:
            out.append(k)
        elif k in overrides:
            if shim.is_concrete(env[k]):
                if env[k] != default[k]:
                    out.append(k)
            else:
                grid.append(k)
    if grid and not out:
        any_changed = None
        for k in grid:
            d = env[k] != default[k]
            any_changed = d if any_changed is None else (any_changed | d)
        if not shim.structural(any_changed):  # every design of the group is the spec's own network
            return ()
    return tuple(k for k in spec.params if k in out or k in grid)


def _build(spec, b, env, symbols):
    known = {"input"}
    nodes = []
    for st in spec.stages:
        where = f"stage {st.name!r}"
        if isinstance(st.source, list):
            for s in st.source:
                if s not in known:
                    b.fail(where, f"source stream {s!r} is not produced by an earlier stage")
            source = list(st.source)
        else:
            source = st.source or (st.stream if st.stream in known else ("main" if "main" in known else "input"))
            if source not in known:
                b.fail(where, f"source stream {source!r} is not produced by an earlier stage")
        if st.merge_into and st.merge_into not in known:
            b.fail(where, f"merge_into stream {st.merge_into!r} does not exist yet")
        known.add(st.merge_into or st.stream)
        nodes.append(StageNode(None, st.name, st.stream, source, st.merge, st.merge_into, st.label))

    def channels(values, merge, node, where):
        return sum(values[1:], values[0]) if merge == Merge.CONCAT else values[-1 if where == "merge_into" else 0]

    by_name = {st.name: st for st in spec.stages}

    def build(node, c_in):
        node.body, c_out = b.build_stage(by_name[node.name], env, c_in)
        return c_out

    c0 = spec.in_channels
    if isinstance(c0, str):
        from comem.layers.conv import positive

        c0 = eval_value(c0, env, "[model] in_channels")
        try:
            c0 = positive(c0, "[model] in_channels")
        except ComemError as exc:
            b.fail("[model]", str(exc))
    walk_streams(nodes, c0, build, channels)
    g = Graph(spec, nodes, env, c0, b.continual_problem, symbols)
    g.spatial_stride, g.temporal_stride, g.width_stride = network_strides(g)
    return g


def network_strides(graph: Graph):
    """Largest cumulative (height, time, width) stride over the streams: the
    smallest input a network is meant for."""
    acc: dict = {}
    best = [1, 1, 1]
    for st in graph.stages:
        src = st.source if isinstance(st.source, str) else st.source[0]
        t0, h0, w0 = acc.get(src, (1, 1, 1))
        t, h, w = total_stride(st.body)
        cur = (t0 * t, h0 * h, w0 * w)
        target = st.merge_into or st.stream
        acc[target] = cur if not st.merge_into else acc.get(target, cur)
        for i, v in enumerate((cur[1], cur[0], cur[2])):
            if shim.is_concrete(v):
                best[i] = max(best[i], v)
    return tuple(best)
