"""The Python API: :func:`analyze` one model at one setting.

    >>> import comem
    >>> r = comem.analyze("x3d-m", clip=64)
    >>> r.state_floats, r.transient_floats, r.total_floats
    (4792368, 301056, 5093424)

The CLI is a thin layer over these functions.
"""
from __future__ import annotations

from fractions import Fraction

from . import conventions
from .errors import ComemError
from .graph import build_graph
from .profiles import get_profile
from .report import Report, build_breakdown
from .spec import Spec, resolve
from .units import MAX_BATCH, MAX_CLIP, MAX_SIZE, check_int, dtype_bytes
from .walker import evaluate_graph


def _parse_param_value(name, text):
    """A parameter override from user text: a decimal (``2.5``) or a ratio
    (``11/5``), kept exact."""
    import re

    t = str(text).strip()
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)(/\d+)?", t) or t.endswith("/0"):
        raise ComemError(f"parameter {name} = {text!r} is not a number; write e.g. {name}=2.5")
    v = Fraction(t)
    return int(v) if v.denominator == 1 else v


def get_graph(spec: Spec, params: dict | None = None):
    """Phase 1 for ``spec`` with parameter overrides, cached on the spec."""
    values = {k: _parse_param_value(k, v) for k, v in (params or {}).items()}
    key = tuple(sorted((k, str(v)) for k, v in values.items()))
    graph = spec.graphs.get(key)
    if graph is None:
        graph = build_graph(spec, values)
        if len(spec.graphs) < 64:
            spec.graphs[key] = graph
    return graph


def check_clip_size(spec: Spec, clip, size):
    """The spec's defaults, or user values checked to be sane whole numbers."""
    clip = spec.clip if clip is None else check_int(clip, "clip (frames)", 1, MAX_CLIP)
    size = spec.size if size is None else check_int(size, "size (pixels)", 1, MAX_SIZE)
    return clip, size


def require_continual(spec, graph):
    """Raise a one-line error for a continual request on a regular-only model."""
    if not (spec.continual and graph.continual_problem is None):
        why = spec.continual_note or graph.continual_problem or "the spec sets continual = false"
        raise ComemError(f"{spec.name} has no continual form ({why}); only its regular per-clip numbers exist: "
                         "drop --profile/--knob, or pick a continual model (comem list)")


def check_input_fits(spec, graph, clip, size):
    """Reject inputs smaller than the network's total stride."""
    if size < graph.spatial_stride:
        raise ComemError(f"size {size} is below {spec.name}'s total spatial stride of {graph.spatial_stride}; "
                         f"use --size {graph.spatial_stride} or more")
    if clip < graph.temporal_stride:
        raise ComemError(f"clip {clip} is below {spec.name}'s total temporal stride of {graph.temporal_stride}; "
                         f"use --clip {graph.temporal_stride} or more")


def analyze(model="x3d-m", clip: int | None = None, size: int | None = None, profile: str | None = None,
            dtype: str = "fp32", batch: int = 1, count: str = "ptflops", knobs: dict | None = None,
            params: dict | None = None) -> Report:
    """Analyse ``model`` (a built-in name/alias, a spec path or a Spec).

    Parameters
    ----------
    clip, size
        frames per clip (the size of the final global pool's window for the
        continual model) and the square input resolution; default: the
        spec's.
    profile
        ``"paper"`` (default) or ``"continual-inference"`` (see
        :mod:`comem.profiles`).  Asking for a profile or knobs of a model with
        no continual form (R(2+1)D, SlowFast) is an error.
    dtype
        ``fp32`` (default), ``fp16``, ``bf16``, ``int8``, ``fp64``: bytes per float.
    batch
        number of streams / batch size: memory and MACs scale with it.
    count
        FLOP-counting convention: ``ptflops`` (default), ``macs``, ``flops``,
        ``fvcore`` (see :mod:`comem.conventions`).
    knobs
        profile knob overrides, e.g. ``{"conv_state": "library-buffer"}``.
    params
        spec parameter overrides, e.g. ``{"depth_factor": 5.0}``.
    """
    spec = resolve(model)
    clip, size = check_clip_size(spec, clip, size)
    batch = check_int(batch, "batch (streams)", 1, MAX_BATCH)
    dtype_name, nbytes = dtype_bytes(dtype)
    conv = conventions.check_convention(count)
    prof = get_profile("paper" if profile is None else profile, **(knobs or {}))
    graph = get_graph(spec, params)
    check_input_fits(spec, graph, clip, size)
    continual = spec.continual and graph.continual_problem is None
    if not continual and (profile is not None or knobs):
        require_continual(spec, graph)
    try:
        t = evaluate_graph(graph, clip, size, prof, record=True, continual=continual)
    except ComemError as exc:
        raise ComemError(f"{spec.name} at clip {clip}, size {size}: {exc}") from None
    return make_report(spec, graph, t, clip, size, prof, dtype_name, nbytes, batch, conv, continual, params)


