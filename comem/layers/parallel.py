"""``parallel`` — branches on one input, merged by a sum, a product or a
concatenation (``co.BroadcastReduce``; an Inception module, a two-branch
residual with layers on both sides).

Spec fields: ``branches`` (a list of layer lists; an empty list is the
identity), ``merge`` (``sum``, ``mul`` or ``concat``).

Adds no state of its own except the *delays* that align the branches in
time (the ``delay`` kind's formula, like ``residual``).
"""
from __future__ import annotations

from comem.core import shim
from comem.layers.nodes import ParallelNode, SeqNode
from comem.layers.base import LayerKind
from comem.layers.delay import DELAY


class Parallel(LayerKind):
    name = "parallel"
    summary = "branches on one input merged by sum / mul / concat, delay-aligned"
    fields = ("branches", "merge")
    required = ("branches",)
    nested_lists = ("branches",)
    text_fields = ("merge",)
    composite = True

    def expand(self, b, raw, env, c_in, path, stage, blocks, multiplicity):
        merge = raw.get("merge", "sum")
        if merge not in ("sum", "mul", "concat"):
            b.fail(path, f"merge must be 'sum', 'mul' or 'concat', got {merge!r}")
        branches, channels = [], []
        for i, layers in enumerate(raw["branches"]):
            children, c = b.build_list(layers, env, c_in, f"{path}.b{i}", stage, blocks, multiplicity)
            branches.append(SeqNode(children, f"b{i}", f"{path}.b{i}", stage, 1, blocks))
            channels.append(c)
        if len(branches) < 2:
            b.fail(path, "a parallel layer needs at least two branches")
        if merge != "concat" and not all(shim.is_concrete(c) and c == channels[0] for c in channels if
                                          shim.is_concrete(c)):
            b.fail(path, f"{merge} of branches with {', '.join(map(str, channels))} channels")
        shortcut = next((i for i, br in enumerate(branches) if not br.children), None)
        node = ParallelNode(branches, merge, path.rsplit(".", 1)[-1], path, stage, "parallel",
                            raw.get("label") or "parallel", blocks, multiplicity, shortcut=shortcut, aligner=DELAY)
        c_out = sum(channels[1:], channels[0]) if merge == "concat" else channels[0]
        return node, c_out


PARALLEL = Parallel()
