"""``comem calibrate``: a device profile for the latency model
(:mod:`comem.device.latency`), measured here or fitted to published rows.

**Measured** (:func:`calibrate`): the cases of
``specs/devices/calibration.toml`` — one small model each, a generic shape of
one operation class — are built with comem's PyTorch builder and timed as a
regular clip (eager modules) and a continual-inference step
(``forward_step``), at pinned threads.  Each timing is the median of 7
batches of calls; a case whose batches spread more than
:data:`STABLE` is timed again (up to :data:`RETRIES` times).  The
containers (model call, nested sequence, merge) are fitted first from the
identity cases and subtracted; then each class's ``fixed_us``, ``gflops`` and
``gbs`` are fitted by non-negative least squares on relative error over its
cases.  The spread (median and worst over cases, and the drift of a case
timed at the start and at the end) is reported and saved; above
:data:`NOISY` the profile is refused unless forced.

**Fitted** (:func:`fit_platform`): the paper's four platforms have only
Table 1's throughput (10 regular, 10 continual rows at Table 6's batch and
precision).  Five parameters are fitted to them: the time per FLOP of dense
work (dense/pointwise convolutions, linear, attention) and of
depthwise/grouped convolutions, the time per byte, and the fixed cost per
call of an eager module and of a ``forward_step`` module; leave-one-out
fits (each row predicted by the fit to the other 19) give the honest error.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from comem.device.latency import (MODES, DeviceProfile, ModelTerms, features, model_terms, predict,
                                  this_profile_path)
from comem.errors import ComemError
from comem.layers.base import OP_WORK_GROUPS

#: a timing whose batches spread less than this is stable
STABLE = 0.05
#: re-timings of an unstable case
RETRIES = 2
#: median spread above which a calibration is refused (unless forced); above WARN it warns
NOISY = 0.25
WARN = 0.10
#: the case timed first and last: their difference is the machine's drift
SENTINEL = "conv3d-pointwise-96-224"
#: timed batches per measurement
REPS = 7
#: rates too fast to identify (a class whose cases do no work, or move no bytes) are capped here
UNBOUNDED = 1e6


@dataclass
class Case:
    id: str
    spec: object
    terms: ModelTerms
    clip_s: float = 0.0
    step_s: float | None = None
    #: a generic multi-layer network: fits the profile's in_network factor, not a class
    composite: bool = False
    spread: dict = field(default_factory=dict)


def load_cases(only=None) -> list:
    """The calibration cases as specs with their terms (no PyTorch)."""
    from comem.spec.data import devices
    from comem.spec.load import spec_from_dict

    plan = devices("calibration.toml")
    out = []
    for c in plan["case"]:
        if only and c["id"] not in only:
            continue
        model = {"name": f"calibrate-{c['id']}", "dims": c["dims"], "clip": c["clip"],
                 "in_channels": c["channels"]}
        if "size" in c:
            model["size"] = c["size"]
        data = {"model": model, "stages": [{"name": "case", "layers": c["layers"]}]}
        if "blocks" in c:
            data["blocks"] = c["blocks"]
        spec = spec_from_dict(data, f"calibration case {c['id']}")
        out.append(Case(c["id"], spec, model_terms(spec), composite=bool(c.get("composite", False))))
    return out


# -- timing -----------------------------------------------------------------------

def _time(fn, budget: float):
    """(median seconds per call, spread) over REPS batches of calls."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(budget / REPS / one))
    samples = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n)
    samples.sort()
    med = statistics.median(samples)
    return med, (samples[-2] - samples[1]) / med


def _stable(fn, budget):
    best = None
    for _ in range(1 + RETRIES):
        t, s = _time(fn, budget)
        if best is None or s < best[1]:
            best = (t, s)
        if s <= STABLE:
            break
    return best


