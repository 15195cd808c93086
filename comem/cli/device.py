"""`comem predict`, `comem bench`: speed and memory on a device."""
from __future__ import annotations

import click

from comem.cli.options import WholeNumber, FrameSize, NameValue, dtype_type, format_option
from comem.cli.output import emit, progress


@click.command("predict")
@click.argument("model")
@click.option("--device", "device", default="rtx2080ti", show_default=True,
              help="cpu (the paper's i7-9750H core), tx2, xavier, rtx2080ti, orin, a100, h100, or 'this' (this "
                   "machine, calibrated by a short micro-benchmark).")
@click.option("--clip", "-T", type=WholeNumber("clip (frames)", 1, 100000), default=None,
              help="Frames per clip. Default: the spec's.")
@click.option("--size", "-S", type=FrameSize(), default=None, help="Frame size. Default: the spec's.")
@click.option("--batch", "-b", type=WholeNumber("batch (streams)", 1, 65536), default=1, show_default=True,
              help="Batch size (streams).")
@click.option("--dtype", type=dtype_type(), default=None, help="Default: fp16 on the Jetsons, fp32 elsewhere.")
@click.option("--set", "params", multiple=True, type=NameValue("depth_factor=5.0"), help="Override a spec parameter.")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Slowest layers shown.")
@format_option()
def predict_cmd(model, device, clip, size, batch, dtype, params, top, fmt):
    """Latency and throughput of the regular clip and the continual frame on a
    device, by a roofline: executed work and bytes moved per layer against the
    device's peaks (comem.device.roofline; figures and their sources in
    specs/devices/devices.toml).  A model, not a measurement: see comem bench.

    \b
    comem predict x3d-m --device rtx2080ti --batch 64
    comem predict x3d-m --device tx2 --batch 32      # fp16
    comem predict x3d-m --device this
    """
    from comem.results.formats import Table, render_tables
    from comem.device.roofline import predict
    from comem.model.runtime import runtime_peak

    pr = predict(model, device, batch, dtype, clip, size, dict(params) or None)
    from comem.device.roofline import get_device

    dev = get_device(device)
    rt = runtime_peak(model, pr.clip, size, pr.dtype, batch, "cpu" if dev["name"] in ("cpu", "this") else "cuda",
                      dict(params) or None)
    cap = dev["memory_gb"] * 1e9
    parts = [("regular (one clip)", pr.regular, rt.regular.total, "clips/s")]
    if pr.continual is not None:
        parts.append(("continual (one frame)", pr.continual, rt.continual.total, "frames/s"))
    rows = []
    for label, p, peak, unit in parts:
        mb = sum(1 for lt in p["layers"] if lt.bound == "memory")
        rows.append([label, f"{p['seconds'] * 1000:.3f} ms", f"{p['per_s']:,.2f} {unit}",
                     f"{mb} of {len(p['layers'])}", f"{peak / 2 ** 20:,.1f} MiB", "✓" if peak <= cap else "✗"])
    notes = [f"{dev['title']}; {pr.dtype}, batch {batch}, clip {pr.clip}"]
    if pr.continual is not None:
        notes.append(f"predicted speed-up, continual frames/s over regular clips/s: "
                     f"{pr.continual['per_s'] / pr.regular['per_s']:.2f}×")
    notes += [f"source: {x}" for x in dev.get("sources", [])]
    tables = [Table(f"Predicted speed — {pr.model} on {dev['name']}", ["", "latency", "throughput",
                                                                   "memory-bound layers", "peak allocated",
                                                                   f"fits {dev['memory_gb']:.3g} GB"], rows, notes)]
    steps = pr.continual if pr.continual is not None else pr.regular
    slow = sorted(steps["layers"], key=lambda lt: lt.seconds, reverse=True)[:top]
    tables.append(Table(f"Slowest layers of one {'step' if pr.continual is not None else 'clip'}",
                        ["layer", "kind", "FLOPs", "bytes", "time (us)", "bound"],
                        [[lt.path, lt.kind, lt.flops, lt.bytes, round(lt.seconds * 1e6, 1), lt.bound] for lt in slow],
                        numeric=(2, 3, 4)))
    if fmt == "json":
        import json

        from comem.results.formats import json_default

        d = pr.as_dict()
        d["peak_allocated_bytes"] = {"regular": rt.regular.total,
                                     "continual": None if rt.continual is None else rt.continual.total}
        d["device_memory_bytes"] = int(cap)
        emit(json.dumps(d, indent=2, default=json_default), fmt)
    else:
        emit(render_tables(tables, fmt), fmt)


@click.command("bench")
@click.argument("model")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Where the models run.")
@click.option("--platform", type=click.Choice(["cpu", "tx2", "xavier", "rtx2080ti"]), default=None,
              help="Table 6's batch and precision for the model on that platform, and its roofline prediction.")
@click.option("--batch", "-b", type=WholeNumber("batch (streams)", 1, 4096), default=None,
              help="Batch size (default: 1, or the platform's).")
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16"]), default=None,
              help="Default: fp32, or the platform's.")
@click.option("--runs", type=click.IntRange(2, 10000), default=10, show_default=True, help="Timed calls.")
@click.option("--threads", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="CPU threads (the paper used one core).")
@click.option("--clip", "-T", type=WholeNumber("clip (frames)", 1, 100000), default=None, help="Default: the spec's.")
@click.option("--size", "-S", type=FrameSize(), default=None, help="Default: the spec's.")
@format_option()
def bench_cmd(model, device, platform, batch, dtype, runs, threads, clip, size, fmt):
    """Measure the regular and continual models built from the spec (Appendix
    B's protocol: warm-up, input on the CPU, transfer, run, transfer back) and
    compare with comem's predictions.  Needs the [validate] extra.

    \b
    comem bench x3d-xs
    comem bench x3d-m --device cuda --platform rtx2080ti -f json
    """
    from comem.device.bench import STEPS, bench, bench_table
    from comem.results.formats import render_tables

    with progress(len(STEPS), "benchmarking") as bar:
        d = bench(model, device, platform, batch, dtype, runs, clip, size, threads,
                  progress=lambda step: bar.update(1))
    if fmt == "json":
        import json

        from comem.results.formats import json_default

        emit(json.dumps(d, indent=2, default=json_default), fmt)
    else:
        emit(render_tables([bench_table(d)], fmt), fmt)
