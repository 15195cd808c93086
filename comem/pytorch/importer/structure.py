"""From a traced dataflow graph to comem's structure: sequences, parallel
merges (residuals, squeeze-excitation gates, Inception-like blocks) and, for
graphs that are not series-parallel (SlowFast's lateral connections), named
streams.

1. Ops that do not lead to the output are dropped.
2. Every fork whose branches meet again at one merge, with nothing leaving
   the region, is collapsed into one *parallel* op holding its branches —
   innermost first, so nested blocks nest.
3. What is left is either one chain (most networks) or a graph of chains
   between forks and merges, written as stages over streams.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from comem.errors import ComemError
from comem.pytorch.importer.trace import Op

INPUT = "input"


@dataclass
class Chain:
    """A stage: the ops from one stream (or a merge of several) to the next."""
    ops: list
    sources: list = field(default_factory=list)  # producing chains' names, or INPUT
    merge: str | None = None
    name: str = ""


class Graph:
    def __init__(self, ops: list, output_op):
        self.ops = _live(ops, output_op)
        self.output = output_op
        self.replaced: dict = {}

    def parent(self, value):
        op = value.producer
        while op in self.replaced:
            op = self.replaced[op]
        return op if op is not None else INPUT

    def parents(self, op) -> list:
        return [self.parent(v) for v in op.inputs]

    def users(self) -> dict:
        out: dict = {INPUT: []}
        for op in self.ops:
            out.setdefault(op, [])
            for p in self.parents(op):
                out.setdefault(p, []).append(op)
        return out

    # -- collapsing series-parallel regions ----------------------------------------
    def collapse(self):
        """Collapse closed fork/merge regions into parallel ops until none is left."""
        while True:
            users = self.users()
            order = {op: i for i, op in enumerate(self.ops)}
            order[INPUT] = -1
            forks = sorted((n for n, us in users.items() if len(us) > 1), key=lambda n: -order[n])
            for fork in forks:
                if self._collapse_fork(fork, users, order):
                    break
            else:
                return

    def _collapse_fork(self, fork, users, order) -> bool:
        merge = self._meeting_merge(fork, users, order)
        if merge is None:
            return False
        branches, ends = [], []
        for u in users[fork]:
            if u is merge:
                branches.append([])
                ends.append(fork)
                continue
            branch, op = [], u
            while True:
                if op.is_merge or len(self.parents(op)) != 1 or len(users.get(op, [])) != 1:
                    return False
                branch.append(op)
                nxt = users[op][0]
                if nxt is merge:
                    break
                op = nxt
            branches.append(branch)
            ends.append(branch[-1])
        inputs = self.parents(merge)
        if sorted(map(id, inputs)) != sorted(map(id, ends)):
            return False
        ordered = []
        for p in inputs:  # branches in the merge's argument order
            i = next(k for k, e in enumerate(ends) if e is p)
            ordered.append(branches[i])
            ends[i] = None
        fork_value = next(v for v in (users[fork][0].inputs) if self.parent(v) is fork)
        par = Op(None, [fork_value], merge.output, _common_path(merge, ordered), merge.merge, ordered)
        region = {id(op) for b in branches for op in b} | {id(merge)}
        at = self.ops.index(merge)
        self.ops = [op for op in self.ops[:at] if id(op) not in region] + [par] + \
                   [op for op in self.ops[at + 1:] if id(op) not in region]
        self.replaced[merge] = par
        return True

    def _meeting_merge(self, fork, users, order):
        """The first merge every branch from ``fork`` reaches."""
        reach = []
        for u in users[fork]:
            seen, todo = set(), [u]
            while todo:
                op = todo.pop()
                if id(op) in seen:
                    continue
                seen.add(id(op))
                todo.extend(users.get(op, []))
            reach.append(seen)
        common = set.intersection(*reach)
        candidates = [op for op in self.ops if id(op) in common]
        if not candidates:
            return None
        first = candidates[0]
        return first if first.is_merge else None

    # -- what is left ----------------------------------------------------------------
    def chains(self) -> list:
        """The ops as chains between stream points (one chain: a sequence)."""
        users = self.users()
        chains: list = []
        chain_of: dict = {}

        def start(op, sources, merge=None):
            c = Chain([] if merge else [op], sources, merge)
            chains.append(c)
            chain_of[op] = c
            return c

        for op in self.ops:
            parents = self.parents(op)
            if op.is_merge:
                c = start(op, [chain_of.get(p, INPUT) if p is not INPUT else INPUT for p in parents], op.merge)
                chain_of[op] = c
                continue
            p = parents[0]
            owner = chain_of.get(p) if p is not INPUT else None
            if p is INPUT:
                if len(users[INPUT]) == 1 and not chains:
                    start(op, [INPUT])
                else:
                    start(op, [INPUT])
                continue
            if len(users[p]) == 1 and owner is not None and owner.ops and owner.ops[-1] is p:
                owner.ops.append(op)
                chain_of[op] = owner
            elif len(users[p]) == 1 and owner is not None and not owner.ops:  # the layers after a merge
                owner.ops.append(op)
                chain_of[op] = owner
            else:
                start(op, [owner])
        return chains


def _live(ops, output_op) -> list:
    """The ops the output depends on, in execution order."""
    need, todo = set(), [output_op]
    while todo:
        op = todo.pop()
        if op is None or id(op) in need:
            continue
        need.add(id(op))
        todo.extend(v.producer for v in op.inputs)
    return [op for op in ops if id(op) in need]


def structure(ops, output_value):
    """(chains, single) — one chain when the graph is series-parallel."""
    if output_value.producer is None:
        raise ComemError("the model returns its input unchanged")
    g = Graph(ops, output_value.producer)
    g.collapse()
    chains = g.chains()
    return chains, g


def shared_prefix(paths: list) -> list:
    """The longest leading run of names every dotted module path (split into
    names) shares: the deepest module holding them all."""
    common = paths[0]
    for p in paths[1:]:
        n = 0
        while n < min(len(common), len(p)) and common[n] == p[n]:
            n += 1
        common = common[:n]
    return common


def _common_path(merge, branches) -> str:
    """Where a parallel region lives: the merge's module, or — for glue in
    the model's own forward (``x + self.res(x)``) — the deepest module that
    holds every op of its branches."""
    if merge.path:
        return merge.path
    paths = [op.path.split(".") for b in branches for op in b if op.path]
    if not paths or any(not op.path for b in branches for op in b):
        return merge.path
    common = shared_prefix(paths)
    # the region's own module is a parent of its ops, not one of them
    return ".".join(common[:-1]) if common == paths[0] and len(paths) == 1 else ".".join(common)
