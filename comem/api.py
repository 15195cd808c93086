"""The Python API: :func:`analyze` one model at one setting.

    >>> import comem
    >>> r = comem.analyze("x3d-m", clip=64)
    >>> r.state_floats, r.transient_floats, r.total_floats
    (4792368, 301056, 5093424)

The CLI is a thin layer over these functions; :func:`prepare` is the one
set-up every analysis (analyze, sweep, closed forms, validation) shares.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comem.accounting import conventions
from comem.core import shim
from comem.errors import ComemError, arg
from comem.accounting.profiles import get_profile
from comem.results.report import Report, build_breakdown
from comem.spec.registry import resolve
from comem.spec.schema import Spec
from comem.model.inputs import check_clip_size, get_graph
from comem.core.units import MAX_BATCH, check_int, dtype_bytes, frame_text
from comem.model.headline import headline
from comem.model.walk import evaluate_graph


def require_continual(spec, graph):
    """Raise a one-line error for a continual request on a regular-only model."""
    why = spec.continual_note or graph.continual_problem or "the spec sets continual = false"
    raise ComemError(f"{spec.name} has no continual form ({why}); only its regular per-clip numbers exist: "
                     f"drop {arg('profile')}/{arg('knobs', '--knob')}, or pick a continual model (comem list)")


def constraint_failures(spec, graph, clip, size, width=None) -> list:
    """The messages of the spec's ``[[constraints]]`` that ``clip`` × ``size``
    breaks (rules over the parameters and clip, size/height, width)."""
    if not spec.constraints:
        return []
    from comem.core.expr import evaluate

    out = []
    for rule, message in spec.constraints:
        env = dict(graph.params, clip=clip, size=size, height=size, width=size if width is None else width)
        ok = evaluate(rule, env, f"spec {spec.name}: constraint {rule!r}")
        if not (isinstance(ok, bool) or shim.is_concrete(ok)):
            continue  # a symbolic parameter: nothing to check here
        if not ok:
            out.append(message.replace("{clip}", str(clip)).replace("{size}", str(size)))
    return out


def check_input_fits(spec, graph, clip, size, width=None):
    """Reject inputs smaller than the network's total stride, or that break
    one of the spec's constraints."""
    width = size if width is None else width
    broken = constraint_failures(spec, graph, clip, size, width)
    if broken:
        raise ComemError(f"{spec.name} cannot take clip {clip} x {frame_text(spec, size, width)}: {broken[0]}")
    if size < graph.spatial_stride:
        raise ComemError(f"{'height' if spec.dims == 3 and width != size else 'size'} {size} is below "
                         f"{spec.name}'s total spatial stride of {graph.spatial_stride}; "
                         f"use {arg('size')} {graph.spatial_stride} or more")
    if width < graph.width_stride:
        raise ComemError(f"width {width} is below {spec.name}'s total spatial stride of {graph.width_stride}; "
                         f"use a width of {graph.width_stride} or more")
    if clip < graph.temporal_stride:
        raise ComemError(f"clip {clip} is below {spec.name}'s total temporal stride of {graph.temporal_stride}; "
                         f"use {arg('clip')} {graph.temporal_stride} or more")


@dataclass
class Setup:
    """What every analysis of one model needs before it evaluates anything."""

    spec: Spec
    graph: Any
    profile: Any
    convention: str
    continual: bool


def prepare(model, profile=None, knobs=None, params=None, convention="ptflops", graph=None) -> Setup:
    """Resolve the model, profile (with knob overrides) and counting
    convention, build (or reuse) the layer tree, and refuse continual
    questions about a regular-only model."""
    for what, value, example in (("knobs", knobs, '{"conv_state": "library-buffer"}'),
                                 ("params", params, '{"depth_factor": 5.0}')):
        if value is not None and not isinstance(value, dict):
            raise ComemError(f"{what} must be a dict of name -> value, e.g. {what}={example}; "
                             f"got {type(value).__name__} {value!r}"[:300])
    spec = resolve(model)
    conv = conventions.check_convention(convention)
    prof = get_profile("paper" if profile is None else profile, **(knobs or {}))
    graph = get_graph(spec, params) if graph is None else graph
    continual = spec.continual and graph.continual_problem is None
    if not continual and (profile is not None or knobs):
        require_continual(spec, graph)
    return Setup(spec, graph, prof, conv, continual)


