"""Analytic vs measured, row by row: what ``comem validate`` prints.

For the ``continual-inference`` profile, comem's state, delay, receptive
field, parameters, per-step work and transient must equal what the
instrumented library models hold — exactly.  The regular model's per-clip
work must equal the hooks' counts and ptflops' total.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from fractions import Fraction

from comem.accounting.conventions import CONVENTIONS, weigh
from comem.pytorch import require_extra

#: functional merges (residual adds, SE products): no module to hook, so
#: nothing measures them; the checks compare every other op
#: ops a module's forward hook cannot read off its tensors: merges, and the
#: executed extras of a continual convolution (measured at dispatch level instead)
UNHOOKED_OPS = ("add", "mul", "conv_mac_zero_taps", "conv_partial_add")


@dataclass
class Check:
    group: str
    quantity: str
    analytic: object
    measured: object

    @property
    def ok(self) -> bool:
        return self.analytic == self.measured


@dataclass
class Validation:
    model: str
    clip: int
    size: int
    profile: str
    checks: list = field(default_factory=list)
    seconds: float = 0.0
    width: int = 0
    dims: int = 3

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self):
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict:
        """The validation as plain data (``comem validate -f json``)."""
        return {"model": self.model, "clip": self.clip, "size": self.size, "profile": self.profile, "ok": self.ok,
                "checks": [{"group": c.group, "quantity": c.quantity, "comem": c.analytic, "measured": c.measured,
                            "ok": c.ok} for c in self.checks]}


def hookable(work: dict, times=1) -> dict:
    """``{op: n·times}`` of the ops a forward hook can measure (nonzero)."""
    return {k: v * times for k, v in work.items() if k not in UNHOOKED_OPS and v}


def add_work(acc: dict, work: dict, times=1) -> dict:
    """``acc[op] += n·times`` for the hookable ops of ``work``; returns ``acc``."""
    for op, n in hookable(work, times).items():
        acc[op] = acc.get(op, 0) + n
    return acc


def total_work(works) -> dict:
    """The hookable ops of several ``{op: n}`` dicts, summed."""
    acc: dict = {}
    for w in works:
        add_work(acc, w)
    return acc


#: the phases of one validation (``progress`` is called after each)
STEPS = ("build", "measure regular", "measure continual", "compare")


def validate(model, clip=None, size=None, profile="continual-inference", knobs=None, use_ptflops=True,
             per_layer=True, progress=None) -> Validation:
    """Build the spec's regular and continual PyTorch models at ``clip`` x
    ``size``, instrument them and compare with comem's numbers;
    ``progress(step)`` is called after each of :data:`STEPS`."""
    import time

    progress = progress or (lambda step: None)

    require_extra()
    from comem import api
    from comem.model.walk import evaluate_graph
    from comem.pytorch.build import build_models
    from comem.pytorch.instrument import measure_continual, measure_regular

    t0 = time.perf_counter()
    if profile == "continual-inference" and not knobs:
        spec = api.resolve(model)
        if not (spec.continual and api.get_graph(spec).continual_problem is None):
            profile = None   # a model with no continual form: its regular model alone (params, per-clip counts)
    setup = api.prepare(model, profile, knobs)
    spec, graph, prof, continual = setup.spec, setup.graph, setup.profile, setup.continual
    clip, size, width = api.check_clip_size(spec, clip, size)
    api.check_input_fits(spec, graph, clip, size, width)
    t = evaluate_graph(graph, clip, size, prof, record=True, continual=continual, width=width)
    reg, reg_map, com, co_map = build_models(graph, clip, size, prof.as_dict(), continual=continual, width=width)
    progress("build")
    mr = measure_regular(reg, reg_map, graph.in_channels, clip, size, use_ptflops=use_ptflops, width=width,
                         dims=spec.dims)
    progress("measure regular")
    v = Validation(spec.name, clip, size, prof.label, width=width, dims=spec.dims)
    add = v.checks.append
    empty = lambda: {"clip_a": {}, "clip_m": {}, "step_a": {}, "step_m": {}, "state_a": 0, "state_m": 0,  # noqa: E731
                     "params_a": 0, "params_m": 0}

    # ---- regular model (per clip), grouped by stage ----
    add(Check("model", "params", t.params, sum(mr.params.values())))
    if use_ptflops:
        add(Check("model", "per-clip ptflops (ptflops itself)", weigh(t.work_clip, "ptflops"), mr.ptflops_clip))
    by_stage: dict = {}
    for r in t.rows:
        g = by_stage.setdefault(r.stage, empty())
        add_work(g["clip_a"], r.work_clip, r.multiplicity)
        add_work(g["clip_m"], mr.work_clip.get(r.path, {}))
        g["params_a"] += r.params * r.multiplicity
        g["params_m"] += mr.params.get(r.path, 0)
        if per_layer:
            add(Check(r.path, "per-clip work", hookable(r.work_clip, r.multiplicity),
                      hookable(mr.work_clip.get(r.path, {}))))
    if not continual:
        for name, g in by_stage.items():
            add(Check(name, "params", g["params_a"], g["params_m"]))
            add(Check(name, "per-clip ptflops", weigh(g["clip_a"], "ptflops"), weigh(g["clip_m"], "ptflops")))
        progress("measure continual")
        progress("compare")
        v.seconds = time.perf_counter() - t0
        return v

    # ---- continual model (per step) ----
    mc = measure_continual(com, co_map, graph.in_channels, size, stride=t.stride, width=width, dims=spec.dims)
    progress("measure continual")
    for r in t.rows:
        g = by_stage[r.stage]
        g["state_a"] += r.state * r.multiplicity
        g["state_m"] += mc.state.get(r.path, 0)
        add_work(g["step_a"], r.work_step, r.multiplicity)
        add_work(g["step_m"], mc.work_step.get(r.path, {}))
        if per_layer:
            add(Check(r.path, "state floats", r.state * r.multiplicity, mc.state.get(r.path, 0)))
            add(Check(r.path, "per-step work", hookable(r.work_step, r.multiplicity),
                      hookable(mc.work_step.get(r.path, {}))))
    for name, g in by_stage.items():
        add(Check(name, "state floats", g["state_a"], g["state_m"]))
        add(Check(name, "params", g["params_a"], g["params_m"]))
        add(Check(name, "per-step ptflops", weigh(g["step_a"], "ptflops"), weigh(g["step_m"], "ptflops")))
        add(Check(name, "per-clip ptflops", weigh(g["clip_a"], "ptflops"), weigh(g["clip_m"], "ptflops")))
    add(Check("model", "state floats", t.state, sum(mc.state.values()) + mc.unmapped_state))
    add(Check("model", "delay (frames)", t.delay, mc.delay))
    add(Check("model", "receptive field (frames)", t.rf, mc.receptive_field))
    step_a: dict = {}
    for r in t.rows:
        add_work(step_a, r.work_step, r.multiplicity)
    step_m = total_work(mc.work_step.values())
    for conv in CONVENTIONS:
        if conv == "executed":  # read at dispatch level: every op of the step, merges and extras included
            add(Check("model", "per-step executed", weigh(t.work_step, conv), mc.executed_step))
        else:
            add(Check("model", f"per-step {conv}", weigh(step_a, conv), weigh(step_m, conv)))
    avg_a = sum((Fraction(weigh(hookable(work), "ptflops"), rate) for rate, work in t.work_by_rate.items()),
                Fraction(0))
    avg_m = total_work(mc.work_avg.values())
    add(Check("model", "ptflops per input frame (average)", avg_a, Fraction(weigh(avg_m, "ptflops"), t.stride)))
    if prof["transient"] == "library":
        # fp32: 4 bytes a float; an int64 max-pool index counts 2 floats (8 bytes)
        add(Check("model", "transient peak of one step (bytes, fp32)", 4 * t.library_step, mc.transient_peak_bytes))
    progress("compare")
    v.seconds = time.perf_counter() - t0
    return v


def validation_tables(v: Validation, show_layers: bool = False):
    from comem.results.formats import Table

    rows = []
    for c in v.checks:
        if not show_layers and "." in c.group:
            continue
        a, m = c.analytic, c.measured
        if isinstance(a, dict):
            a, m = sum(a.values()), sum(m.values()) if isinstance(m, dict) else m
        rows.append([c.group, c.quantity, a, m, "pass" if c.ok else "FAIL"])
    layer_checks = [c for c in v.checks if "." in c.group]
    failed_layers = [c for c in layer_checks if not c.ok]
    notes = [f"{len(layer_checks)} per-layer checks, {len(failed_layers)} failed"
             + ("" if not failed_layers else ": " + ", ".join(f"{c.group} {c.quantity}" for c in failed_layers[:8])),
             f"{'PASS' if v.ok else 'FAIL'}: {sum(c.ok for c in v.checks)}/{len(v.checks)} checks in {v.seconds:.1f}s"]
    from comem.core.units import frame_text

    title = (f"comem vs instrumented models — {v.model}, clip {v.clip} x {frame_text(v.dims, v.size, v.width)}, "
             f"profile {v.profile}")
    return [Table(title, ["group", "quantity", "comem", "measured", "result"], rows, notes, numeric=(2, 3))]
