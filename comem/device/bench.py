"""``comem bench``: measure the regular and the continual model built from a
spec, the way Appendix B did, and put comem's predictions beside them.

Protocol (Appendix B): the models are warmed up to steady state (the
continual one through its receptive field); each timed call starts with the
input ready on the CPU, transfers it to the device, runs, and transfers the
result back.  Batch 1 on CPU; a ``--platform`` preset takes Table 6's batch
and precision for the model (fp16 on the Jetsons).  Reported: clips/s
(regular) and frames/s (continual), mean ± std over the runs, the latency of
one call, and the peak allocated bytes — CUDA's ``max_memory_allocated``; on
CPU the live-tensor terms (:mod:`comem.pytorch.measure`), with the scratch
the allocator saw inside kernels beside them; MFU (executed FLOP/s over the
profile's peak), the measured continual/regular speed-up, and whether each
keeps up with a frame rate (``fps``).  Predictions: the runtime peak
(:mod:`comem.model.runtime`) and the latency model
(:mod:`comem.device.latency`) with the platform's fitted profile, or the
profile ``comem calibrate`` saved for this machine.
"""
from __future__ import annotations

import statistics
import time

from comem.errors import ComemError, arg

#: the paper's platforms (their data: specs/published/co3d-eccv2022.toml, specs/devices/)
PLATFORMS = ("cpu", "tx2", "xavier", "rtx2080ti")

#: streams a measured run holds at most (it allocates the whole batch; an analysis takes any batch)
MAX_RUN_BATCH = 4096


def platform_preset(model, platform: str) -> dict:
    """Table 6's batch (regular, continual) and precision for ``model``."""
    from comem.spec.data import published as load_published
    from comem.spec.registry import resolve

    if platform not in PLATFORMS:
        raise ComemError(f"unknown platform {platform!r}; choose one of: {', '.join(PLATFORMS)}")
    pub = load_published()
    name = resolve(model).name
    batches = {r.get("continual", False): r["batch"][platform] for r in pub["table6"]["rows"] if r["model"] == name}
    return {"regular": batches.get(False, 1), "continual": batches.get(True, batches.get(False, 1)),
            "dtype": pub["table6"]["precision"][platform]}


def time_models(model, device: str = "cpu", b_reg: int = 1, b_co: int = 1, dtype: str = "fp32", runs: int = 10,
                clip=None, size=None, threads: int = 1, params=None, progress=None, warmup: int = 2) -> dict:
    """Time the regular clip and the continual step of the models built from
    the spec (Appendix B's protocol): ``{"regular": {...}, "continual":
    {...} or None, "clip", "size", "model"}``.  On CPU at ``threads``
    threads (restored afterwards)."""
    from comem.pytorch import require_extra

    require_extra()
    import torch

    from comem.pytorch.instrument import input_dims
    from comem.pytorch.measure import build

    progress = progress or (lambda step: None)
    before = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(threads)
    try:
        setup, reg, com, (clip, h, w), tdt = build(model, clip, size, dtype, params)
        progress("build")
        dev = torch.device(device)
        spatial = input_dims(setup.spec.dims, h, w)
        c_in = setup.graph.in_channels

        def sync():
            if device == "cuda":
                torch.cuda.synchronize()

        out = {"model": setup.spec.name, "clip": clip, "size": [h, w], "reg_module": reg, "co_module": com,
               "input": (c_in, spatial, tdt)}
        reg = reg.to(dev)
        x_cpu = torch.randn(b_reg, c_in, clip, *spatial, dtype=tdt)
        with torch.no_grad():
            for _ in range(warmup):
                reg(x_cpu.to(dev)).cpu()
            times = []
            for _ in range(runs):
                sync()
                t0 = time.perf_counter()
                reg(x_cpu.to(dev)).cpu()
                sync()
                times.append(time.perf_counter() - t0)
        rates = [b_reg / t for t in times]
        out["regular"] = {"batch": b_reg, "clips_per_s": statistics.mean(rates),
                          "clips_per_s_std": statistics.stdev(rates), "latency_ms": statistics.mean(times) * 1000,
                          "seconds": statistics.mean(times)}
        reg.cpu()
        progress("regular")
        out["continual"] = None
        if com is not None:
            com = com.to(dev)
            frame = torch.randn(b_co, c_in, *spatial, dtype=tdt)
            with torch.no_grad():   # steps by forward_step, as comem.pytorch measures them
                for _ in range(int(com.receptive_field) + 2):
                    com.forward_step(frame.to(dev))
                times = []
                for _ in range(runs):
                    sync()
                    t0 = time.perf_counter()
                    y = com.forward_step(frame.to(dev))
                    if y is not None:
                        y.cpu()
                    sync()
                    times.append(time.perf_counter() - t0)
            rates = [b_co / t for t in times]
            # frames/s over the run: a model behind a temporal stride skips work on some steps
            out["continual"] = {"batch": b_co, "frames_per_s": b_co * runs / sum(times),
                                "frames_per_s_std": statistics.stdev(rates),
                                "latency_ms": statistics.mean(times) * 1000, "seconds": statistics.mean(times)}
            com.cpu()
        progress("continual")
    finally:
        torch.set_num_threads(before)
    return out