def time_case(case: Case, budget: float = 0.25):
    """Time one case's regular clip and continual step (torch's threads as set)."""
    import torch

    from comem.pytorch.instrument import input_dims
    from comem.pytorch.measure import build

    setup, reg, com, (clip, h, w), tdt = build(case.spec, None, None, "fp32")
    spatial = input_dims(setup.spec.dims, h, w)
    c_in = setup.graph.in_channels
    x = torch.randn(1, c_in, clip, *spatial, dtype=tdt)
    with torch.no_grad():
        case.clip_s, case.spread["clip"] = _stable(lambda: reg(x), budget)
        if com is not None and case.terms.continual:
            f = torch.randn(1, c_in, *spatial, dtype=tdt)
            for _ in range(int(com.receptive_field) + 2):
                com.forward_step(f)
            case.step_s, case.spread["step"] = _stable(lambda: com.forward_step(f), budget)
    return case


# -- fitting ----------------------------------------------------------------------

def nnls_relative(rows, targets, scales=None):
    """Non-negative x minimising Σ((row·x − t)/s)² (``s``: ``scales``, by
    default the targets: relative error), by trying every subset of free
    columns (a few columns: exact and dependency-free)."""
    import itertools

    import numpy as np

    A = np.array(rows, dtype=float)
    t = np.array(targets, dtype=float)
    sc = t if scales is None else np.array(scales, dtype=float)
    A = A / sc[:, None]
    b = t / sc
    n = A.shape[1]
    best, best_x = None, np.zeros(n)
    for k in range(1, n + 1):
        for cols in itertools.combinations(range(n), k):
            sub = A[:, cols]
            sol, *_ = np.linalg.lstsq(sub, b, rcond=None)
            if (sol < 0).any():
                continue
            x = np.zeros(n)
            x[list(cols)] = sol
            r = float(((A @ x - b) ** 2).sum())
            if best is None or r < best - 1e-15:
                best, best_x = r, x
    return [float(v) for v in best_x]


def _columns(feats, classes):
    """(class, param index) pairs with a non-zero feature in some row."""
    cols = []
    for c in classes:
        for i in range(3):
            if any(f.get(c, (0, 0, 0))[i] for f in feats):
                cols.append((c, i))
    return cols


def _to_params(coef: dict, c: str) -> dict:
    fixed, spf, spb = (coef.get((c, i), None) for i in range(3))
    return {"fixed_us": (fixed or 0.0) * 1e6,
            "gflops": min(UNBOUNDED, 1e-9 / spf) if spf else UNBOUNDED,
            "gbs": min(UNBOUNDED, 1e-9 / spb) if spb else UNBOUNDED}


def _known_seconds(f: dict, table: dict) -> float:
    s = 0.0
    for c, (calls, flops, nbytes) in f.items():
        p = table[c]
        s += calls * p["fixed_us"] * 1e-6 + flops / (p["gflops"] * 1e9) + nbytes / (p["gbs"] * 1e9)
    return s


#: the fitting order: containers from the identity cases first, then every class on its own
ORDER = (("model", "none", "nesting", "sequence"), ("merge",))


def fit_cases(cases: list) -> dict:
    """mode -> class -> parameters, fitted to the timed cases."""
    out = {}
    for mode in MODES:
        table = {}
        pts = [(features(c.terms, mode, lambda k: k), c.clip_s if mode == "clip" else c.step_s) for c in cases]
        pts = [(f, t) for f, t in pts if t]
        all_classes = sorted({k for f, _ in pts for k in f})
        groups = list(ORDER) + [(k,) for k in all_classes if k not in {x for g in ORDER for x in g}]
        for group in groups:
            mine = [(f, t) for f, t in pts if set(f) - set(table) and set(f) - set(table) <= set(group)]
            if not mine:
                continue
            # what the classes fitted before explain is subtracted (and, for a layer class, the plain
            # module call every call costs at least: ``none``'s fixed cost); the error stays relative
            # to the whole time
            floor = table.get("none", {}).get("fixed_us", 0.0) * 1e-6 if group not in ORDER else 0.0
            fitted_rest = [(f, t - _known_seconds({k: v for k, v in f.items() if k in table}, table)
                            - floor * sum(f[c][0] for c in group if c in f)) for f, t in mine]
            cols = _columns([f for f, _ in fitted_rest], group)
            x = nnls_relative([[f.get(c, (0, 0, 0))[i] for c, i in cols] for f, _ in fitted_rest],
                              [t for _, t in fitted_rest], [t for _, t in mine])
            coef = {col: v for col, v in zip(cols, x)}
            for c in group:
                if any(c in f for f, _ in fitted_rest):
                    table[c] = _to_params(coef, c)
                    table[c]["fixed_us"] += floor * 1e6
        _families(table)
        out[mode] = table
    return out