def analyze(model="x3d-m", clip: int | None = None, size=None, profile: str | None = None,
            dtype: str = "fp32", batch: int = 1, convention: str = "ptflops", knobs: dict | None = None,
            params: dict | None = None, count: str | None = None, runtime: str | None = None,
            device: str = "cuda") -> Report:
    """Analyse ``model`` (a built-in name/alias, a spec path or a Spec).

    Parameters
    ----------
    clip, size
        frames per clip (the size of the final global pool's window for the
        continual model) and the frame: one number (square), ``(224, 398)``
        or ``"224x398"`` (the joints of a 2D model; none for 1D); default:
        the spec's.
    profile
        ``"paper"`` (default) or ``"continual-inference"`` (see
        :mod:`comem.accounting.profiles`).  Asking for a profile or knobs of a model with
        no continual form (R(2+1)D, SlowFast) is an error.
    dtype
        ``fp32`` (default), ``fp16``, ``bf16``, ``int8``, ``fp64``: bytes per float.
    batch
        number of streams / batch size: memory and operations scale with it.
    convention
        FLOP-counting convention: ``ptflops`` (default), ``macs``, ``flops``,
        ``fvcore`` (see :mod:`comem.accounting.conventions`).  ``count`` is its old
        name, accepted for one release.
    knobs
        profile knob overrides, e.g. ``{"conv_state": "library-buffer"}``.
    params
        spec parameter overrides, e.g. ``{"depth_factor": 5.0}``.
    runtime, device
        ``runtime="pytorch"`` adds the predicted peak allocated bytes of one
        eager regular forward and one continual step on ``device`` (``cuda``
        or ``cpu``): ``Report.runtime`` (:mod:`comem.model.runtime`).
    """
    s = prepare(model, profile, knobs, params, count if count is not None else convention)
    clip, height, width = check_clip_size(s.spec, clip, size)
    batch = check_int(batch, "batch (streams)", 1, MAX_BATCH)
    dtype_name, nbytes = dtype_bytes(dtype)
    check_input_fits(s.spec, s.graph, clip, height, width)
    try:
        t = evaluate_graph(s.graph, clip, height, s.profile, record=True, continual=s.continual, width=width,
                           bytes_per_float=nbytes, batch=batch)
    except ComemError as exc:
        raise ComemError(f"{s.spec.name} at clip {clip}, {frame_text(s.spec, height, width)}: {exc}") from None
    r = make_report(s, t, clip, (height, width), dtype_name, nbytes, batch, params)
    if runtime is not None:
        if runtime != "pytorch":
            raise ComemError(f"unknown runtime {runtime!r}; comem models 'pytorch' (eager, continual-inference)")
        from comem.model.runtime import runtime_peak

        r.runtime = runtime_peak(s.spec, clip, (height, width), dtype_name, batch, device, params)
    return r


#: the three accountings every continual analysis shows side by side
ACCOUNTINGS = (
    ("paper", "paper", {}, "Appendix A as printed (errata marked)"),
    ("paper-consistent", "paper", {"errata": "consistent"}, "the paper's own equations"),
    ("continual-inference", "continual-inference", {}, "what continual-inference 1.2.4 allocates"),
)


