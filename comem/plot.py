"""Pictures: memory by stage, memory and MACs against clip or size, and
continual against regular.  Every function returns a matplotlib Figure
(``pip install 'comem[plot]'``); ``comem plot`` saves it as PNG or SVG.
"""
from __future__ import annotations

from comem.errors import MissingExtraError

KINDS = ("stages", "clip", "size", "models", "pareto-grid", "accuracy-throughput")


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False) if not _in_notebook() else None
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError("plots need matplotlib: pip install 'comem[plot]'") from None
    return plt


def _in_notebook() -> bool:
    import sys

    return "ipykernel" in sys.modules


def _mib(x, nbytes):
    return x * nbytes / 2 ** 20


#: what one stage's transient bar shows under each rule of the ``transient`` knob
_STAGE_BARS = {
    "stage-output": "the stage's output map",
    "largest-map": "the largest map in the stage",
}


def memory_by_stage(report):
    """Bars per stage: continual state and, beside it, the stage's share of
    the transient under the report's own rule (the ``transient`` knob, or an
    erratum's correction): the stage's output map under ``stage-output``
    (Appendix A), its largest map under ``largest-map``; so the tallest bar is
    the transient the totals print.  The liveness rules peak over live maps
    no single stage bar holds: the bars then show each stage's largest map and
    a line marks the transient in force.  A regular-only model shows the maps
    of its clip.  The figure says which accounting it draws, and an erratum's
    other reading."""
    plt = _plt()
    b = report.bytes_per_float
    rule = report.transient_rule
    per_stage = rule in _STAGE_BARS
    shown = _STAGE_BARS.get(rule, "the largest map in the stage")
    stages, state, peak = [], [], []
    for s in report.stages:
        rows = [r for r in report.rows if r.stage == s["stage"]]
        stages.append(s["stage"])
        state.append(_mib(s["state_floats"] or 0, b))
        per = (lambda y: y.c * y.h * y.w) if report.continual else (lambda y: y.numel)
        if rule == "stage-output" and rows:
            c, t, h, w = s["output"]
            n = c * h * w if report.continual else c * t * h * w
        else:
            n = max((per(r.y) for r in rows), default=0)
        peak.append(_mib(n * report.batch, b))
    fig, ax = plt.subplots(figsize=(max(7, 0.6 * len(stages) + 2), 4.6))
    xs = range(len(stages))
    notes = []
    if report.continual:
        transient = _mib(report.transient_floats, b)
        ax.bar([x - 0.2 for x in xs], state, width=0.4, label="state (kept between frames)")
        ax.bar([x + 0.2 for x in xs], peak, width=0.4, label=f"one step: {shown}")
        notes.append(f"total: state {_mib(report.state_floats, b):.2f} MiB + transient {transient:.2f} MiB "
                     f"at {report.transient_at} (rule '{rule}'"
                     + (": the tallest transient bar)" if per_stage else ")"))
    else:
        transient = _mib(report.regular_transient_floats, b)
        ax.bar(list(xs), peak, width=0.6, label=f"the clip (regular model): {shown}")
        notes.append(f"{report.title} has no continual form; regular worst case "
                     f"{_mib(report.regular_total_floats, b):.2f} MiB (rule '{rule}')")
    if not per_stage:
        ax.axhline(transient, color="crimson", lw=1, ls="--",
                   label=f"transient under '{rule}' (live maps together): {transient:.2f} MiB")
    for e in report.errata:
        if e.get("quantity") == "transient" and e.get("consistent") is not None:
            notes.append(f"erratum {e['id']}: printed {e['printed']:,} floats ({_mib(e['printed'], b):.2f} MiB); "
                         f"the equations give {e['consistent']:,} ({_mib(e['consistent'], b):.2f} MiB) "
                         f"-- --knob errata=consistent draws that accounting")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(stages, rotation=30, ha="right")
    ax.set_ylabel(f"MiB ({report.dtype}, batch {report.batch})")
    ax.set_title(f"{report.title}: memory by stage (clip {report.clip} x {report.frame}, {report.profile})")
    ax.legend(fontsize=8)
    for i, text in enumerate(reversed(notes)):
        fig.text(0.01, 0.01 + 0.035 * i, text, fontsize=7)
    fig.tight_layout(rect=(0, 0.035 * len(notes) + 0.01, 1, 1))
    return fig