def fit_scale(cases: list, classes: dict) -> dict:
    """mode -> the median of measured / summed-layer time over the composite
    cases (generic networks of several layers): how much slower layers run
    inside a network than alone.  1 when there is no composite case."""
    prof = DeviceProfile("fit", "fit", "calibrated", classes=classes)
    out = {}
    for mode in MODES:
        ratios = []
        for c in cases:
            t = c.clip_s if mode == "clip" else c.step_s
            if not (c.composite and t):
                continue
            pr = predict(None, prof, terms=c.terms)
            secs = pr.regular["seconds"] if mode == "clip" else pr.continual["seconds_per_frame"]
            ratios.append(t / secs)
        out[mode] = round(statistics.median(ratios), 4) if ratios else 1.0
    return out


def _families(table: dict):
    """Fallbacks for classes no case covered: the 3D class of the same
    family (``conv_depthwise``), any convolution (``conv``), element-wise
    work (``default``)."""
    for g in ("dense", "grouped", "depthwise", "pointwise", "depthwise_temporal", "depthwise_strided"):
        for d in (3, 2, 1):
            if f"conv{d}d_{g}" in table:
                table.setdefault(f"conv_{g}", dict(table[f"conv{d}d_{g}"]))
                break
    for key in ("conv_dense", "conv_pointwise"):
        if key in table:
            table.setdefault("conv", dict(table[key]))
            break
    for key in ("elementwise", "activation", "none"):
        if key in table:
            table.setdefault("default", dict(table[key]))
            break


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown CPU"


