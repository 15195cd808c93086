"""A latency model per layer from a device profile (``comem predict``,
``comem bench``).

Every layer is timed as its kind's **operation class**
(:meth:`~comem.layers.base.LayerKind.op_class`: dense, grouped, depthwise or
pointwise convolution in 1D/2D/3D, linear/matmul, attention, norm,
activation, pooling, concatenation, state copies, element-wise), each with
the device profile's own parameters for that class::

    time = calls · fixed + work / rate + bytes / bandwidth

(summed over the layers, then times the profile's ``in_network`` factor for the mode:
how much slower layers run inside a network than alone — colder caches,
fresh allocations — fitted on generic multi-layer cases; 1 if absent)

* ``calls``: module calls the layer makes (:meth:`LayerKind.op_calls`); at
  batch 1 the fixed cost of each call (Python, dispatch, a kernel launch,
  continual-inference's bookkeeping in ``forward_step``) dominates small layers;
* ``work``: the FLOPs it executes (``2·MACs + additions`` under the
  ``executed`` convention: a continual convolution's zero taps and partial
  sums included), times the batch;
* ``bytes``: weights read once per batch, the input read and output written
  per stream, and on a continual step the state and the library's copies
  (:meth:`LayerKind.state_traffic`).

Profiles carry two parameter sets per class, ``clip`` (an eager
``torch.nn`` module on a clip) and ``step`` (a continual-inference module's
``forward_step`` on a frame), plus three containers that are not layers:
``model`` (the call of the whole model), ``sequence`` (a nested sequence)
and ``merge`` (a residual or parallel merge: its container call and the
element-wise sum).  A continual step averages the layers behind a temporal
stride over the frames they skip (a layer at rate ``r`` runs every
``r``-th step).  The model is never run: a profile is calibrated on
generic shapes (:mod:`comem.device.calibrate`) or fitted to published
throughput.

Profiles are TOML (``specs/devices/*.toml`` for the built-in ones, the
user's config directory for ``this`` machine, or a path).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from comem.errors import ComemError, suggest
from comem.layers.base import OP_CLASSES

#: containers of the built models that are not layers of the spec
CONTAINERS = ("model", "sequence", "merge", "nesting")
MODES = ("clip", "step")
#: profile entries that stand for several classes: any convolution, anything else
FALLBACKS = ("conv", "default")
#: the parameters of one class in one mode
PARAMS = ("fixed_us", "gflops", "gbs")
#: built-in profiles: specs/devices/<name>.toml
BUILTIN = ("cpu", "tx2", "xavier", "rtx2080ti")


def config_dir() -> Path:
    """Where ``comem calibrate`` saves this machine's profile:
    ``$COMEM_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/comem``, else
    ``~/.config/comem``."""
    if os.environ.get("COMEM_CONFIG_DIR"):
        return Path(os.environ["COMEM_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "comem"


def this_profile_path() -> Path:
    return config_dir() / "devices" / "this.toml"


@dataclass
class DeviceProfile:
    """A device's fitted per-class parameters and where they came from."""
    name: str
    title: str
    origin: str                   # "calibrated" (micro-benchmarks here) | "fitted" (published rows)
    device: str = "cpu"           # "cpu" | "cuda"
    dtype: str = "fp32"           # the precision the classes were measured at
    peak_gflops: dict = field(default_factory=dict)   # dtype -> GFLOP/s (MFU's denominator)
    bandwidth_gbs: float = 0.0
    memory_gb: float = 0.0
    transfer_gbs: float = 0.0     # host -> device link (0: the input is already there)
    provenance: dict = field(default_factory=dict)
    classes: dict = field(default_factory=dict)       # mode -> class -> {fixed_us, gflops, gbs}
    spread: dict = field(default_factory=dict)        # calibration: the repeat-to-repeat spread
    #: mode -> how much slower layers run inside a network than alone (fitted on generic
    #: multi-layer cases; 1 when unknown)
    in_network: dict = field(default_factory=dict)
    loo: dict = field(default_factory=dict)           # fitted: leave-one-out figures
    sources: list = field(default_factory=list)

    def params(self, mode: str, cls: str) -> dict:
        """A class's parameters: its own, else its family's (``conv_depthwise``
        for ``conv3d_depthwise``, then ``conv``), else ``default``."""
        table = self.classes.get(mode, {})
        for key in _fallbacks(cls):
            if key in table:
                return table[key]
        raise ComemError(f"device profile {self.name!r} has no parameters for {cls} ({mode}) nor a default; "
                         "recalibrate with comem calibrate")

    def scale(self, dtype: str) -> float:
        """Compute speed at ``dtype`` relative to the profile's own precision."""
        if dtype == self.dtype:
            return 1.0
        if dtype not in self.peak_gflops or self.dtype not in self.peak_gflops:
            have = ", ".join(sorted(self.peak_gflops)) or self.dtype
            raise ComemError(f"device profile {self.name!r} has no {dtype} figures (it has {have}); "
                             f"use --dtype {self.dtype}")
        return self.peak_gflops[dtype] / self.peak_gflops[self.dtype]

    def as_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "origin": self.origin, "device": self.device,
                "dtype": self.dtype, "peak_gflops": dict(self.peak_gflops), "bandwidth_gbs": self.bandwidth_gbs,
                "memory_gb": self.memory_gb, "transfer_gbs": self.transfer_gbs, "provenance": dict(self.provenance),
                "spread": dict(self.spread), "in_network": dict(self.in_network), "loo": dict(self.loo),
                "sources": list(self.sources),
                "classes": {m: {c: dict(p) for c, p in t.items()} for m, t in self.classes.items()}}