def against(model, axis: str, values, **kw):
    """Memory (continual total vs regular worst case) and MACs (per frame vs
    per clip) as ``clip`` or ``size`` varies, from one vectorised sweep."""
    import numpy as np

    from comem.api import analyze
    from comem.analyses.sweep import sweep

    plt = _plt()
    base = analyze(model, **{k: v for k, v in kw.items() if k in ("profile", "knobs", "params", "dtype", "convention")})
    clips = list(values) if axis == "clip" else [kw.get("clip") or base.clip]
    sizes = list(values) if axis == "size" else [kw.get("size") or base.size]
    r = sweep(model, clips, sizes, [kw.get("batch", 1)], [kw.get("dtype", "fp32")], kw.get("profile"),
              kw.get("knobs"), kw.get("convention", "ptflops"), kw.get("params"))
    sel = (slice(None), 0, 0, 0) if axis == "clip" else (0, slice(None), 0, 0)
    valid = r.valid[:, 0] if axis == "clip" else r.valid[0, :]
    xs = np.asarray(values)[valid]

    def col(name):
        return np.asarray(r.columns[name][sel], dtype=float)[valid]

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    if r.continual:
        a1.plot(xs, col("total_bytes") / 2 ** 20, label="continual: state + transient")
        a1.plot(xs, col("state_floats") * base.bytes_per_float / 2 ** 20, "--", label="continual: state")
    a1.plot(xs, col("regular_total_bytes") / 2 ** 20, label="regular: stored frames + clip transient")
    a1.set_xlabel(axis)
    a1.set_ylabel(f"MiB ({base.dtype})")
    a1.set_yscale("log")
    a1.legend(fontsize=8)
    a1.set_title("worst-case memory")
    if r.continual:
        a2.plot(xs, col("ops_per_step") / 1e9, label="continual: per frame")
    a2.plot(xs, col("ops_per_clip") / 1e9, label="regular: per clip")
    a2.set_xlabel(axis)
    a2.set_ylabel(f"G ({r.convention})")
    a2.set_yscale("log")
    a2.legend(fontsize=8)
    a2.set_title("compute")
    fig.suptitle(f"{base.title} against {axis} (profile {r.profile})")
    fig.tight_layout()
    return fig


def continual_vs_regular(models, **kw):
    """Per model: continual per-frame vs regular per-clip operations, and
    memory; a model without a continual form shows its regular bars only
    (and says so under its name)."""
    plt = _plt()
    from comem.api import analyze

    reps = [analyze(m, **kw) for m in models]
    names = [r.title if r.continual else f"{r.title}\n(regular only)" for r in reps]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    xs = list(range(len(reps)))
    cont = [x for x, r in zip(xs, reps) if r.continual]
    a1.bar([x - 0.2 for x in xs], [r.ops_per_clip / 1e9 for r in reps], width=0.4, label="regular, per clip")
    a1.bar([x + 0.2 for x in cont], [reps[x].ops_per_step / 1e9 for x in cont], width=0.4,
           label="continual, per frame")
    a1.set_yscale("log")
    a1.set_ylabel(f"G ({reps[0].convention})" if reps else "G")
    a1.set_title("compute")
    a2.bar([x - 0.2 for x in xs], [_mib(r.regular_total_floats, r.bytes_per_float) for r in reps], width=0.4,
           label="regular worst case")
    a2.bar([x + 0.2 for x in cont], [_mib(reps[x].total_floats, reps[x].bytes_per_float) for x in cont],
           width=0.4, label="continual state + transient")
    a2.set_ylabel("MiB")
    a2.set_title("worst-case memory")
    for a in (a1, a2):
        a.set_xticks(xs)
        a.set_xticklabels(names, rotation=20, ha="right")
        a.legend(fontsize=8)
    fig.suptitle("Continual vs regular, at each model's own clip and size")
    fig.tight_layout()
    return fig


