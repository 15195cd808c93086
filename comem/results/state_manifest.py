"""The state manifest of a continual model: every tensor its step reads and
writes, in order, with its owner, role, shape, dtype, bytes and initial value.

Each layer kind declares its own tensors (``LayerKind.state_tensors`` in
``comem/layers/<kind>.py``); this module walks the layer tree once and puts
them in the order, and under the names, of the profile they belong to:

``continual-inference``
    the order of continual-inference 1.2.4's ``_state_shape`` (what
    ``co.onnx.export`` turns into graph inputs ``s0…sN`` and outputs
    ``ns0…nsN``): the modules of each ``co.Sequential`` in order, the
    branches of a ``co.BroadcastReduce`` in order, each aligned branch
    followed by its ``co.Delay``; a ``co.Residual`` (an identity shortcut)
    puts its delay first.  Names are the graph's ``s{i}``.
``stream-buffer``
    MoViNet's stream state (tensorflow/models
    ``official/projects/movinet/modeling/movinet.py``,
    ``_get_initial_state_shapes``): ``state_<stage>[_<block>]_<name>`` in
    layer order — ``stream_buffer``, ``pool_buffer``, ``pool_frame_count``.
``paper`` (and any other profile)
    the layers in their order, each tensor named ``<layer path>.<name>``.

Totals: the float tensors' elements sum to the report's state floats (the
equations' value where a printed erratum differs); indices and counters are
integers, listed and totalled apart.

JSON shape (``StateManifest.to_dict``), for deployment scripts::

    {"model", "profile", "naming", "clip", "size", "batch", "dtype",
     "bytes_per_float",
     "tensors": [{"index", "name", "output_name", "path", "row", "kind", "tensor",
                  "role", "shape", "batch_axis", "dtype", "elements", "bytes",
                  "init"}, ...],
     "totals": {"tensors", "state_floats", "state_bytes", "integer_tensors",
                "integer_elements", "integer_bytes", "bytes"}}

``shape`` is at the manifest's batch; ``batch_axis`` the axis that grows with
the number of streams (``null`` for scalars); ``init`` a number, or
``"-inf"``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from comem.core import shim
from comem.errors import ComemError
from comem.layers.base import STATE_ROLES, BatchAxis, Env, Shape
from comem.layers.nodes import LayerNode, ParallelNode, SeqNode, total_stride
from comem.results.formats import Table, render_tables

#: bytes of the integer dtypes a state may hold
INT_BYTES = {"int64": 8, "int32": 4}
#: the float dtype names of comem's dtypes (ONNX / numpy spelling)
FLOAT_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp64": "float64", "int8": "int8"}
#: naming by base profile
NAMING = {"continual-inference": "onnx", "stream-buffer": "movinet"}
#: formats besides comem's own
EXTRA_FORMATS = ("c-header",)


@dataclass
class StateEntry:
    """One state tensor of the manifest (exact ints)."""
    index: int
    name: str
    output_name: str | None
    path: str
    #: the report row it belongs to (repeated blocks share one row)
    row: str
    kind: str
    tensor: str
    role: str
    shape: tuple
    batch_axis: int | None
    dtype: str
    elements: int
    bytes: int
    init: Any
    is_float: bool

    def to_dict(self) -> dict:
        return {"index": self.index, "name": self.name, "output_name": self.output_name, "path": self.path,
                "row": self.row, "kind": self.kind, "tensor": self.tensor, "role": self.role, "shape": list(self.shape),
                "batch_axis": self.batch_axis, "dtype": self.dtype, "elements": self.elements, "bytes": self.bytes,
                "init": self.init}


@dataclass
class StateManifest:
    model: str
    profile: str
    naming: str
    clip: int
    size: int
    width: int
    batch: int
    dtype: str
    bytes_per_float: int
    tensors: list = field(default_factory=list)

    # ---- totals ---------------------------------------------------------------
    @property
    def state_floats(self) -> int:
        return sum(t.elements for t in self.tensors if t.is_float)

    @property
    def state_bytes(self) -> int:
        return sum(t.bytes for t in self.tensors if t.is_float)

    @property
    def integer_elements(self) -> int:
        return sum(t.elements for t in self.tensors if not t.is_float)

    @property
    def integer_bytes(self) -> int:
        return sum(t.bytes for t in self.tensors if not t.is_float)

    @property
    def bytes(self) -> int:
        return self.state_bytes + self.integer_bytes

    def totals(self) -> dict:
        return {"tensors": len(self.tensors), "state_floats": self.state_floats, "state_bytes": self.state_bytes,
                "integer_tensors": sum(1 for t in self.tensors if not t.is_float),
                "integer_elements": self.integer_elements, "integer_bytes": self.integer_bytes,
                "bytes": self.bytes}

    # ---- output ---------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"model": self.model, "profile": self.profile, "naming": self.naming, "clip": self.clip,
                "size": self.size, "width": self.width, "batch": self.batch, "dtype": self.dtype,
                "bytes_per_float": self.bytes_per_float, "tensors": [t.to_dict() for t in self.tensors],
                "totals": self.totals()}

    def tables(self, fmt: str = "table") -> list[Table]:
        onnx = self.naming == "onnx"
        human = fmt not in ("csv", "json")
        headers = ["#", "name"] + (["output"] if onnx else []) + ["layer", "tensor", "role", "shape", "dtype",
                                                                   "elements", "bytes", "init"]
        rows = []
        for t in self.tensors:
            shape = ("×".join(str(d) for d in t.shape) if t.shape else "scalar") if human else list(t.shape)
            rows.append([t.index, t.name] + ([t.output_name] if onnx else []) +
                        [t.path, t.tensor, t.role, shape, t.dtype, t.elements, t.bytes, t.init])
        tot = self.totals()
        notes = [f"{tot['tensors']} tensors; state: {self.state_floats:,} floats = {self.state_bytes:,} bytes "
                 f"({self.dtype}); indices and counters: {tot['integer_tensors']} tensors, "
                 f"{self.integer_elements:,} integers = {self.integer_bytes:,} bytes",
                 f"shapes at batch {self.batch}; the batch axis grows with the number of streams"]
        title = f"{self.model}: state tensors ({self.profile}, {self.naming} names, {self.clip} frames)"
        n = len(headers)
        return [Table(title, headers, rows, notes=notes, numeric=(0, n - 3, n - 2)),
                Table("totals", ["quantity", "value"], [[k, v] for k, v in tot.items()], numeric=(1,))]

    def render(self, fmt: str = "table") -> str:
        if fmt == "c-header":
            return c_header(self)
        if fmt == "json":
            import json

            return json.dumps(self.to_dict(), indent=2)
        return render_tables(self.tables(fmt), fmt)


def _c_ident(text: str) -> str:
    s = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").upper()
    return s if s and not s[0].isdigit() else "S_" + s


def c_header(m: StateManifest) -> str:
    """The manifest as a C header: one ``comem_state_tensor`` entry per tensor
    (name, dtype, rank, shape at the manifest's batch, batch axis, bytes,
    initial value) and the totals as macros."""
    guard = _c_ident(f"COMEM_STATE_{m.model}_H")
    pre = _c_ident(m.model)
    ctype = {"int64": 2, "int32": 3}
    lines = [f"/* state manifest of {m.model} ({m.profile}), batch {m.batch}, {m.dtype}: generated by comem */",
             f"#ifndef {guard}", f"#define {guard}", "#include <stdint.h>", "",
             "typedef struct {", "    const char *name;       /* graph input name */",
             "    const char *output;     /* graph output name, or 0 */", "    const char *layer;",
             "    int dtype;              /* 1: float state, 2: int64, 3: int32 */", "    int rank;",
             "    int64_t shape[8];", "    int batch_axis;         /* -1: none */", "    int64_t bytes;",
             "    double init;            /* every element starts at this value */", "} comem_state_tensor;", "",
             f"#define {pre}_STATE_TENSORS {len(m.tensors)}",
             f"#define {pre}_STATE_FLOATS {m.state_floats}LL",
             f"#define {pre}_STATE_BYTES {m.state_bytes}LL",
             f"#define {pre}_INTEGER_BYTES {m.integer_bytes}LL",
             f"#define {pre}_BYTES_PER_FLOAT {m.bytes_per_float}", "",
             f"static const comem_state_tensor {pre.lower()}_state[{max(len(m.tensors), 1)}] = {{"]
    for t in m.tensors:
        shape = ", ".join(str(d) for d in t.shape) or "0"
        init = "-1.0/0.0" if t.init == "-inf" else repr(float(t.init))
        out = f'"{t.output_name}"' if t.output_name else "0"
        lines.append(f'    {{"{t.name}", {out}, "{t.path}", {ctype.get(t.dtype, 1)}, {len(t.shape)}, {{{shape}}}, '
                     f'{-1 if t.batch_axis is None else t.batch_axis}, {t.bytes}LL, {init}}},')
    if not m.tensors:
        lines.append('    {0, 0, 0, 0, 0, {0}, -1, 0LL, 0.0},')
    lines += ["};", f"#endif /* {guard} */"]
    return "\n".join(lines)


# ---- the walk -------------------------------------------------------------------

class _Walk:
    def __init__(self, graph, rows, knobs: Env, dims: int, library_order: bool):
        self.knobs, self.dims, self.library = knobs, dims, library_order
        self.rows: dict = {}
        self.aligners: dict = {}
        for r in rows:
            if r.role == "alignment":
                self.aligners.setdefault(r.path, []).append(r)
            else:
                self.rows.setdefault(r.path, r)
        self.out: list = []  # (instance path, kind, StateTensor)

    # (rf, pad, stride) of a node, composed as the walker composes them
    def temporal(self, node):
        if isinstance(node, LayerNode):
            r = self.rows[node.path]
            return r.rf, r.padding, r.stride
        if isinstance(node, SeqNode):
            rf, pad, stride = 1, 0, 1
            for ch in node.children:
                crf, cpad, cs = self.temporal(ch)
                n = ch.multiplicity
                rf, pad, stride = rf + (crf - 1) * stride * n, pad + cpad * stride * n, stride * cs
            return rf, pad, stride
        return self.parallel_plan(node)[0]

    def parallel_plan(self, node: ParallelNode):
        """((rf, pad, stride), [alignment row or None per branch])."""
        res = [self.temporal(b) for b in node.branches]
        centre = node.align == "centre" and node.shortcut is not None
        delays = [(rf - 1) // 2 if centre else rf - 1 - p for rf, p, _ in res]
        D = max(delays)
        rows = list(self.aligners.get(f"{node.path}.{node.aligner.name}", [])) if node.aligner else []
        plan, rfs = [], []
        for branch, (rf, p, s), d in zip(node.branches, res, delays):
            extra = D - d
            if extra == 0:
                plan.append(None)
                rfs.append(rf)
                continue
            at_input = self.knobs["residual_delay"] == "block-input" or not branch.children
            if not rows:
                raise ComemError(f"{node.path}: the report has no alignment delay for a branch that needs one")
            plan.append(rows.pop(0))
            rfs.append(rf + (extra if at_input else (extra // s) * s))
        return (max(rfs), max(p for _, p, _ in res), res[0][2]), plan

    def layer(self, node: LayerNode, path: str):
        r = self.rows.get(node.path)
        if r is None:
            raise ComemError(f"{node.path}: no row in the report (is the model continual?)")
        for t in node.kind.state_tensors(node.cfg, r.x, r.y, self.knobs):
            self.out.append((path, node.path, node.kind.name, t))

    def aligner(self, node: ParallelNode, row, path: str, shrink: bool):
        cfg = dict(row.cfg, dims=self.dims, shrink=shrink)
        for t in row.kind.state_tensors(cfg, row.x, row.y, self.knobs):
            self.out.append((f"{path}.{row.kind.name}", row.path, row.kind.name, t))

    def node(self, node, path: str):
        if isinstance(node, LayerNode):
            self.layer(node, path)
        elif isinstance(node, SeqNode):
            self.seq(node, path)
        else:
            self.parallel(node, path)

    def seq(self, seq: SeqNode, path: str):
        items = []
        for ch in seq.children:
            blocks = ch.blocks
            if blocks and ch.multiplicity != 1:
                items += [(b, ch, True) for b in blocks]
            else:
                items.append((blocks[0] if blocks else None, ch, False))
        if items and all(b is not None for b, _, _ in items):
            items.sort(key=lambda it: it[0])
        for b, ch, repeated in items:
            sub = _rebase(ch.path, seq.path, path)
            if repeated:  # one copy per block index: name it by its own index
                head, _, last = sub.rpartition(".")
                sub = (head + "." if head else "") + re.sub(r"[0-9][0-9,\-]*$", str(b), last)
            self.node(ch, sub)

    def parallel(self, node: ParallelNode, path: str):
        _, plan = self.parallel_plan(node)
        skip = node.shortcut
        centre = node.align == "centre" and skip is not None and len(node.branches) == 2
        strided = any(total_stride(b)[0] != 1 for b in node.branches)
        # continual-inference's co.Residual (an identity shortcut) keeps its delay before the branch
        residual_first = (self.library and skip is not None and len(node.branches) == 2
                          and not node.branches[skip].children and (centre or not strided))
        if residual_first and plan[skip] is not None:
            self.aligner(node, plan[skip], path, shrink=centre)
        for i, branch in enumerate(node.branches):
            self.seq(branch, _rebase(branch.path, node.path, path))
            if plan[i] is not None and not (residual_first and i == skip):
                self.aligner(node, plan[i], path, shrink=centre and self.library)


def _rebase(child: str, old: str, new: str) -> str:
    """``child``'s path under ``new`` instead of ``old`` (a repeated block's copy)."""
    if old == new or not child.startswith(old):
        return child
    return new + child[len(old):]


def build_manifest(graph, rows, knobs: dict, profile_name: str, *, model: str, clip: int, size: int, width=None,
                   batch: int = 1, dtype: str = "fp32", bytes_per_float: int = 4, dims: int = 3,
                   profile_label: str | None = None) -> StateManifest:
    """The manifest of a continual model from its layer tree (``graph``) and
    the rows of its walk (:attr:`comem.results.report.Report.rows`), at
    ``batch`` streams.  ``profile_name`` (the base profile) picks the order
    and names (:data:`NAMING`)."""
    width = size if width is None else width
    if not all(shim.is_concrete(v) for v in (clip, size, width)):
        raise ComemError("a state manifest needs a concrete clip and frame size")
    env = Env(knobs, Shape(graph.in_channels, clip, size, width), bytes_per_float, batch)
    naming = NAMING.get(profile_name, "path")
    w = _Walk(graph, rows, env, dims, library_order=naming == "onnx")
    for st in graph.stages:
        if isinstance(st.source, list) or st.merge_into:
            raise ComemError(f"{model}: a multi-stream model has no state manifest (no continual form)")
        w.seq(st.body, st.body.path)
    m = StateManifest(model, profile_label or profile_name, naming, clip, size, width, batch, dtype, bytes_per_float)
    for i, (path, row, kind, t) in enumerate(w.out):
        if t.role not in STATE_ROLES and t.role != "state":
            raise ComemError(f"{path}: state tensor role {t.role!r} is not one of {', '.join(STATE_ROLES)}")
        shape, axis = [], None
        for k, d in enumerate(t.shape):
            if isinstance(d, BatchAxis):
                axis = k
                d = d.at(batch)
            if not shim.is_concrete(d):
                raise ComemError(f"{path}: state shape {t.shape} is not concrete")
            shape.append(int(d))
        n = t.numel(batch)
        each = bytes_per_float if t.is_float else INT_BYTES[t.dtype]
        dt = FLOAT_NAMES.get(dtype, dtype) if t.is_float else t.dtype
        if naming == "onnx":
            name, out = f"s{i}", f"ns{i}"
        elif naming == "movinet":
            parts = path.split(".")
            name, out = "state_" + "_".join(parts[:2] if len(parts) > 2 else parts[:1]) + "_" + t.name, None
        else:
            name, out = f"{path}.{t.name}", None
        init = t.init if isinstance(t.init, str) else int(t.init)
        m.tensors.append(StateEntry(i, name, out, path, row, kind, t.name, t.role, tuple(shape), axis, dt, int(n),
                                    int(n) * each, init, t.is_float))
    return m


def manifest_of(report, graph) -> StateManifest:
    """The manifest of an analysed continual model (a :class:`Report`)."""
    if not report.continual:
        raise ComemError(f"{report.model} has no continual form, so no state: {report.continual_note}")
    base = report.profile.split("+", 1)[0]
    m = build_manifest(graph, report.rows, report.knobs, base, model=report.model, clip=report.clip,
                       size=report.size, width=report.width or report.size, batch=report.batch, dtype=report.dtype,
                       bytes_per_float=report.bytes_per_float, dims=report.dims, profile_label=report.profile)
    expected = report.state_floats_consistent if report.state_floats_consistent is not None else report.state_floats
    if m.state_floats != expected:
        raise ComemError(f"{report.model}: the state tensors hold {m.state_floats:,} floats but the report's state "
                         f"is {expected:,}; a layer kind's state_tensors disagrees with its state formula")
    return m
