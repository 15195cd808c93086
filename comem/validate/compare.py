"""Analytic vs measured, row by row: what ``comem validate`` prints.

For the ``continual-inference`` profile, comem's state, delay, receptive
field, parameters, per-step work and transient must equal what the
instrumented library models hold — exactly.  The regular model's per-clip
work must equal the hooks' counts and ptflops' total.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..conventions import weigh
from ..errors import ComemError
from ..profiles import get_profile
from . import require_extra

IGNORED_OPS = ("add", "mul")  # functional merges: no module to hook; no convention counts them


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

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self):
        return [c for c in self.checks if not c.ok]


def _strip(work: dict, count=1) -> dict:
    return {k: v * count for k, v in work.items() if k not in IGNORED_OPS and v}


def _group_of(row) -> str:
    """The layer group a row belongs to in the side-by-side view."""
    return row.stage


def validate(model, clip=None, size=None, profile="continual-inference", knobs=None, use_ptflops=True,
             per_layer=True) -> Validation:
    """Build the spec's regular and continual PyTorch models at ``clip`` x
    ``size``, instrument them and compare with comem's numbers."""
    import time

    require_extra()
    from .. import api
    from ..walker import evaluate_graph
    from .builder import build_models
    from .instrument import measure_continual, measure_regular

    t0 = time.perf_counter()
    spec = api.resolve(model)
    clip, size = api.check_clip_size(spec, clip, size)
    graph = api.get_graph(spec)
    api.check_input_fits(spec, graph, clip, size)
    prof = get_profile(profile, **(knobs or {}))
    continual = spec.continual and graph.continual_problem is None
    t = evaluate_graph(graph, clip, size, prof, record=True, continual=continual)
    reg, reg_map, com, co_map = build_models(graph, clip, size, prof.as_dict(), continual=continual)
    mr = measure_regular(reg, reg_map, graph.in_channels, clip, size, use_ptflops=use_ptflops)
    v = Validation(spec.name, clip, size, prof.label)
    add = v.checks.append

    # ---- regular model (per clip) ----
    add(Check("model", "params", t.params, sum(mr.params.values())))
    if use_ptflops:
        add(Check("model", "per-clip ptflops (ptflops itself)", weigh(t.work_clip, "ptflops"), mr.ptflops_clip))
    by_group: dict = {}
    for r in t.rows:
        g = by_group.setdefault(_group_of(r), {"clip_a": {}, "clip_m": {}, "step_a": {}, "step_m": {},
                                               "state_a": 0, "state_m": 0, "params_a": 0, "params_m": 0})
        for op, n in _strip(r.work_clip, r.count).items():
            g["clip_a"][op] = g["clip_a"].get(op, 0) + n
        for op, n in mr.work_clip.get(r.path, {}).items():
            if op not in IGNORED_OPS:
                g["clip_m"][op] = g["clip_m"].get(op, 0) + n
        g["params_a"] += r.params * r.count
        g["params_m"] += mr.params.get(r.path, 0)
        if per_layer:
            add(Check(r.path, "per-clip work", _strip(r.work_clip, r.count),
                      {k: v for k, v in mr.work_clip.get(r.path, {}).items() if k not in IGNORED_OPS}))
    if continual:
        mc = measure_continual(com, co_map, graph.in_channels, size, stride=t.stride)
        for r in t.rows:
            g = by_group[_group_of(r)]
            g["state_a"] += r.state * r.count
            g["state_m"] += mc.state.get(r.path, 0)
            for op, n in _strip(r.work_step, r.count).items():
                g["step_a"][op] = g["step_a"].get(op, 0) + n
            for op, n in mc.work_step.get(r.path, {}).items():
                if op not in IGNORED_OPS:
                    g["step_m"][op] = g["step_m"].get(op, 0) + n
            if per_layer:
                add(Check(r.path, "state floats", r.state * r.count, mc.state.get(r.path, 0)))
                add(Check(r.path, "per-step work", _strip(r.work_step, r.count),
                          {k: v for k, v in mc.work_step.get(r.path, {}).items() if k not in IGNORED_OPS}))
        for name, g in by_group.items():
            add(Check(name, "state floats", g["state_a"], g["state_m"]))
            add(Check(name, "params", g["params_a"], g["params_m"]))
            add(Check(name, "per-step ptflops", weigh(g["step_a"], "ptflops"), weigh(g["step_m"], "ptflops")))
            add(Check(name, "per-clip ptflops", weigh(g["clip_a"], "ptflops"), weigh(g["clip_m"], "ptflops")))
        add(Check("model", "state floats", t.state, sum(mc.state.values()) + mc.unmapped_state))
        add(Check("model", "delay (frames)", t.delay, mc.delay))
        add(Check("model", "receptive field (frames)", t.rf, mc.receptive_field))
        step_a = {}
        for r in t.rows:
            for op, n in _strip(r.work_step, r.count).items():
                step_a[op] = step_a.get(op, 0) + n
        step_m = {}
        for ops in mc.work_step.values():
            for op, n in ops.items():
                if op not in IGNORED_OPS:
                    step_m[op] = step_m.get(op, 0) + n
        for conv in ("ptflops", "macs", "flops", "fvcore"):
            add(Check("model", f"per-step {conv}", weigh(step_a, conv), weigh(step_m, conv)))
        avg_a = 0
        for rate, work in t.work_by_rate.items():
            from fractions import Fraction

            avg_a += Fraction(weigh(_strip(work), "ptflops"), rate)
        avg_m = {}
        for ops in mc.work_avg.values():
            for op, n in ops.items():
                if op not in IGNORED_OPS:
                    avg_m[op] = avg_m.get(op, 0) + n
        from fractions import Fraction

        add(Check("model", "ptflops per input frame (average)", avg_a, Fraction(weigh(avg_m, "ptflops"), t.stride)))
        if prof["transient"] == "library":
            add(Check("model", "transient peak of one step (floats)", t.library_step, mc.transient_peak))
    else:
        for name, g in by_group.items():
            add(Check(name, "params", g["params_a"], g["params_m"]))
            add(Check(name, "per-clip ptflops", weigh(g["clip_a"], "ptflops"), weigh(g["clip_m"], "ptflops")))
    v.seconds = time.perf_counter() - t0
    return v


def validation_tables(v: Validation, show_layers: bool = False):
    from ..formats import Table

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
    title = f"comem vs instrumented models — {v.model}, clip {v.clip}, size {v.size}, profile {v.profile}"
    return [Table(title, ["group", "quantity", "comem", "measured", "result"], rows, notes, numeric=(2, 3))]


def check_profile_for_validation(profile: str):
    if get_profile(profile).name != "continual-inference":
        raise ComemError("validation compares with what continual-inference allocates: use --profile "
                         "continual-inference (knobs may be changed with --knob)")
