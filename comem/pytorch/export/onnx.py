"""Export a continual model's step with continual-inference's exporter
(``co.onnx.export``) and hold comem's state manifest against it and against
ONNX Runtime.

* :func:`export_step` — ``co.onnx.export`` on torch 2.13: the library passes
  ``dynamic_axes``, which torch 2.13's default (dynamo) exporter refuses
  ("Failed to convert 'dynamic_axes' to 'dynamic_shapes'"); the call is made
  with the TorchScript exporter (``dynamo=False``), which still takes them.
* :func:`library_state_order` — the state tensors the library's
  ``OnnxWrapper`` feeds the graph, read from the modules (``_state_shape``
  in module order), each with the module that owns it.
* :func:`check_export` — compare the exported graph's state inputs and
  outputs with the manifest one by one (name, shape, dtype, order), run steps
  in ONNX Runtime from comem's initial values and compare the outputs with
  the PyTorch model's own steps, and read what one stream costs on the
  runtime (:class:`StreamMemory`).

The traced graph fixes the library's data-dependent branches (a step's
"no output yet" while the model fills its receptive field, a temporal
stride's skipped steps) at the state it was traced in: the graph always
emits, and runs every layer on every step — also while the library's
later layers still wait for their first input.  Started from comem's
initial values, its outputs are the library's once every layer's receptive
field holds real frames (from step ``receptive_field − 1 + delay`` on);
they are compared on the steps the PyTorch model emits from then on.  A
model whose temporally strided layer feeds stateful layers cannot be
streamed as one step graph (:data:`UNEXPORTABLE`); its graph's state is
still checked.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import torch

from comem.errors import ComemError

#: continual-inference modules whose step the traced ONNX graph cannot
#: represent, and why (one line each)
UNEXPORTABLE = {
    "temporal stride": "a temporally strided module emits on every s-th step only; tracing fixes one step's "
                       "branch, so one exported graph cannot stream it",
    "empty buffer": "a convolution with a one-frame kernel and a temporal stride keeps a buffer of 0 frames; "
                    "the TorchScript exporter crashes the process (SIGFPE) on its indexing, so it is not exported",
    "auto_shrink": "co.Delay(auto_shrink=True) (a centred shortcut) starts its index at -2 x delay and the traced "
                   "graph reads buffer[index] on every step: ONNX Runtime refuses the index while it is out of "
                   "bounds, so the first steps cannot run from the library's initial values",
    "RetroactiveUnity": "co.RetroactiveUnity (a retroactive encoder's residual) rolls its buffer by int(index), "
                        "a Python number the trace fixes, so one exported graph cannot stream it",
}

ONNX_DTYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16", 7: "int64", 6: "int32"}
NP_DTYPES = {"float32": np.float32, "float16": np.float16, "float64": np.float64, "int64": np.int64,
             "int32": np.int32}


def _need():
    from comem.pytorch import require_extra

    require_extra()
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        from comem.errors import MissingExtraError

        raise MissingExtraError(f"the ONNX export needs onnx and onnxruntime ({exc.name} is missing); install "
                                "them with: pip install 'comem[export]'") from None


def export_step(model, x_step, state, f=None, opset: int = 17) -> bytes:
    """Export ``model``'s step with ``co.onnx.export`` (input ``input``,
    output ``output``, state ``s0…``/``ns0…``); ``state`` is the flat list of
    state tensors to trace with.  Returns the ONNX bytes (also written to
    ``f`` when given)."""
    _need()
    import continual as co
    import continual.onnx as conx

    original = conx.torch.onnx.export

    def torchscript_export(*args, **kwargs):
        kwargs.setdefault("dynamo", False)  # torch 2.13: the TorchScript exporter takes dynamic_axes
        return original(*args, **kwargs)

    buf = io.BytesIO()
    training = model.training
    conx.torch.onnx.export = torchscript_export
    try:
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            co.onnx.export(model, (x_step, *state), buf, input_names=["input"], output_names=["output"],
                           opset_version=opset, do_constant_folding=True)
    finally:
        conx.torch.onnx.export = original
        # the exporter restores the mode of co.onnx's wrapper module (a new module, in training mode),
        # which would leave the model training: give it back its own
        model.train(training)
    data = buf.getvalue()
    if f is not None:
        with open(f, "wb") as fh:
            fh.write(data)
    return data


def library_state_order(model) -> list:
    """``[(module name, position in the module's state)]`` in the order
    continual-inference flattens ``model._state_shape`` (its ONNX inputs)."""
    out = []

    def visit(m, name):
        shape = m._state_shape
        if isinstance(shape, int):
            out.extend((name, i) for i in range(shape))
            return
        children = list(m._modules.items())
        if len(children) != len(shape):
            raise ComemError(f"{name or 'model'}: {len(shape)} state groups for {len(children)} modules")
        for (key, child), _ in zip(children, shape):
            visit(child, f"{name}.{key}" if name else key)

    visit(model, "")
    return out


def warm_up(model, frames):
    """Run ``model``'s step over ``frames`` (B, C, T, ...) threading its state
    (``_forward_step``); returns (outputs per step, the flat state)."""
    from continual.utils import flatten

    state, outs = None, []
    with torch.no_grad():
        for i in range(frames.shape[2]):
            o, state = model._forward_step(frames[:, :, i], state)
            outs.append(o)
    return outs, [s.clone() for s in flatten(state)]


def export_blockers(model) -> list:
    """``[(module name, reason)]``: modules the TorchScript exporter cannot
    take (it would crash the process, not raise)."""
    bad = []
    for name, m in model.named_modules():
        k = getattr(m, "kernel_size", None)
        if hasattr(m, "_stateless") and isinstance(k, tuple) and k[0] == 1 and not m._stateless:
            bad.append((name, UNEXPORTABLE["empty buffer"]))
    return bad


def _reasons(found) -> str:
    """One line per distinct reason, with the first module it concerns."""
    seen = {}
    for name, why in found:
        seen.setdefault(why, name)
    return "; ".join(f"{name}: {why}" for why, name in seen.items())


def unstreamable(model) -> list:
    """``[(module name, reason)]``: the modules whose step one traced graph
    may not reproduce (:data:`UNEXPORTABLE`)."""
    from continual.module import CoModule

    bad = []
    for name, m in model.named_modules():
        s = getattr(m, "stride", None)
        if type(m).__name__ in UNEXPORTABLE:
            bad.append((name, UNEXPORTABLE[type(m).__name__]))
        elif getattr(m, "auto_shrink", False) is True and getattr(m, "delay", 0) > 0:
            bad.append((name, UNEXPORTABLE["auto_shrink"]))
        elif isinstance(m, CoModule) and isinstance(s, tuple) and s and isinstance(s[0], int) and s[0] > 1 \
                and isinstance(m._state_shape, int):
            bad.append((name, UNEXPORTABLE["temporal stride"]))
    return bad


@dataclass
class TensorCheck:
    index: int
    comem: tuple  # (name, output name, shape, dtype)
    graph: tuple  # (name, output name, shape, dtype) as the ONNX graph has it
    library_dynamic: bool  # the library marks the tensor's axis 0 "batch"
    ok: bool


@dataclass
class StreamMemory:
    """What one stream costs on ONNX Runtime's CPU provider, and N streams.

    ``weights_bytes``: the graph's float initializers and constants (measured:
    the model's parameters and batch-norm statistics); ``constants_bytes``
    its integer constants; ``state_bytes``:
    the manifest's tensors (floats and integers); ``largest_intermediate``:
    the largest tensor one step computes (shape inference over the graph,
    ONNX Runtime's own per-node output sizes where its profile gives them);
    ``peak_intermediates``: the peak of simultaneously live intermediate
    tensors in the graph's node order (a tensor lives from its node to its
    last consumer); ``transient_bytes``: comem's transient of one step
    (the report's, for comparison)."""
    weights_bytes: int
    params_bytes: int
    #: integer constants of the graph (the library's index tensors), held once like the weights
    constants_bytes: int
    state_bytes: int
    largest_intermediate: int
    largest_at: str
    peak_intermediates: int
    runtime_largest_output: int | None
    transient_bytes: int
    input_bytes: int
    output_bytes: int

    def streams(self, n: int) -> int:
        """Bytes for ``n`` streams in one process: the weights once; per stream
        its state twice (ONNX Runtime takes the state as inputs and returns the
        new state as separate outputs) and, run one after another, the
        intermediates of one step at a time."""
        per_stream = 2 * self.state_bytes + self.input_bytes + self.output_bytes
        return self.weights_bytes + self.constants_bytes + n * per_stream + self.peak_intermediates

    def to_dict(self) -> dict:
        return {"weights_bytes": self.weights_bytes, "params_bytes": self.params_bytes,
                "constants_bytes": self.constants_bytes,
                "state_bytes": self.state_bytes, "largest_intermediate_bytes": self.largest_intermediate,
                "largest_intermediate_at": self.largest_at, "peak_intermediates_bytes": self.peak_intermediates,
                "runtime_largest_output_bytes": self.runtime_largest_output, "comem_transient_bytes":
                    self.transient_bytes, "input_bytes": self.input_bytes, "output_bytes": self.output_bytes,
                "one_stream_bytes": self.streams(1)}


@dataclass
class ExportCheck:
    model: str
    tensors: list = field(default_factory=list)
    names_ok: bool = False
    steps: int = 0
    compared_steps: int = 0
    max_abs_diff: float = float("nan")
    #: the first step compared (``receptive_field − 1 + delay``)
    first_compared: int = 0
    #: None where the steps cannot be run as one graph (:attr:`note` says why)
    outputs_ok: bool | None = False
    memory: StreamMemory | None = None
    owners_ok: bool = False
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.names_ok and self.owners_ok and self.outputs_ok is not False and all(t.ok for t in self.tensors)

    @property
    def failures(self) -> list:
        return [t for t in self.tensors if not t.ok]

    def to_dict(self, streams: int = 1) -> dict:
        d = {"model": self.model, "ok": self.ok, "tensors_checked": len(self.tensors),
             "tensors_equal": sum(t.ok for t in self.tensors), "order_and_count_ok": self.names_ok,
             "owners_ok": self.owners_ok, "steps": self.steps, "compared_steps": self.compared_steps,
             "max_abs_output_diff": self.max_abs_diff, "first_compared_step": self.first_compared,
             "outputs_ok": self.outputs_ok, "note": self.note,
             "mismatches": [{"index": t.index, "comem": list(t.comem), "graph": list(t.graph)}
                            for t in self.failures]}
        if self.memory is not None:
            d["memory"] = dict(self.memory.to_dict(), streams=streams, streams_bytes=self.memory.streams(streams))
        return d


def check_tables(res: "ExportCheck", streams: int = 8) -> list:
    """The check and the stream's memory as tables."""
    from comem.results.formats import Table

    rows = [["state inputs/outputs equal the manifest (name, shape, dtype, order)",
             f"{sum(t.ok for t in res.tensors)}/{len(res.tensors)}", res.names_ok and not res.failures],
            ["every tensor owned by the layer comem names", "", res.owners_ok],
            [f"ONNX Runtime from comem's initial values vs PyTorch ({res.compared_steps} of {res.steps} steps)",
             f"max |diff| {res.max_abs_diff:.3g}" if res.outputs_ok is not None else res.note, res.outputs_ok]]
    tables = [Table(f"{res.model}: the exported step (co.onnx.export, TorchScript exporter)",
                    ["check", "value", "ok"], rows)]
    mem = res.memory
    if mem is not None:
        mrows = [["weights (float initializers and constants: parameters, batch-norm statistics)", mem.weights_bytes],
                 ["parameters x bytes (comem)", mem.params_bytes],
                 ["integer constants of the graph (index tensors)", mem.constants_bytes],
                 ["state (manifest: floats and integers)", mem.state_bytes],
                 ["largest intermediate of one step (shape inference)", mem.largest_intermediate],
                 ["largest node output (ONNX Runtime profile)", mem.runtime_largest_output],
                 ["peak live intermediates of one step (graph order)", mem.peak_intermediates],
                 ["comem transient of one step", mem.transient_bytes],
                 ["one stream: weights + constants + 2 x state + input + output + intermediates",
                  mem.streams(1)],
                 [f"{streams} streams, run one after another", mem.streams(streams)]]
        tables.append(Table("deployment memory on ONNX Runtime (CPU), bytes", ["quantity", "bytes"], mrows,
                            numeric=(1,), notes=[f"largest intermediate at {mem.largest_at}"]))
    return tables


def _vi(v):
    tt = v.type.tensor_type
    shape = tuple(d.dim_param if d.dim_param else d.dim_value for d in tt.shape.dim)
    return shape, ONNX_DTYPES.get(tt.elem_type, str(tt.elem_type))


def _nbytes(shape, dtype) -> int:
    n = 1
    for d in shape:
        n *= d
    return n * np.dtype(NP_DTYPES.get(dtype, np.float32)).itemsize


def fix_state_axes(onnx_bytes, manifest) -> bytes:
    """The exported graph with each state tensor's axes as the manifest has
    them: ``co.onnx.export`` names axis 0 of every buffer "batch" (its
    ``_dynamic_state_inds``), but axis 0 of a conv, pool or delay buffer is
    its frames, so ONNX Runtime, which takes one "batch" to be one size,
    refuses the graph ("Shape mismatch attempting to re-use buffer") unless
    every buffer happens to be one frame long.  Here the batch axis comem
    names stays symbolic, every other axis is fixed, and the intermediate
    shapes the exporter recorded are dropped (the runtime infers them)."""
    import onnx

    m = onnx.load_from_string(onnx_bytes)
    by_name = {t.name: t for t in manifest.tensors}
    by_name.update({t.output_name: t for t in manifest.tensors if t.output_name})
    for v in list(m.graph.input) + list(m.graph.output):
        t = by_name.get(v.name)
        if t is None:
            continue
        dims = v.type.tensor_type.shape.dim
        for k, d in enumerate(dims):
            if k == t.batch_axis:
                d.dim_param = "batch"
            else:
                d.ClearField("dim_param")
                d.dim_value = t.shape[k]
    del m.graph.value_info[:]
    return m.SerializeToString()


def initial_state(manifest) -> list:
    """numpy arrays of every manifest tensor at its initial value."""
    out = []
    for t in manifest.tensors:
        value = -np.inf if t.init == "-inf" else t.init
        out.append(np.full(t.shape, value, dtype=NP_DTYPES[t.dtype]))
    return out


def graph_memory(onnx_bytes, manifest, transient_bytes, params_bytes, profile=True) -> StreamMemory:
    """:class:`StreamMemory` of the exported graph (batch of the manifest)."""
    import onnx
    import onnxruntime as ort

    m = onnx.load_from_string(onnx_bytes)
    # what the graph holds besides its inputs: initializers, and the tensors constant folding moved into
    # Constant nodes (a conv's reshaped bias)
    weights = sum(_nbytes(tuple(i.dims), ONNX_DTYPES.get(i.data_type, "float32")) for i in m.graph.initializer)
    index_consts = 0
    for node in m.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.t.dims:
                    size = _nbytes(tuple(a.t.dims), ONNX_DTYPES.get(a.t.data_type, "float32"))
                    if ONNX_DTYPES.get(a.t.data_type, "").startswith("float"):
                        weights += size
                    else:
                        index_consts += size
    # shape inference with the batch made concrete
    for v in list(m.graph.input) + list(m.graph.output):
        for d in v.type.tensor_type.shape.dim:
            if d.dim_param == "batch":
                d.ClearField("dim_param")
                d.dim_value = manifest.batch
    m = onnx.shape_inference.infer_shapes(m)
    sizes = {}
    for v in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input):
        shape, dtype = _vi(v)
        if all(isinstance(d, int) for d in shape):
            sizes[v.name] = _nbytes(shape, dtype)
    # weights, constants and their aliases (the exporter shares equal initializers through Identity nodes)
    consts = {i.name for i in m.graph.initializer}
    for node in m.graph.node:
        if node.op_type == "Constant" or (node.op_type == "Identity" and node.input[0] in consts):
            consts.update(node.output)
    graph_io = {v.name for v in m.graph.input} | {v.name for v in m.graph.output} | consts
    last_use = {}
    for k, node in enumerate(m.graph.node):
        for name in node.input:
            last_use[name] = k
    live, peak, largest, largest_at = {}, 0, 0, ""
    for k, node in enumerate(m.graph.node):
        for name in node.output:
            if name in graph_io or name not in sizes:
                continue
            live[name] = sizes[name]
            if sizes[name] > largest:
                largest, largest_at = sizes[name], f"{node.op_type} {node.name}"
        peak = max(peak, sum(live.values()))
        for name in [n for n in live if last_use.get(n, k) <= k]:
            del live[name]
    runtime_largest = None
    if profile:
        runtime_largest = _ort_largest_output(onnx_bytes, manifest)
    inp = next(v for v in m.graph.input if v.name == "input")
    out = next(v for v in m.graph.output if v.name == "output")
    return StreamMemory(weights, params_bytes, index_consts, manifest.bytes, largest, largest_at, peak, runtime_largest,
                        transient_bytes, _nbytes(*_vi(inp)), _nbytes(*_vi(out)))


def _ort_largest_output(onnx_bytes, manifest):
    """The largest node output ONNX Runtime's profiler reports for one step
    (``output_size`` of its node events; optimisations off, so nodes are the
    graph's)."""
    import json
    import os
    import tempfile

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as d:
        so = ort.SessionOptions()
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(d, "comem")
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(onnx_bytes, so, providers=["CPUExecutionProvider"])
        feeds = _feeds(sess, manifest, np.zeros(_input_shape(sess, manifest), np.float32), initial_state(manifest))
        sess.run(None, feeds)
        path = sess.end_profiling()
        with open(path) as fh:
            events = json.load(fh)
    sizes = [int(e["args"]["output_size"]) for e in events
             if e.get("cat") == "Node" and "output_size" in e.get("args", {})]
    return max(sizes) if sizes else None


def _input_shape(sess, manifest):
    shape = sess.get_inputs()[0].shape
    return tuple(manifest.batch if not isinstance(d, int) else d for d in shape)


def _feeds(sess, manifest, x, state):
    names = [i.name for i in sess.get_inputs()]
    feeds = {"input": x}
    for t, v in zip(manifest.tensors, state):
        feeds[t.name] = v
    return {k: v for k, v in feeds.items() if k in names}


def check_export(model, manifest, row_owners=None, steps: int = 3, seed: int = 0, transient_bytes: int = 0,
                 params_bytes: int = 0, in_channels: int = 3, frame: tuple = (), name: str = "model",
                 memory: bool = True, opset: int = 17) -> ExportCheck:
    """Export ``model`` (a continual-inference module) and check it against
    ``manifest`` (:class:`comem.results.state_manifest.StateManifest`, the
    ``continual-inference`` naming).  ``row_owners(module name) -> comem
    path or None`` maps the library's modules to comem's layer paths (the
    builder's row map); ``frame``: the spatial axes of one input frame."""
    _need()
    import onnx
    import onnxruntime as ort

    model = model.eval()
    res = ExportCheck(name)
    strided = unstreamable(model)
    B = manifest.batch
    torch.manual_seed(seed)
    rf, delay = int(model.receptive_field), int(model.delay)
    # the graph runs every layer on every step, also the steps on which the library's layers are still
    # waiting for their first input: its outputs are the library's once every layer's receptive field
    # holds real frames only, from step rf - 1 + delay on
    clean = rf - 1 + delay
    total = clean + steps * max(1, int(model.stride[0]))
    frames = torch.randn(B, in_channels, total, *frame)
    # the library's own steps from its own initial state
    outs, _ = warm_up(model, frames)
    emitting = [i for i, o in enumerate(outs) if o is not None]
    if not emitting:
        raise ComemError(f"{name}: the model emitted nothing in {total} steps; give it a longer clip")
    # trace a step on which every module emits, from the library's state before it
    at = emitting[-1]
    _, warm_state = warm_up(model, frames[:, :, :at])
    order = library_state_order(model)
    # owners: every tensor belongs to the layer comem says
    if row_owners is not None:
        res.owners_ok = len(order) == len(manifest.tensors) and \
            all(row_owners(mod) == t.row for (mod, _), t in zip(order, manifest.tensors))
    else:
        res.owners_ok = True
    blockers = export_blockers(model)
    if blockers:
        # the library's own state, tensor by tensor, in its order
        res.names_ok = len(manifest.tensors) == len(warm_state) == len(order)
        for k, t in enumerate(manifest.tensors):
            lib = warm_state[k] if k < len(warm_state) else None
            got = () if lib is None else (f"{order[k][0]}[{order[k][1]}]", "", tuple(lib.shape),
                                          str(lib.dtype).replace("torch.", ""))
            ok = lib is not None and got[2] == tuple(t.shape) and got[3] == t.dtype
            res.tensors.append(TensorCheck(k, (t.name, t.output_name, tuple(t.shape), t.dtype), got, False, ok))
        res.note = f"{blockers[0][0]}: {blockers[0][1]}; its state was checked against the library's own state tensors"
        res.outputs_ok = None
        return res
    onnx_bytes = export_step(model, frames[:, :, at], warm_state, opset=opset)
    g = onnx.load_from_string(onnx_bytes).graph
    ins = [v for v in g.input if v.name != "input"]
    outs_g = [v for v in g.output if v.name != "output"]
    res.names_ok = len(ins) == len(manifest.tensors) == len(outs_g) == len(warm_state) == len(order)
    for k, t in enumerate(manifest.tensors):
        if k >= len(ins):
            res.tensors.append(TensorCheck(k, (t.name, t.output_name, t.shape, t.dtype), (), False, False))
            continue
        shape, dtype = _vi(ins[k])
        oshape, odtype = _vi(outs_g[k]) if k < len(outs_g) else ((), "")
        traced = tuple(warm_state[k].shape) if k < len(warm_state) else ()
        dynamic = bool(shape) and isinstance(shape[0], str)
        # a dynamic axis is checked against the tensor the graph was traced with
        concrete = tuple(traced[i] if isinstance(d, str) else d for i, d in enumerate(shape))
        ok = (ins[k].name == t.name and outs_g[k].name == t.output_name and concrete == tuple(t.shape)
              and dtype == t.dtype and oshape == shape and odtype == dtype)
        res.tensors.append(TensorCheck(k, (t.name, t.output_name, tuple(t.shape), t.dtype),
                                       (ins[k].name, outs_g[k].name if k < len(outs_g) else "", concrete, dtype),
                                       dynamic, ok))
    # ONNX Runtime from comem's initial values against the PyTorch steps
    onnx_bytes = fix_state_axes(onnx_bytes, manifest)
    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    state = initial_state(manifest)
    diffs = []
    for i in range(total):
        try:
            got = sess.run(None, _feeds(sess, manifest, frames[:, :, i].numpy(), state))
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors
            if not strided:
                raise
            res.note = f"{_reasons(strided)} (step {i}: {str(exc).splitlines()[0][:160]})"
            res.outputs_ok, res.steps = None, i
            if memory:
                res.memory = graph_memory(onnx_bytes, manifest, transient_bytes, params_bytes, profile=False)
            return res
        state = got[1:]
        if outs[i] is not None and i >= clean:
            diffs.append(float(np.max(np.abs(got[0] - outs[i].numpy()))))
    res.steps, res.compared_steps, res.first_compared = total, len(diffs), clean
    res.max_abs_diff = max(diffs) if diffs else float("nan")
    scale = max(float(np.max(np.abs(o.numpy()))) for o in outs if o is not None) if diffs else 1.0
    res.outputs_ok = bool(diffs) and res.max_abs_diff <= 1e-4 * max(1.0, scale)
    if strided and not res.outputs_ok:
        res.note = _reasons(strided)
        res.outputs_ok = None
    if memory:
        res.memory = graph_memory(onnx_bytes, manifest, transient_bytes, params_bytes)
    return res


def randomise(model, seed: int = 0):
    """Give every parameter and batch-norm statistic its own random values,
    as a trained model has: the exporter merges initializers that are equal
    (a fresh batch norm's ones and zeros), which would shrink the weights
    the graph holds below what a real model's hold."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if p.dim() == 1 else 0.0))
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


def check_model(model, clip: int, size, steps: int = 3, knobs: dict | None = None, params=None,
                memory: bool = True, batch: int = 1) -> ExportCheck:
    """Build ``model`` (a built-in name or spec) with comem's builder at
    ``clip`` × ``size``, export it and check it against comem's manifest."""
    _need()
    from comem import api
    from comem.pytorch.build import build_continual

    rep = api.analyze(model, clip=clip, size=size, profile="continual-inference", knobs=knobs, params=params,
                      batch=batch)
    setup = api.prepare(model, "continual-inference", knobs, params)
    manifest = rep.state_tensors
    com, rows = build_continual(setup.graph, clip, rep.size, setup.profile.as_dict(), rep.width)
    randomise(com)
    owner = {}
    for path, _, mods in rows.items():
        for m in mods:
            owner[id(m)] = path
    by_name = {n: owner.get(id(m)) for n, m in com.named_modules()}
    from comem.pytorch.instrument import input_dims

    frame = input_dims(rep.dims, rep.size, rep.width)
    return check_export(com, manifest, by_name.get, steps=steps, transient_bytes=rep.transient_bytes,
                        params_bytes=rep.params_bytes, in_channels=setup.graph.in_channels, frame=frame,
                        name=rep.model, memory=memory)