def accountings(s: Setup, t, clip, frame, batch, nbytes) -> dict:
    """State / transient / total of the network under the paper (as printed),
    the paper's equations and continual-inference, with the user's model
    knobs (``se_pool``) applied; the selected profile's totals are reused."""
    from comem.accounting.profiles import MODEL_KNOBS

    model_knobs = {k: v for k, v in s.profile.as_dict().items() if k in MODEL_KNOBS}
    out = {}
    for key, base, extra, what in ACCOUNTINGS:
        prof = get_profile(base, **model_knobs, **extra)
        tt = t if prof.as_dict() == s.profile.as_dict() else evaluate_graph(
            s.graph, clip, frame[0], prof, record=False, continual=True, width=frame[1], clip_transient=False,
            bytes_per_float=nbytes)
        state, transient = tt.state * batch, tt.transient() * batch
        out[key] = {"profile": prof.label, "what": what, "state_floats": state, "transient_floats": transient,
                    "total_floats": state + transient, "total_bytes": (state + transient) * nbytes}
    return out


def errata_items(s: Setup, t) -> list:
    """The errata this report prints, with the printed and consistent values."""
    knobs = s.profile.as_dict()
    if knobs["errata"] != "printed":
        return []
    items = []
    for e in t.errata:
        item = {"id": e.id, "source": e.source, "note": e.note, "quantity": e.quantity}
        if e.quantity == "state":
            rows = [r for r in t.rows if r.erratum == e.id]
            if not rows:
                continue
            item["printed"] = sum(r.state * r.multiplicity for r in rows)
            item["consistent"] = sum(r.state_consistent * r.multiplicity for r in rows)
            if e.equation:
                item["equation"] = e.equation
        elif e.quantity == "transient":
            if not s.continual:
                continue
            item["printed"] = t.transient()
            item["consistent"] = t.transient(t.consistent_rule)
            item["rule"] = f"{e.printed} (printed) vs {e.consistent} (consistent)"
        items.append(item)
    return items


def make_report(s: Setup, t, clip, frame, dtype_name, nbytes, batch, params) -> Report:
    spec, prof, conv, continual = s.spec, s.profile, s.convention, s.continual
    from comem.spec.domain import param_value
    h = headline(t, continual, conv, batch)
    transient_consistent = t.transient(t.consistent_rule) if continual else None
    notes = []
    if spec.errata and s.graph.changed_params:
        notes.append(f"{spec.name}'s errata describe its published network; with {', '.join(s.graph.changed_params)} "
                     "changed this is another network, so they are not applied")
    return Report(
        model=spec.name, title=spec.title, clip=clip, size=frame[0], width=frame[1], dims=spec.dims,
        profile=prof.label, knobs=prof.as_dict(),
        dtype=dtype_name, bytes_per_float=nbytes, batch=batch, convention=conv, continual=continual,
        continual_note=(spec.continual_note or s.graph.continual_problem or "") if not continual else "",
        params=h["params"],
        state_floats=h.get("state_floats"), transient_floats=h.get("transient_floats"),
        regular_total_floats=h["regular_total_floats"], regular_transient_floats=h["regular_transient_floats"],
        ops_per_clip=h["ops_per_clip"], ops_per_step=h.get("ops_per_step"), ops_per_frame_avg=h.get("ops_per_frame_avg"),
        delay=h.get("delay"), receptive_field=h.get("receptive_field"),
        temporal_padding=t.padding if continual else None, temporal_stride=t.stride if continual else None,
        rows=t.rows, breakdown=build_breakdown(t.rows) if continual else [],
        errata=errata_items(s, t), notes=notes,
        state_floats_consistent=t.state_consistent * batch if continual else None,
        transient_floats_consistent=transient_consistent * batch if continual else None,
        work_clip=t.work_clip, work_step=t.work_step, references=spec.references,
        params_overrides={k: param_value(spec, k, v) for k, v in (params or {}).items()},  # exact, not the text
        transient_at=t.transient_at() if continual else None,
        accountings=accountings(s, t, clip, frame, batch, nbytes) if continual else {},
        transient_rule=t.rule,
        transient_notes=list(t.library_notes) if t.rule == "library" else [],
        graph=s.graph,
    )