#: transient knob -> (step total, where it peaks, regular-model clip total) on Totals
_TRANSIENT_RULES = {
    "stage-output": ("stage_output_step", "stage_output_at", "stage_output_clip"),
    "largest-map": ("largest_step", "largest_at", "largest_clip"),
    "liveness": ("liveness_step", "liveness_at", "liveness_clip"),
    "library": ("library_step", "library_at", "liveness_clip"),
}


def transient_of(t, knob: str):
    """The step transient under one rule of the ``transient`` knob (the
    largest-map rule counts the input frame too)."""
    from . import shim

    v = getattr(t, _TRANSIENT_RULES[knob][0])
    return shim.maximum(v, t.input_frame) if knob == "largest-map" else v


def transient_location(t, knob: str):
    """Where the step transient peaks (numeric evaluation), for reports."""
    if knob == "largest-map" and t.largest_step < t.input_frame:
        return "input frame"
    return getattr(t, _TRANSIENT_RULES[knob][1])


def regular_transient_of(t, knob: str):
    """The regular model's transient for one clip under the same rule."""
    from . import shim

    v = getattr(t, _TRANSIENT_RULES[knob][2])
    return shim.maximum(v, t.input_clip) if knob == "largest-map" else v


def make_report(spec, graph, t, clip, size, prof, dtype_name, nbytes, batch, conv, continual, params) -> Report:
    knob = prof["transient"]
    regular_transient = regular_transient_of(t, knob)
    regular_total = (clip - 1) * t.input_frame + regular_transient
    errata = []
    transient = transient_of(t, knob) if continual else None
    transient_consistent = transient
    for e in spec.errata:
        if not (prof.pristine and prof["errata"] == "printed" and prof.name in e.profiles):
            continue
        item = {"id": e.id, "source": e.source, "note": e.note, "quantity": e.quantity}
        if e.quantity == "state" and any(a.id == e.id for a in t.errata_applied):
            rows = [r for r in t.rows if r.erratum == e.id]
            item["printed"] = sum(r.state * r.count for r in rows)
            item["consistent"] = sum(r.state_consistent * r.count for r in rows)
            if e.equation:
                item["equation"] = e.equation
        elif e.quantity == "transient" and continual:
            transient_consistent = transient_of(t, "largest-map")
            item["printed"] = transient
            item["consistent"] = transient_consistent
            item["rule"] = "stage outputs (printed) vs largest output of any layer (consistent)"
        elif e.quantity in ("state", "transient"):
            continue
        errata.append(item)
    if continual:
        step = conventions.weigh(t.work_step, conv) * batch
        avg = 0
        for rate, work in t.work_by_rate.items():
            avg += Fraction(conventions.weigh(work, conv), rate)
        avg = avg * batch
        if isinstance(avg, Fraction) and avg.denominator == 1:
            avg = int(avg)
    else:
        step = avg = None
    return Report(
        model=spec.name, title=spec.title, clip=clip, size=size, profile=prof.label, knobs=prof.as_dict(),
        dtype=dtype_name, bytes_per_float=nbytes, batch=batch, count=conv, continual=continual,
        continual_note=(spec.continual_note or graph.continual_problem or "") if not continual else "",
        params=t.params,
        state_floats=t.state * batch if continual else None,
        transient_floats=transient * batch if continual else None,
        regular_total_floats=regular_total * batch,
        regular_transient_floats=regular_transient * batch,
        macs_per_clip=conventions.weigh(t.work_clip, conv) * batch,
        macs_per_step=step, macs_per_frame_avg=avg,
        delay=t.delay if continual else None, receptive_field=t.rf if continual else None,
        temporal_padding=t.padding if continual else None, temporal_stride=t.stride if continual else None,
        rows=t.rows, breakdown=build_breakdown(t.rows) if continual else [],
        errata=errata,
        state_floats_consistent=t.state_consistent * batch if continual else None,
        transient_floats_consistent=transient_consistent * batch if continual else None,
        work_clip=t.work_clip, work_step=t.work_step, spec_path=spec.path, references=spec.references,
        params_overrides=dict(params or {}),
        transient_at=transient_location(t, knob) if continual else None,
    )