def _fallbacks(cls: str):
    yield cls
    if cls.startswith("conv") and "_" in cls:
        fam = cls.split("_", 1)[1]
        yield "conv_" + fam
        if "_" in fam:                      # depthwise_temporal -> depthwise
            yield "conv_" + fam.split("_")[0]
        yield "conv"
    yield "default"


# -- reading and writing profiles -------------------------------------------------

def profile_from_dict(d: dict, where: str) -> DeviceProfile:
    try:
        dev = d["device"]
        classes = d.get("classes", {})
        for mode, table in classes.items():
            if mode not in MODES:
                raise ComemError(f"{where}: [classes.{mode}] is not a mode ({', '.join(MODES)})")
            for cls, p in table.items():
                if cls not in OP_CLASSES + CONTAINERS + FALLBACKS and not cls.startswith("conv_"):
                    raise ComemError(f"{where}: [classes.{mode}.{cls}] is not an operation class"
                                     f"{suggest(cls, OP_CLASSES + CONTAINERS)}")
                bad = [k for k in PARAMS if not isinstance(p.get(k), (int, float)) or p[k] < 0]
                if bad or p.get("gflops", 1) == 0 or p.get("gbs", 1) == 0:
                    raise ComemError(f"{where}: [classes.{mode}.{cls}] needs {', '.join(PARAMS)} "
                                     "(non-negative numbers; gflops and gbs positive)")
        return DeviceProfile(
            name=str(dev["name"]), title=str(dev.get("title", dev["name"])), origin=str(dev.get("origin", "")),
            device=str(dev.get("device", "cpu")), dtype=str(dev.get("dtype", "fp32")),
            peak_gflops=dict(dev.get("peak_gflops", {})), bandwidth_gbs=float(dev.get("bandwidth_gbs", 0)),
            memory_gb=float(dev.get("memory_gb", 0)), transfer_gbs=float(dev.get("transfer_gbs", 0)),
            provenance=dict(d.get("provenance", {})), classes={m: {c: dict(p) for c, p in t.items()}
                                                                for m, t in classes.items()},
            spread=dict(d.get("spread", {})), loo=dict(d.get("loo", {})), sources=list(dev.get("sources", [])),
            in_network={m: float(v) for m, v in d.get("in_network", {}).items() if m in MODES})
    except (KeyError, TypeError, ValueError) as exc:
        raise ComemError(f"{where}: not a device profile ({exc.__class__.__name__}: {exc}); "
                         "write one with comem calibrate") from None