def calibrate(threads: int = 1, budget: float = 0.25, force: bool = False, name: str = "this",
              only=None, progress=None) -> tuple[DeviceProfile, list]:
    """Time every case here, fit the profile; (profile, timed cases)."""
    from comem.pytorch import require_extra

    require_extra()
    import datetime
    import os

    import torch

    if threads < 1 or threads > 1024:
        raise ComemError(f"--threads must be 1..1024, got {threads}")
    progress = progress or (lambda case: None)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        cases = load_cases(only)
        started = time.time()
        # the drift check: a plain matrix-product case (its kernel is the same whenever it runs)
        sentinel = next((c for c in cases if c.id == SENTINEL), cases[len(cases) // 2])
        first = time_case(Case(sentinel.id, sentinel.spec, sentinel.terms), budget).clip_s
        for c in cases:
            time_case(c, budget)
            progress(c)
        last = time_case(Case(sentinel.id, sentinel.spec, sentinel.terms), budget).clip_s
        seconds = time.time() - started
    finally:
        torch.set_num_threads(before)
    spreads = [s for c in cases for s in c.spread.values()]
    med = statistics.median(spreads)
    drift = abs(last - first) / min(first, last)
    spread = {"median": round(med, 4), "worst": round(max(spreads), 4), "drift": round(drift, 4),
              "drift_case": sentinel.id, "seconds": round(seconds, 1), "stable_below": STABLE,
              "refused_above": NOISY}
    if (med > NOISY or drift > NOISY) and not force:
        raise ComemError(f"this machine is too noisy to calibrate: timings spread {med:.0%} (median over cases), "
                         f"drift {drift:.0%} between the first and last timing of {sentinel.id}; close what runs "
                         "beside it and run comem calibrate again (or --force to keep the noisy profile)")
    classes = fit_cases([c for c in cases if not c.composite])
    scale = fit_scale(cases, classes)
    best = max((c.terms.flops_clip / c.clip_s for c in cases if c.clip_s), default=0.0) / 1e9
    moved = max((sum(t.bytes * t.weight for t in c.terms.regular) / c.clip_s for c in cases if c.clip_s),
                default=0.0) / 1e9
    import continual

    prof = DeviceProfile(
        name=name, title=f"{_cpu_name()}, {threads} thread{'s' if threads != 1 else ''} (calibrated)",
        origin="calibrated", device="cpu", dtype="fp32", peak_gflops={"fp32": round(best, 3)},
        bandwidth_gbs=round(moved, 3), memory_gb=_memory_gb(),
        provenance={"cpu": _cpu_name(), "logical_cpus": os.cpu_count() or 0, "threads": threads,
                    "torch": torch.__version__, "continual_inference": getattr(continual, "__version__", "?"),
                    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "cases": len(cases), "timing": f"median of {REPS} batches, {budget:g} s a measurement"},
        classes=classes, spread=spread, in_network=scale,
        sources=["comem calibrate: specs/devices/calibration.toml timed here; peak_gflops and bandwidth_gbs: the "
                 "best any case reached (MFU's denominator)"])
    return prof, cases


def _memory_gb() -> float:
    import os

    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
    except (ValueError, OSError, AttributeError):
        return 0.0


def noise_note(prof: DeviceProfile) -> str | None:
    s = prof.spread
    if not s:
        return None
    if s.get("median", 0) > WARN or s.get("drift", 0) > WARN:
        return (f"warning: noisy calibration (spread {s['median']:.0%}, drift {s['drift']:.0%}): predictions "
                "carry that noise; recalibrate on a quiet machine")
    return None


def save_profile(prof: DeviceProfile, path=None):
    from pathlib import Path

    from comem.device.latency import profile_toml

    path = Path(path) if path else this_profile_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    head = (f"comem device profile {prof.name!r} ({prof.origin}); read by comem predict --device and comem bench.\n"
            "Per operation class and mode (clip: eager torch.nn on a clip; step: continual-inference forward_step):\n"
            "time = calls * fixed_us + FLOPs / gflops + bytes / gbs.")
    path.write_text(profile_toml(prof, head))
    return path


# -- fitted to published rows --------------------------------------------------------

#: the classes a published fit can tell apart: dense work, depthwise/grouped convolutions, the rest
def published_group(cls: str) -> str:
    return OP_WORK_GROUPS.get(cls, "other")


def platform_rows(platform: str) -> list:
    """Table 1's rows of one platform: (label, continual, batch, dtype,
    measured per second, terms)."""
    from comem.device.bench import PLATFORMS
    from comem.spec.data import published
    from comem.spec.registry import resolve

    if platform not in PLATFORMS:
        raise ComemError(f"unknown platform {platform!r}; choose one of: {', '.join(PLATFORMS)}")
    pub = published()
    dtype = pub["table6"]["precision"][platform]
    out = []
    for e in pub["table1_hw"]:
        co = bool(e.get("continual", False))
        rows = [r for r in pub["table6"]["rows"] if r["model"] == e["model"] and bool(r.get("continual")) == co]
        same = [r for r in rows if r["clip"] == e["clip"]]
        batch = (same or rows)[0]["batch"][platform]
        mt = model_terms(e["model"], batch, dtype, e["clip"], e["size"])
        title = resolve(e["model"]).title
        label = (f"Co{title}_{e['clip']}" if co else title) if co or e["model"] != "r2plus1d-18" else \
            f"{title}_{e['clip']}"
        out.append((label, co, batch, dtype, float(e[platform][0]), mt))
    return out


def _row_features(mt: ModelTerms, co: bool):
    """[dense FLOPs, dw FLOPs, bytes, eager calls, step calls] of one row's
    batch (the time of one batch is linear in the five inverse parameters)."""
    f = features(mt, "step" if co else "clip", published_group)
    calls = sum(v[0] for v in f.values())
    nbytes = sum(v[2] for v in f.values())
    # the profile times every class but depthwise/grouped convolutions at the dense rate
    return [f.get("dense", (0, 0, 0))[1] + f.get("other", (0, 0, 0))[1], f.get("dw", (0, 0, 0))[1], nbytes,
            0.0 if co else calls, calls if co else 0.0]


def fit_rows(rows) -> list:
    """The five inverse parameters fitted to (features, seconds per batch)."""
    return list(nnls_relative([f for f, _ in rows], [t for _, t in rows]))


def _profile_from_coef(x, platform: str, dtype: str, base: dict) -> DeviceProfile:
    dense, dw, per_byte, fixed_clip, fixed_step = x
    g = lambda s: min(UNBOUNDED, 1e-9 / s) if s else UNBOUNDED  # noqa: E731
    classes = {}
    for mode, fixed in (("clip", fixed_clip), ("step", fixed_step)):
        t = {"default": {"fixed_us": fixed * 1e6, "gflops": g(dense), "gbs": g(per_byte)}}
        for fam in ("depthwise", "grouped"):
            t[f"conv_{fam}"] = {"fixed_us": fixed * 1e6, "gflops": g(dw), "gbs": g(per_byte)}
        classes[mode] = t
    return DeviceProfile(name=platform, title=base.get("title", platform), origin="fitted",
                         device="cpu" if platform == "cpu" else "cuda", dtype=dtype,
                         peak_gflops=dict(base.get("peak_gflops", {})), bandwidth_gbs=base.get("bandwidth_gbs", 0.0),
                         memory_gb=base.get("memory_gb", 0.0), transfer_gbs=base.get("transfer_gbs", 0.0),
                         classes=classes)


def fit_platform(platform: str, rows=None) -> tuple[DeviceProfile, list]:
    """A profile fitted to Table 1's rows of ``platform`` and the
    leave-one-out predictions: (profile, [(label, measured, fitted, loo)])."""
    from comem.spec.data import devices

    rows = rows if rows is not None else platform_rows(platform)
    pts = [(_row_features(mt, co), batch / per_s) for (_, co, batch, _, per_s, mt) in rows]
    x = fit_rows(pts)
    base = devices("devices.toml").get(platform, {})
    dtype = rows[0][3]
    prof = _profile_from_coef(x, platform, dtype, base)
    out = []
    for k, (label, co, batch, _, per_s, mt) in enumerate(rows):
        loo = _profile_from_coef(fit_rows(pts[:k] + pts[k + 1:]), platform, dtype, base)
        fitted = _per_s(predict(None, prof, batch, dtype, terms=mt), co)
        out.append((label, per_s, fitted, _per_s(predict(None, loo, batch, dtype, terms=mt), co)))
    errs = [p / m - 1 for _, m, _, p in out]
    prof.loo = accuracy(errs, [m for _, m, _, _ in out], [p for _, _, _, p in out])
    prof.provenance = {"fitted_to": "Table 1 throughput (Table 6's batch and precision), "
                                    "specs/published/co3d-eccv2022.toml", "rows": len(rows),
                       "parameters": "dense and depthwise/grouped time per FLOP, time per byte, fixed cost per eager "
                                     "call and per forward_step call"}
    prof.sources = list(base.get("sources", [])) + [
        "classes: fitted to the published rows (comem calibrate --platform); peak_gflops, bandwidth_gbs: datasheet"]
    return prof, out


def _per_s(pr, co):
    return pr.continual["per_s"] if co else pr.regular["per_s"]


def accuracy(errors, measured, predicted) -> dict:
    """Median |error|, share within ±15 % and ±25 %, Spearman's rank
    correlation of predicted with measured."""
    a = sorted(abs(e) for e in errors)
    return {"median_abs_error": round(statistics.median(a), 4),
            "within_15": round(sum(e <= 0.15 for e in a) / len(a), 4),
            "within_25": round(sum(e <= 0.25 for e in a) / len(a), 4),
            "spearman": round(spearman(measured, predicted), 4), "rows": len(a)}


def spearman(a, b) -> float:
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.mean(ra), statistics.mean(rb)
    num = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    den = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return num / den if den else 0.0


# -- tables (comem calibrate) ------------------------------------------------------

def calibration_tables(prof: DeviceProfile, cases: list, path=None) -> list:
    from comem.results.formats import Table

    rows = []
    for mode in MODES:
        for cls, p in prof.classes.get(mode, {}).items():
            n = sum(1 for c in cases if cls in features(c.terms, mode, lambda k: k)
                    and (c.clip_s if mode == "clip" else c.step_s))
            rows.append([mode, cls, n, round(p["fixed_us"], 2), _rate(p["gflops"]), _rate(p["gbs"])])
    s = prof.spread
    notes = [f"{prof.title}; torch {prof.provenance.get('torch')}, continual-inference "
             f"{prof.provenance.get('continual_inference')}, {prof.provenance.get('threads')} thread(s) pinned, "
             f"{prof.provenance.get('date')}",
             f"{len(cases)} cases (specs/devices/calibration.toml) in {s.get('seconds', 0):.0f} s; timing spread "
             f"median {s.get('median', 0):.1%}, worst {s.get('worst', 0):.1%}; drift of {s.get('drift_case')} "
             f"between the first and last timing {s.get('drift', 0):.1%}",
             "clip: an eager torch.nn module on a clip; step: a continual-inference forward_step; classes no case "
             "covers fall back to their family (conv_depthwise), then conv, then default; "
             f"rates shown as ∞ are too fast to identify (≥ {UNBOUNDED:g})",
             f"peak for MFU: {prof.peak_gflops.get('fp32', 0):.1f} GFLOP/s (the best case)",
             "layers inside a network run " + ", ".join(f"{v:.2f}× ({m})" for m, v in prof.in_network.items())
             + " their time alone (the generic networks' median; predictions are scaled by it)"]
    warn = noise_note(prof)
    if warn:
        notes.append("⚠ " + warn)
    if path:
        notes.append(f"saved to {path}")
    return [Table(f"Device profile — {prof.name} (calibrated)", ["mode", "class", "cases", "fixed (us)",
                                                                 "GFLOP/s", "GB/s"], rows, notes, numeric=(2, 3, 4, 5))]


def platform_tables(prof: DeviceProfile, loo: list, path=None) -> list:
    from comem.results.formats import Table

    from comem.results.formats import Percent, Rounded

    rows = [[label, Rounded(float(m), 3), Rounded(float(f), 3), Percent(100 * (f / m - 1), 1, True),
             Rounded(float(p), 3), Percent(100 * (p / m - 1), 1, True)] for label, m, f, p in loo]
    a = prof.loo
    clip, step = prof.classes["clip"], prof.classes["step"]
    notes = [f"{prof.title}: {len(loo)} rows of Table 1 at Table 6's batch, {prof.dtype}",
             f"leave-one-out: median |error| {a['median_abs_error']:.1%}, within ±15 % {a['within_15']:.0%}, "
             f"within ±25 % {a['within_25']:.0%}, Spearman {a['spearman']:.3f}",
             f"fitted: dense {_rate(clip['default']['gflops'])} GFLOP/s, depthwise/grouped "
             f"{_rate(clip['conv_depthwise']['gflops'])} GFLOP/s, {_rate(clip['default']['gbs'])} GB/s, "
             f"{clip['default']['fixed_us']:.1f} us per eager call, {step['default']['fixed_us']:.1f} us per "
             "forward_step call"]
    if path:
        notes.append(f"saved to {path}")
    return [Table(f"Device profile — {prof.name} (fitted to Table 1)", ["row", "published /s", "fitted /s",
                                                                       "error", "leave-one-out /s", "error"],
                  rows, notes, numeric=(1, 2, 4))]


def _rate(v):
    return "∞" if v >= UNBOUNDED else round(v, 2)