def pareto_grid(model, grid: dict, x="total_bytes", y="ops_per_step", color=None, clips=None, sizes=None,
                batches=(1,), dtypes=("fp32",), profile=None, knobs=None, convention="ptflops", params=None,
                where=(), maximize=None, max_points: int = 200_000):
    """Every valid design of a sweep as a dot (``x`` against ``y``, coloured
    by ``color``: a swept parameter by default) and the Pareto front over
    them: the designs no other design beats on lower ``x`` and lower ``y``
    (the lower-left edge, drawn as a staircase) and, only when ``maximize``
    names a column (``params``, the capacity), a larger ``maximize``.  Log
    axes are labelled in plain numbers of their unit (MiB, G)."""
    import numpy as np

    from comem.analyses.sweep import iter_design_sweep
    from comem.errors import ComemError
    from comem.analyses.pareto import _as_number, _compare, _flat_columns, nondominated, parse_condition

    plt = _plt()
    color = color or next(iter(grid))
    xs, ys, cs, ms = [], [], [], []
    conds = None
    for r in iter_design_sweep(model, grid, clips, sizes, batches, dtypes, profile, knobs, convention, params):
        cols = _flat_columns(r)
        for name in (x, y, color) + ((maximize,) if maximize else ()):
            if name not in cols or name in ("dtype", "valid"):
                raise ComemError(f"pareto-grid: {name!r} is not a numeric column; columns: "
                                 f"{', '.join(k for k in cols if k not in ('dtype', 'valid'))}")
        if conds is None:
            conds = [parse_condition(w, [k for k in cols if k not in ("dtype", "valid")]) for w in where]
        mask = cols["valid"].astype(bool)
        for col, op, value in conds:
            mask &= _compare(cols[col], op, value)
        xs.append(_as_number(cols[x][mask]).astype(float))
        ys.append(_as_number(cols[y][mask]).astype(float))
        cs.append(_as_number(cols[color][mask]).astype(float))
        if maximize:
            ms.append(_as_number(cols[maximize][mask]).astype(float))
    X, Y, C = np.concatenate(xs), np.concatenate(ys), np.concatenate(cs)
    if not len(X):
        raise ComemError("pareto-grid: no valid point meets the conditions; widen the ranges")
    objectives = [X, Y] + ([-np.concatenate(ms)] if maximize else [])
    front = nondominated(np.stack(objectives, axis=1))
    front = front[np.argsort(X[front])]
    show = np.arange(len(X))
    if len(show) > max_points:  # a readable picture: an even subsample, the front always drawn
        show = np.linspace(0, len(X) - 1, max_points).astype(np.int64)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    sc = ax.scatter(_scale(X[show], x), _scale(Y[show], y), c=C[show], s=6, cmap="viridis", alpha=0.6,
                    linewidths=0)
    goal = f"min {x}, min {y}" + (f", max {maximize}" if maximize else "")
    if maximize:
        ax.scatter(_scale(X[front], x), _scale(Y[front], y), facecolors="none", edgecolors="crimson", s=22,
                   linewidths=0.9, zorder=3, label=f"Pareto front: {len(front)} design{'s' if len(front) != 1 else ''} ({goal})")
    else:
        ax.step(_scale(X[front], x), _scale(Y[front], y), where="post", color="crimson", lw=1.5,
                label=f"Pareto front: {len(front)} design{'s' if len(front) != 1 else ''} ({goal})")
        ax.scatter(_scale(X[front], x), _scale(Y[front], y), color="crimson", s=14, zorder=3)
    fig.colorbar(sc, ax=ax, label=color)
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax)
    ax.legend(fontsize=8)
    name = model if isinstance(model, str) else getattr(model, "name", "model")
    ax.set_title(f"{name}: {len(X):,} designs over {', '.join(grid)}")
    fig.tight_layout()
    return fig


def _plain_log_ticks(ax):
    """Tick labels of log axes as plain numbers of the axis unit (4, 6, 10,
    20 MiB), never 4×10^0: majors always, minors where a few decades show."""
    from matplotlib.ticker import LogFormatter

    class Plain(LogFormatter):
        def _num_to_string(self, x, vmin, vmax):
            return f"{x:g}"

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(Plain(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
        axis.set_minor_formatter(Plain(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _scale(v, name):
    return v / 2 ** 20 if name.endswith("_bytes") else (v / 1e9 if name.startswith("ops") else v)


def _label(name):
    if name.endswith("_bytes"):
        return f"{name} (MiB)"
    if name.startswith("ops"):
        return f"{name} (G)"
    return name


def accuracy_throughput(device: str = "rtx2080ti"):
    """Figures 6–9 of the CoX3D paper (Appendix D): Kinetics-400 top-1
    accuracy against throughput on one of its platforms, from Table 1's
    published values, with comem's latency model (the platform's profile fitted to Table 1) for each model drawn
    beside its measurement (hollow marker, joined by a line)."""
    from comem.errors import ComemError
    from comem.reproduce.co3d import PLATFORM_TITLES, PLATFORMS, _label, load_published, table6_batches
    from comem.device.latency import predict

    if device not in PLATFORMS:
        raise ComemError(f"accuracy-throughput draws the paper's platforms: {', '.join(PLATFORMS)}; got {device!r}")
    plt = _plt()
    pub = load_published()
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    for e in pub["table1_hw"]:
        co = e.get("continual", False)
        batch = table6_batches(pub, e)[device]
        measured = e[device][0]
        pr = predict(e["model"], device, batch=batch, clip=e["clip"], size=e["size"])
        predicted = (pr.continual if co else pr.regular)["per_s"]
        color = "tab:red" if co else "tab:blue"
        ax.plot([measured, predicted], [e["acc"], e["acc"]], color=color, lw=0.7, alpha=0.5)
        ax.scatter([measured], [e["acc"]], color=color, s=28, zorder=3)
        ax.scatter([predicted], [e["acc"]], facecolors="none", edgecolors=color, s=28, zorder=3)
        ax.annotate(_label(e), (measured, e["acc"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.scatter([], [], color="tab:blue", label="clip models (measured)")
    ax.scatter([], [], color="tab:red", label="continual, per frame (measured)")
    ax.scatter([], [], facecolors="none", edgecolors="gray", label="comem's latency model (the platform's profile fitted to Table 1)")
    ax.set_xscale("log")
    ax.set_xlabel(f"throughput on {PLATFORM_TITLES[device]} (predictions/s, Table 6 batch)")
    ax.set_ylabel("Kinetics-400 top-1 accuracy (%)")
    ax.set_title(f"Accuracy vs throughput, {PLATFORM_TITLES[device]} (Co3D paper, Appendix D)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
