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
the allocator saw inside kernels beside them.  Predictions: the runtime peak
(:mod:`comem.model.runtime`) and the roofline (:mod:`comem.device.roofline`) for the
platform's device, or for this machine when benchmarking on its CPU.
"""
from __future__ import annotations

import statistics
import time

from comem.errors import ComemError

PLATFORM_INDEX = {"cpu": 0, "tx2": 1, "xavier": 2, "rtx2080ti": 3}


def platform_preset(model, platform: str) -> dict:
    """Table 6's batch (regular, continual) and precision for ``model``."""
    from comem.spec.data import published as load_published
    from comem.spec.registry import resolve

    if platform not in PLATFORM_INDEX:
        raise ComemError(f"unknown platform {platform!r}; choose one of: {', '.join(PLATFORM_INDEX)}")
    pub = load_published()
    name = resolve(model).name
    i = PLATFORM_INDEX[platform]
    batches = {r.get("continual", False): r["batch"][i] for r in pub["table6"]["rows"] if r["model"] == name}
    return {"regular": batches.get(False, 1), "continual": batches.get(True, batches.get(False, 1)),
            "dtype": pub["table6"]["precision"][platform]}


def bench(model, device: str = "cpu", platform: str | None = None, batch: int | None = None,
          dtype: str | None = None, runs: int = 10, clip=None, size=None, threads: int = 1, params=None,
          progress=None) -> dict:
    from comem.pytorch import require_extra

    require_extra()
    import torch

    from comem.device.roofline import predict
    from comem.model.runtime import runtime_peak
    from comem.pytorch.instrument import input_dims
    from comem.pytorch.measure import allocator_peak_cpu, build, measure_peak

    progress = progress or (lambda step: None)
    if device not in ("cpu", "cuda"):
        raise ComemError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ComemError("--device cuda: no CUDA device is available here; use --device cpu")
    if runs < 2 or runs > 10_000:
        raise ComemError(f"--runs must be 2..10000, got {runs}")
    preset = platform_preset(model, platform) if platform else {"regular": 1, "continual": 1, "dtype": "fp32"}
    dtype = dtype or preset["dtype"]
    if device == "cpu" and dtype == "fp16":
        raise ComemError("fp16 convolutions on CPU are not what a deployment runs; use --dtype fp32 (or bf16) on CPU")
    b_reg = batch or preset["regular"]
    b_co = batch or preset["continual"]
    if device == "cpu":
        torch.set_num_threads(threads)
    setup, reg, com, (clip, h, w), tdt = build(model, clip, size, dtype, params)
    progress("build")
    dev = torch.device(device)
    spatial = input_dims(setup.spec.dims, h, w)
    c_in = setup.graph.in_channels

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    out = {"model": setup.spec.name, "device": device, "platform": platform, "dtype": dtype, "clip": clip,
           "size": [h, w], "threads": threads if device == "cpu" else None, "runs": runs}
    reg = reg.to(dev)
    x_cpu = torch.randn(b_reg, c_in, clip, *spatial, dtype=tdt)
    with torch.no_grad():
        for _ in range(2):
            reg(x_cpu.to(dev)).cpu()
        times = []
        for _ in range(runs):
            sync()
            t0 = time.perf_counter()
            reg(x_cpu.to(dev)).cpu()
            sync()
            times.append(time.perf_counter() - t0)
    rates = [b_reg / t for t in times]
    out["regular"] = {"batch": b_reg, "clips_per_s": statistics.mean(rates), "clips_per_s_std": statistics.stdev(rates),
                      "latency_ms": statistics.mean(times) * 1000}
    reg.cpu()
    progress("regular")
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
        out["continual"] = {"batch": b_co, "frames_per_s": statistics.mean(rates),
                            "frames_per_s_std": statistics.stdev(rates), "latency_ms": statistics.mean(times) * 1000}
        com.cpu()
    progress("continual")
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
    target = platform or ("this" if device == "cpu" else None)
    if target:
        pr_reg = predict(model, target, b_reg, dtype, clip, (h, w), params)
        out["predicted"]["device"] = pr_reg.device
        out["predicted"]["regular"]["clips_per_s"] = pr_reg.regular["per_s"]
        if com is not None:
            pr_co = predict(model, target, b_co, dtype, clip, (h, w), params)
            out["predicted"]["continual"]["frames_per_s"] = pr_co.continual["per_s"]
    progress("predict")
    return out


STEPS = ("build", "regular", "continual", "memory", "predict")


def bench_table(d: dict):
    from comem.results.formats import Table

    rows = []
    pr = d["predicted"]
    reg = d["regular"]
    rows.append(["regular: clips/s", f"{reg['clips_per_s']:.3f} ± {reg['clips_per_s_std']:.3f}",
                 _fmt(pr["regular"].get("clips_per_s"))])
    rows.append(["regular: latency", f"{reg['latency_ms']:.2f} ms", ""])
    rows.append(["regular: peak allocated (bytes)", f"{reg['peak_allocated_bytes']:,}",
                 f"{pr['regular']['peak_allocated_bytes']:,}"])
    if "scratch_bytes" in reg:
        rows.append(["regular: kernels' scratch (CPU allocator)", f"{reg['scratch_bytes']:,}", "not modelled"])
    co = d.get("continual")
    if co:
        rows.append(["continual: frames/s", f"{co['frames_per_s']:.3f} ± {co['frames_per_s_std']:.3f}",
                     _fmt(pr["continual"].get("frames_per_s"))])
        rows.append(["continual: latency", f"{co['latency_ms']:.2f} ms", ""])
        rows.append(["continual: peak allocated (bytes)", f"{co['peak_allocated_bytes']:,}",
                     f"{pr['continual']['peak_allocated_bytes']:,}"])
        rows.append(["speed-up (frames/s over clips/s)", f"{co['frames_per_s'] / reg['clips_per_s']:.2f}×",
                     _fmt(pr["continual"].get("frames_per_s", 0) / pr["regular"]["clips_per_s"], "×")
                     if pr["regular"].get("clips_per_s") else ""])
    notes = [f"{d['model']} on {d['device']}" + (f" ({d['threads']} thread{'s' if d['threads'] != 1 else ''})"
                                                 if d.get("threads") else "")
             + f", {d['dtype']}, clip {d['clip']}, batch {reg['batch']}"
             + (f" / {co['batch']} (continual)" if co else "") + f", {d['runs']} runs"
             + (f"; platform preset {d['platform']} (Table 6)" if d.get("platform") else ""),
             "predicted speed: the roofline of comem.device.roofline"
             + (f" for {pr['device']}" if pr.get("device") else " (no device figures for this run)"),
             "peak allocated: measured " + ("by torch.cuda.max_memory_allocated" if d["device"] == "cuda" else
                                            "as weights + input + state + the peak of live tensors (CPU tracker)")]
    return Table(f"Benchmark — {d['model']}", ["quantity", "measured", "comem"], rows, notes)


def _fmt(v, unit=""):
    if v is None:
        return ""
    return f"{v:.3f}{unit}" if v < 100 else f"{v:,.1f}{unit}"