def read_profile(path) -> DeviceProfile:
    import tomllib

    p = Path(path)
    try:
        with open(p, "rb") as fh:
            d = tomllib.load(fh)
    except FileNotFoundError:
        raise ComemError(f"no device profile at {p}; write one with comem calibrate -o {p}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ComemError(f"{p}: not valid TOML ({exc})") from None
    return profile_from_dict(d, str(p))


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(float(v)) if isinstance(v, float) else str(v)
    if isinstance(v, str):
        import json

        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def _key(k: str) -> str:
    import re

    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_value(k)


def profile_toml(p: DeviceProfile, header: str = "") -> str:
    """The profile as TOML (what ``comem calibrate`` writes)."""
    d = p.as_dict()
    lines = [f"# {x}" for x in header.splitlines()] if header else []
    lines.append("[device]")
    for k in ("name", "title", "origin", "device", "dtype", "peak_gflops", "bandwidth_gbs", "memory_gb",
              "transfer_gbs", "sources"):
        lines.append(f"{k} = {_toml_value(d[k])}")
    for section in ("provenance", "spread", "in_network", "loo"):
        if d[section]:
            lines += ["", f"[{section}]"] + [f"{_key(k)} = {_toml_value(v)}" for k, v in d[section].items()]
    for mode, table in d["classes"].items():
        lines += ["", f"[classes.{mode}]"]
        for cls, params in table.items():
            lines.append(f"{_key(cls)} = {_toml_value({k: round(float(v), 6) for k, v in params.items()})}")
    return "\n".join(lines) + "\n"


def builtin_profile(name: str) -> DeviceProfile:
    from comem.spec.data import devices

    return profile_from_dict(devices(f"{name}.toml"), f"specs/devices/{name}.toml")


def get_profile(device) -> DeviceProfile:
    """A profile: a :class:`DeviceProfile`, ``this`` (the one ``comem
    calibrate`` saved for this machine), a built-in platform name (the
    paper's four, fitted to Table 1) or a path to a profile TOML."""
    if isinstance(device, DeviceProfile):
        return device
    text = str(device).strip()
    if text.lower() == "this":
        path = this_profile_path()
        if not path.exists():
            raise ComemError(f"no profile of this machine at {path}: run `comem calibrate` first (about a minute; "
                             "it times generic layers at pinned threads and saves the profile there), or pass "
                             "--device PATH to a profile")
        return read_profile(path)
    if text.lower() in BUILTIN:
        return builtin_profile(text.lower())
    if text.endswith(".toml") or os.sep in text or Path(text).exists():
        return read_profile(text)
    raise ComemError(f"unknown device profile {text!r}{suggest(text.lower(), BUILTIN + ('this',))}; choose one "
                     f"of: {', '.join(BUILTIN)}, this (run `comem calibrate` first) or a path to a profile TOML")


# -- the terms of a model ---------------------------------------------------------

@dataclass
class Term:
    """One timed item: a layer (or container) in one mode, with its weight
    (multiplicity / rate: how often one clip or one average step runs it)."""
    path: str
    op_class: str
    calls: float
    flops: float
    bytes: float
    weight: float = 1.0
    label: str = ""


@dataclass
class ModelTerms:
    model: str
    clip: int
    batch: int
    dtype: str
    bytes_per_float: int
    continual: bool
    regular: list = field(default_factory=list)
    step: list = field(default_factory=list)
    #: executed FLOPs of one clip / one average step (MFU)
    flops_clip: float = 0.0
    flops_step: float = 0.0
    input_bytes_clip: int = 0
    input_bytes_step: int = 0


def model_terms(model, batch: int = 1, dtype: str = "fp32", clip=None, size=None, params=None) -> ModelTerms:
    """The timed terms of the regular clip and the continual step of
    ``model``, from comem's analysis alone (no PyTorch)."""
    from comem.accounting.conventions import weigh
    from comem.api import analyze, prepare
    from comem.core.units import dtype_bytes
    from comem.layers.base import Env

    dname, b = dtype_bytes(dtype)
    setup = prepare(model, params=params)
    continual = setup.continual
    r = analyze(model, clip=clip, size=size, dtype=dname, params=params, batch=batch,
                profile="continual-inference" if continual else None)
    knobs = Env(r.knobs, r.rows[0].x if r.rows else None, b, batch)
    out = ModelTerms(r.model, r.clip, batch, dname, b, continual)

    def flops(work):
        """Executed arithmetic (MACs twice, the additions once) plus one per
        element of the operations it does not weigh (norms, activations,
        pools: their elements are their work)."""
        executed = weigh(work, "executed")
        arithmetic = 2 * executed - weigh({k: v for k, v in work.items() if "bias" in k or "add" in k}, "executed")
        elements = sum(n for op, n in work.items() if weigh({op: n}, "executed") == 0)
        return float(arithmetic + elements) * batch

    def term(row, step):
        cls = row.kind.op_class(row.cfg, row.x, row.y)
        if cls not in OP_CLASSES:
            raise ComemError(f"{row.path}: kind {row.kind.name!r} names operation class {cls!r}, not one of "
                             f"{', '.join(OP_CLASSES)}")
        if step:
            moved = row.x.frame + row.y.frame + row.kind.state_traffic(row.cfg, row.x, row.y, knobs)
            work = flops(row.work_step)
        else:
            moved, work = row.x.numel + row.y.numel, flops(row.work_clip)
        moved += row.kind.op_traffic(row.cfg, row.x, row.y, step)
        mult = float(row.multiplicity)
        return Term(row.path, cls, float(row.kind.op_calls(row.cfg, step)), work,
                    float(row.params * b + moved * b * batch),
                    mult / float(row.rate) if step else mult, row.kind.name)

    rows = list(r.rows)
    out.regular = [term(row, False) for row in rows if row.role != "alignment"]
    out.regular += _container_terms(setup.graph, rows, False, batch, b)
    out.flops_clip = sum(t.flops * t.weight for t in out.regular)
    out.input_bytes_clip = int(rows[0].x.numel * b * batch) if rows else 0
    if continual:
        out.step = [term(row, True) for row in rows] + _container_terms(setup.graph, rows, True, batch, b)
        out.flops_step = sum(t.flops * t.weight for t in out.step)
        out.input_bytes_step = int(rows[0].x.frame * b * batch) if rows else 0
    return out


def _container_terms(graph, rows, step: bool, batch: int, b: int) -> list:
    """The model call, nested sequences and merges the builders create
    (:mod:`comem.pytorch.build`), each at the rate of the rows inside it;
    on a step also the ``nesting`` of every module: continual-inference sets
    the call mode on every module below a container it calls (a cost per
    module and per container above it), so each module is charged its
    depth: a stage's layers 2, each sequence 1 more, each merge
    (``BroadcastReduce`` → ``Parallel`` → the branch's ``Sequential``) 3 more."""
    from comem.layers.nodes import LayerNode, ParallelNode, SeqNode

    terms = [Term("(model)", "model", 1.0, 0.0, 0.0, 1.0, "model")]
    by_path = {}
    for r in rows:
        by_path.setdefault(r.path, r)

    def inside(path):
        prefix = path + "."
        return [r for r in rows if r.path.startswith(prefix) and r.role != "alignment"]

    def nest(path, depth, weight):
        if step and depth:
            terms.append(Term(path + " (nesting)", "nesting", float(depth), 0.0, 0.0, weight, "nesting"))

    def visit(node, mult, d, top):
        m = mult * float(node.multiplicity) if not isinstance(node.multiplicity, (list, tuple)) else mult
        if isinstance(node, SeqNode):
            mine = inside(node.path) if node.path else []
            rate = float(mine[0].rate) if (step and mine) else 1.0
            if not top and mine:
                terms.append(Term(node.path, "sequence", 1.0, 0.0, 0.0, m / rate, "sequence"))
            if top or mine:
                nest(node.path, d, m / rate)
            for ch in node.children:
                if isinstance(ch, LayerNode):
                    row = by_path.get(ch.path)
                    if row is not None:
                        mc = m * float(ch.multiplicity) if not isinstance(ch.multiplicity, (list, tuple)) else m
                        nest(ch.path, d + 1, mc / (float(row.rate) if step else 1.0))
                else:
                    visit(ch, m, d + 1, False)
        elif isinstance(node, ParallelNode):
            mine = inside(node.path)
            if mine:
                y = mine[-1].y
                r_in, r_out = (float(mine[0].rate), float(max(r.rate for r in mine))) if step else (1.0, 1.0)
                n = float(y.frame if step else y.numel) * batch
                terms.append(Term(node.path, "merge", 1.0, 0.0, 0.0, m / r_in, "merge"))
                terms.append(Term(node.path + " (sum)", "merge", 0.0, n, 3 * n * b, m / r_out, "merge"))
                # BroadcastReduce at d; its Broadcast, Parallel and Reduce at d+1; a delay at d+2
                nest(node.path + " (merge)", d + 3 * (d + 1) + (d + 2), m / r_in)
            for br in node.branches:
                visit(br, m, d + 2, False)

    for st in graph.stages:
        visit(st.body, 1.0, 1, True)
    return terms


# -- prediction -------------------------------------------------------------------

@dataclass
class LayerTime:
    path: str
    kind: str
    op_class: str
    flops: float
    bytes: float
    seconds: float            # one call of this item (all its module calls)
    weight: float = 1.0       # how often one clip / one average step runs it
    fixed_share: float = 0.0  # of its time, the fixed cost of its calls


@dataclass
class Prediction:
    model: str
    device: str
    title: str
    origin: str
    dtype: str
    batch: int
    clip: int
    peak_gflops: float
    regular: dict = field(default_factory=dict)     # seconds, per_s (clips/s), layers, flops
    continual: dict | None = None                   # seconds_per_frame, per_s (frames/s), layers, flops

    def as_dict(self) -> dict:
        def part(p):
            if p is None:
                return None
            return {k: v for k, v in p.items() if k != "layers"} | {"layers": len(p["layers"])}

        out = {"model": self.model, "device": self.device, "origin": self.origin, "dtype": self.dtype,
               "batch": self.batch, "clip": self.clip, "regular": part(self.regular),
               "continual": part(self.continual)}
        if self.continual is not None:
            out["speedup"] = self.continual["per_s"] / self.regular["per_s"]
        return out


def time_terms(terms, prof: DeviceProfile, mode: str, scale: float = 1.0) -> list:
    out = []
    for t in terms:
        p = prof.params(mode, t.op_class)
        fixed = t.calls * p["fixed_us"] * 1e-6
        secs = fixed + t.flops / (p["gflops"] * 1e9 * scale) + t.bytes / (p["gbs"] * 1e9)
        out.append(LayerTime(t.path, t.label, t.op_class, t.flops, t.bytes, secs, t.weight,
                             fixed / secs if secs else 0.0))
    return out


def predict(model, device="this", batch: int = 1, dtype: str | None = None, clip=None, size=None,
            params=None, terms: ModelTerms | None = None) -> Prediction:
    """Latency and throughput of the regular clip and the continual step of
    ``model`` on a device profile (:func:`get_profile`)."""
    prof = get_profile(device)
    dtype = dtype or prof.dtype
    scale = prof.scale(dtype)
    mt = terms or model_terms(model, batch, dtype, clip, size, params)
    transfer = prof.transfer_gbs * 1e9 if prof.transfer_gbs else 0.0
    peak = prof.peak_gflops.get(dtype, 0.0)
    pred = Prediction(mt.model, prof.name, prof.title, prof.origin, mt.dtype, batch, mt.clip, peak)
    reg = time_terms(mt.regular, prof, "clip", scale)
    k_clip, k_step = prof.in_network.get("clip", 1.0), prof.in_network.get("step", 1.0)
    t_reg = k_clip * sum(lt.seconds * lt.weight for lt in reg) + (mt.input_bytes_clip / transfer if transfer else 0.0)
    pred.regular = {"seconds": t_reg, "per_s": batch / t_reg, "flops": mt.flops_clip, "layers": reg}
    if mt.continual:
        st = time_terms(mt.step, prof, "step", scale)
        t_st = k_step * sum(lt.seconds * lt.weight for lt in st) + (mt.input_bytes_step / transfer if transfer else 0.0)
        pred.continual = {"seconds_per_frame": t_st, "per_s": batch / t_st, "flops": mt.flops_step, "layers": st}
    return pred


def features(mt: ModelTerms, mode: str, groups) -> list:
    """The model's time as a linear function of a profile's inverse
    parameters: per group of classes (``groups``: class -> group name), the
    summed calls, FLOPs and bytes; :mod:`comem.device.calibrate` fits
    profiles to published throughput with these."""
    acc = {}
    for t in (mt.regular if mode == "clip" else mt.step):
        g = groups(t.op_class)
        c, f, b = acc.get(g, (0.0, 0.0, 0.0))
        acc[g] = (c + t.calls * t.weight, f + t.flops * t.weight, b + t.bytes * t.weight)
    return acc


# -- tables (comem predict) ----------------------------------------------------------

def predict_tables(pr: Prediction, prof: DeviceProfile, peaks: dict | None = None, top: int = 5) -> list:
    """The prediction as tables: speed (and the runtime peak when given,
    ``{"regular": bytes, "continual": bytes}``), then the slowest items."""
    from comem.results.formats import Percent, Rounded, Table

    cap = prof.memory_gb * 1e9
    parts = [("regular (one clip)", pr.regular, "clips/s", "regular")]
    if pr.continual is not None:
        parts.append(("continual (one frame, averaged)", pr.continual, "frames/s", "continual"))
    rows = []
    for label, p, unit, key in parts:
        secs = p.get("seconds", p.get("seconds_per_frame"))
        fixed = sum(lt.seconds * lt.weight * lt.fixed_share for lt in p["layers"]) / secs if secs else 0.0
        # numbers as numbers (JSON/CSV), the unit in the header or its own column (issue 21.3)
        row = [label, Rounded(secs * 1000, 3), Rounded(p["per_s"], 2), unit, Percent(fixed * 100, places=0),
               Rounded(p["flops"] / 1e9, 3)]
        if peaks is not None:
            peak = peaks.get(key)
            row += [Rounded(peak / 2 ** 20, 1), ("✓" if peak <= cap else "✗") if cap else ""]
        rows.append(row)
    heads = ["", "latency (ms)", "throughput", "unit", "fixed cost share", "GFLOPs"]
    if peaks is not None:
        heads += ["peak allocated (MiB)", f"fits in {prof.memory_gb:.3g} GB memory" if cap else "fits"]
    notes = [f"{prof.title} — profile {prof.name!r}, {prof.origin}" + (
        f" {prof.provenance.get('date', '')}" if prof.origin == "calibrated" else ""),
        f"{pr.dtype}, batch {pr.batch}, clip {pr.clip}; time per item = calls × fixed + FLOPs / rate + "
        "bytes / bandwidth, with the profile's parameters for the item's operation class"]
    if pr.continual is not None:
        notes.append(f"predicted speed-up, continual frames/s over regular clips/s: "
                     f"{pr.continual['per_s'] / pr.regular['per_s']:.2f}×")
    if prof.loo:
        notes.append(f"fitted to {prof.loo.get('rows', '?')} published rows; leave-one-out median |error| "
                     f"{prof.loo['median_abs_error']:.0%}, within ±25 % {prof.loo['within_25']:.0%}")
    tables = [Table(f"Predicted speed — {pr.model} on {prof.name}", heads, rows, notes,
                    numeric=(1, 2, 4, 5) + ((6,) if peaks is not None else ()),
                    keys=["part", "latency_ms", "per_s", "unit", "fixed_share", "gflops", "peak_mib", "fits"])]
    steps = pr.continual if pr.continual is not None else pr.regular
    slow = sorted(steps["layers"], key=lambda lt: lt.seconds * lt.weight, reverse=True)[:top]
    tables.append(Table(f"Slowest items of one {'step' if pr.continual is not None else 'clip'}",
                        ["item", "kind", "class", "FLOPs", "bytes", "time (us)", "runs", "fixed share"],
                        [[lt.path, lt.kind, lt.op_class, int(lt.flops), int(lt.bytes), round(lt.seconds * 1e6, 1),
                          round(lt.weight, 3), Percent(lt.fixed_share * 100, places=0)] for lt in slow],
                        numeric=(3, 4, 5, 6, 7)))
    return tables


def peak_bytes(model, pr: Prediction, prof: DeviceProfile, size=None, batch: int = 1, params=None) -> dict:
    """The bytes PyTorch allocates at its peak (comem.model.runtime) for the
    regular clip and the continual step of a prediction, on the profile's
    allocator: ``{"regular": ..., "continual": ... or None}``."""
    from comem.model.runtime import runtime_peak

    rt = runtime_peak(model, pr.clip, size, pr.dtype, batch, prof.device, params)
    return {"regular": rt.regular.total, "continual": None if rt.continual is None else rt.continual.total}


def predict_data(pr: Prediction, prof: DeviceProfile, peaks: dict | None = None) -> dict:
    d = pr.as_dict()
    d["title"] = prof.title
    d["provenance"] = dict(prof.provenance)
    if peaks is not None:
        d["peak_allocated_bytes"] = dict(peaks)
        d["device_memory_bytes"] = int(prof.memory_gb * 1e9)
    return d