def bench(model, device: str = "cpu", platform: str | None = None, batch: int | None = None,
          dtype: str | None = None, runs: int = 10, clip=None, size=None, threads: int = 1, params=None,
          progress=None, profile=None, fps: float | None = None) -> dict:
    """Measure speed and memory and put comem's predictions beside them.

    ``device``: where the models run (``cpu``, ``cuda``); ``platform``: one
    of the paper's platforms, for Table 6's batch and precision and its
    fitted profile; ``profile``: the device profile that predicts the speed
    (default: the platform's, else the one ``comem calibrate`` saved for
    this machine, if any); ``fps``: a frame rate to keep up with."""
    from comem.pytorch import require_extra

    require_extra()
    import torch

    from comem.device.latency import get_profile, predict, this_profile_path
    from comem.model.runtime import runtime_peak
    from comem.pytorch.measure import allocator_peak_cpu, measure_peak

    progress = progress or (lambda step: None)
    if device not in ("cpu", "cuda"):
        raise ComemError(f"{arg('device')} must be cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ComemError(f"{arg('device')} cuda: no CUDA device is available here; use {arg('device')} cpu")
    if runs < 2 or runs > 10_000:
        raise ComemError(f"{arg('runs')} must be 2..10000, got {runs}")
    if fps is not None and not (0 < fps <= 100_000):
        raise ComemError(f"{arg('fps')} must be a positive frame rate, got {fps}")
    if batch is not None and not 1 <= batch <= MAX_RUN_BATCH:
        raise ComemError(f"{arg('batch')} {batch} is more streams than a measured run holds; give 1..{MAX_RUN_BATCH}")
    preset = platform_preset(model, platform) if platform else {"regular": 1, "continual": 1, "dtype": "fp32"}
    dtype = dtype or preset["dtype"]
    if device == "cpu" and dtype == "fp16":
        raise ComemError(f"fp16 convolutions on CPU are not what a deployment runs; use {arg('dtype')} fp32 (or bf16) "
                         "on CPU")
    b_reg = batch or preset["regular"]
    b_co = batch or preset["continual"]
    if profile is None:
        profile = platform or ("this" if device == "cpu" and this_profile_path().exists() else None)
    prof = get_profile(profile) if profile is not None else None
    t = time_models(model, device, b_reg, b_co, dtype, runs, clip, size, threads, params, progress)
    clip, (h, w) = t["clip"], t["size"]
    reg, com = t.pop("reg_module"), t.pop("co_module")
    c_in, spatial, tdt = t.pop("input")
    out = {"model": t["model"], "device": device, "platform": platform, "dtype": dtype, "clip": clip,
           "size": [h, w], "threads": threads if device == "cpu" else None, "runs": runs,
           "regular": t["regular"], "fps": fps}
    if t["continual"] is not None:
        out["continual"] = t["continual"]
    # memory: measured and predicted (the runtime peak at each part's batch)
    kind = "cuda" if device == "cuda" else "cpu"
    # one measurement (and prediction) serves both parts when they run at the same batch
    peak_reg = measure_peak(model, clip, (h, w), dtype, b_reg, params, device)
    pred_reg = runtime_peak(model, clip, (h, w), dtype, b_reg, kind, params)
    same = b_co == b_reg
    peaks = {"regular": peak_reg, "continual": None if com is None else
             peak_reg if same else measure_peak(model, clip, (h, w), dtype, b_co, params, device)}
    pred_co = None if com is None else pred_reg if same else runtime_peak(model, clip, (h, w), dtype, b_co, kind,
                                                                         params)
    out["regular"]["peak_allocated_bytes"] = peaks["regular"].regular["total"]
    out["predicted"] = {"regular": {"peak_allocated_bytes": pred_reg.regular.total}}
    if com is not None:
        out["continual"]["peak_allocated_bytes"] = peaks["continual"].continual["total"]
        out["predicted"]["continual"] = {"peak_allocated_bytes": pred_co.continual.total}
    if device == "cpu":
        x = torch.randn(b_reg, c_in, clip, *spatial, dtype=tdt)
        total_reg = allocator_peak_cpu(reg, x)
        out["regular"]["scratch_bytes"] = max(0, total_reg - peaks["regular"].regular["activations"])
        out["regular"]["peak_terms"] = peaks["regular"].regular
        if com is not None:
            out["continual"]["peak_terms"] = peaks["continual"].continual
    progress("memory")
    # speed: predicted by the profile (never by running the model), MFU against its peak
    pr_reg = predict(model, prof, b_reg, dtype, clip, (h, w), params) if prof else None
    if pr_reg is None:
        from comem.device.latency import model_terms

        mt = model_terms(model, b_reg, dtype, clip, (h, w), params)
        flops_reg, flops_co = mt.flops_clip, mt.flops_step
    else:
        flops_reg = pr_reg.regular["flops"]
        pr_co = pr_reg if same else predict(model, prof, b_co, dtype, clip, (h, w), params)
        flops_co = pr_co.continual["flops"] if pr_co.continual else 0.0
        out["predicted"]["device"] = prof.name
        out["predicted"]["origin"] = prof.origin
        out["predicted"]["regular"]["clips_per_s"] = pr_reg.regular["per_s"]
        if com is not None:
            out["predicted"]["continual"]["frames_per_s"] = pr_co.continual["per_s"]
    peak = prof.peak_gflops.get(dtype, 0.0) * 1e9 if prof else 0.0
    out["peak_gflops"] = peak / 1e9 if peak else None
    out["regular"]["flops"] = flops_reg
    out["regular"]["achieved_gflops"] = flops_reg * out["regular"]["clips_per_s"] / b_reg / 1e9
    out["regular"]["mfu"] = out["regular"]["achieved_gflops"] * 1e9 / peak if peak else None
    if com is not None:
        co = out["continual"]
        co["flops"] = flops_co
        co["achieved_gflops"] = flops_co * co["frames_per_s"] / b_co / 1e9
        co["mfu"] = co["achieved_gflops"] * 1e9 / peak if peak else None
        out["speedup"] = co["frames_per_s"] / out["regular"]["clips_per_s"]
        if "clips_per_s" in out["predicted"]["regular"]:
            out["predicted"]["speedup"] = (out["predicted"]["continual"]["frames_per_s"]
                                           / out["predicted"]["regular"]["clips_per_s"])
    if fps:
        # a regular model answers each new frame with a whole clip: it keeps up when clips/s >= fps
        out["keeps_up"] = {"regular": out["regular"]["clips_per_s"] >= fps}
        if com is not None:
            out["keeps_up"]["continual"] = out["continual"]["frames_per_s"] >= fps
    progress("predict")
    return out


STEPS = ("build", "regular", "continual", "memory", "predict")


def bench_table(d: dict):
    """The measured figures beside comem's, one quantity a row: numbers as
    numbers (JSON/CSV), the spread and the unit in their own columns."""
    from comem.results.formats import Percent, Ratio, Rounded, Table

    rows = []
    pr = d["predicted"]
    reg = d["regular"]

    def per_s(v):
        return None if v is None else Rounded(v, 3)

    def ms(rate, batch):
        return Rounded(batch / rate * 1000, 2) if rate else None

    def mfu_rows(label, part):
        if part.get("mfu") is not None:
            rows.append([f"{label}: MFU (achieved / peak FLOP/s)", Percent(part["mfu"] * 100), None, None, "% of peak"])
        rows.append([f"{label}: achieved", Rounded(part["achieved_gflops"], 2), None, None, "GFLOP/s"])

    rows.append(["regular: throughput", Rounded(reg["clips_per_s"], 3), Rounded(reg["clips_per_s_std"], 3),
                 per_s(pr["regular"].get("clips_per_s")), "clips/s"])
    rows.append(["regular: latency", Rounded(reg["latency_ms"], 2), None, ms(pr["regular"].get("clips_per_s"),
                                                                             reg["batch"]), "ms"])
    mfu_rows("regular", reg)
    rows.append(["regular: peak allocated", reg["peak_allocated_bytes"], None,
                 pr["regular"]["peak_allocated_bytes"], "bytes"])
    if "scratch_bytes" in reg:
        rows.append(["regular: kernels' scratch (CPU allocator)", reg["scratch_bytes"], None, "not modelled", "bytes"])
    co = d.get("continual")
    if co:
        rows.append(["continual: throughput", Rounded(co["frames_per_s"], 3), Rounded(co["frames_per_s_std"], 3),
                     per_s(pr["continual"].get("frames_per_s")), "frames/s"])
        rows.append(["continual: latency", Rounded(co["latency_ms"], 2), None,
                     ms(pr["continual"].get("frames_per_s"), co["batch"]), "ms"])
        mfu_rows("continual", co)
        rows.append(["continual: peak allocated", co["peak_allocated_bytes"], None,
                     pr["continual"]["peak_allocated_bytes"], "bytes"])
        rows.append(["speed-up (frames/s over clips/s)", Ratio(d["speedup"]), None,
                     None if pr.get("speedup") is None else Ratio(pr["speedup"]), "ratio"])
    if d.get("fps"):
        for part in ("regular", "continual"):
            if part in d["keeps_up"]:
                want = pr[part].get("clips_per_s" if part == "regular" else "frames_per_s")
                rows.append([f"{part}: keeps up with {d['fps']:g} fps", bool(d["keeps_up"][part]), None,
                             None if want is None else bool(want >= d["fps"]), ""])
    notes = [f"{d['model']} on {d['device']}" + (f" ({d['threads']} thread{'s' if d['threads'] != 1 else ''})"
                                                 if d.get("threads") else "")
             + f", {d['dtype']}, clip {d['clip']}, batch {reg['batch']}"
             + (f" / {co['batch']} (continual)" if co else "") + f", {d['runs']} runs"
             + (f"; platform preset {d['platform']} (Table 6)" if d.get("platform") else ""),
             ("predicted speed: the latency model of comem.device.latency with the "
              f"{pr.get('origin', '')} profile {pr['device']!r}" if pr.get("device") else
              "predicted speed: none — no profile of this machine; run `comem calibrate` (about a minute), "
              "or pass --profile"),
             "MFU: executed FLOPs per second over the profile's peak"
             + (f" ({d['peak_gflops']:.1f} GFLOP/s)" if d.get("peak_gflops") else " (no profile: not shown)"),
             "peak allocated: measured " + ("by torch.cuda.max_memory_allocated" if d["device"] == "cuda" else
                                            "as weights + input + state + the peak of live tensors (CPU tracker)")]
    if d.get("fps"):
        notes.append("keeps up: regular clips/s (one clip per new frame) or continual frames/s at least the frame rate")
    return Table(f"Benchmark — {d['model']}", ["quantity", "measured", "±", "comem", "unit"], rows, notes,
                 numeric=(1, 2, 3))
