"""`comem predict`, `comem bench`: speed and memory on a device."""
from __future__ import annotations

import click

from comem.cli.options import NameValue, batch_option, clip_option, dtype_type, format_option, size_option
from comem.cli.output import emit, progress


@click.command("predict")
@click.argument("model")
@click.option("--device", "device", default="this", show_default=True,
              help="The device profile that predicts: 'this' (the profile `comem calibrate` saved for this "
                   "machine), a paper platform fitted to Table 1 (cpu, tx2, xavier, rtx2080ti), or a path to a "
                   "profile TOML.")
@clip_option()
@size_option()
@batch_option()
@click.option("--dtype", type=dtype_type(), default=None,
              help="Default: the profile's (fp16 for the Jetsons' fitted profiles, fp32 elsewhere).")
@click.option("--set", "params", multiple=True, type=NameValue("depth_factor=5.0"), help="Override a spec parameter.")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Slowest items shown.")
@format_option()
def predict_cmd(model, device, clip, size, batch, dtype, params, top, fmt):
    """Latency and throughput of the regular clip and the continual frame on a
    device, by comem's latency model (comem.device.latency): per layer, the
    time of its operation class — fixed cost per call, FLOPs over the class's
    rate, bytes over its bandwidth — from a device profile.  The model is
    never run.  A model, not a measurement: see comem bench.

    \b
    comem calibrate                                  # once: this machine's profile
    comem predict x3d-xs                             # on this machine
    comem predict x3d-m --device rtx2080ti --batch 64
    comem predict x3d-m --device xavier              # fp16, the profile fitted to Table 1
    """
    from comem.device.latency import get_profile, peak_bytes, predict, predict_data, predict_tables
    from comem.results.formats import render_tables

    prof = get_profile(device)
    pr = predict(model, prof, batch, dtype, clip, size, dict(params) or None)
    peaks = peak_bytes(model, pr, prof, size, batch, dict(params) or None)
    emit(render_tables(predict_tables(pr, prof, peaks, top), fmt, data=predict_data(pr, prof, peaks)), fmt)


@click.command("calibrate")
@click.option("--threads", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="CPU threads, pinned while timing (the paper used one core).")
@click.option("--seconds", type=click.FloatRange(0.05, 5.0), default=0.25, show_default=True,
              help="Time spent on each measurement (about 170 measurements: a clip and a step per case).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Where to write the profile. Default: this machine's, in comem's config directory "
                   "($COMEM_CONFIG_DIR, else $XDG_CONFIG_HOME/comem, else ~/.config/comem).")
@click.option("--force", is_flag=True, help="Keep a profile even when the machine was too noisy.")
@click.option("--platform", type=click.Choice(["cpu", "tx2", "xavier", "rtx2080ti"]), default=None,
              help="Instead of timing here: fit a paper platform's profile to Table 1's throughput and print "
                   "its leave-one-out errors (writes it only with --output).")
@format_option()
def calibrate_cmd(threads, seconds, output, force, platform, fmt):
    """Write a device profile for comem predict and comem bench: time generic
    layers of every operation class here (specs/devices/calibration.toml; a
    regular clip and a continual-inference step each; threads pinned; each
    timing repeated until stable), then fit each class's fixed cost per call,
    FLOP rate and bandwidth.  About a minute.  Refuses a machine too noisy to
    measure (median spread over 25 %) unless --force.

    \b
    comem calibrate                       # this machine -> comem's config directory
    comem calibrate --threads 4 -o quad.toml
    comem calibrate --platform xavier     # the fitted Xavier profile, leave-one-out errors
    """
    from comem.device.calibrate import (calibrate, calibration_tables, fit_platform, platform_tables,
                                        save_profile)
    from comem.results.formats import render_tables

    if platform:
        prof, loo = fit_platform(platform)
        path = save_profile(prof, output) if output else None
        data = prof.as_dict() | {"rows": [{"row": r[0], "published": r[1], "fitted": r[2], "leave_one_out": r[3]}
                                          for r in loo]}
        emit(render_tables(platform_tables(prof, loo, path), fmt, data=data), fmt)
        return
    from comem.device.calibrate import load_cases

    with progress(len(load_cases()), "calibrating") as bar:
        prof, cases = calibrate(threads, seconds, force, progress=lambda case: bar.update(1))
    path = save_profile(prof, output)
    emit(render_tables(calibration_tables(prof, cases, path), fmt, data=prof.as_dict() | {"path": str(path)}), fmt)


@click.command("bench")
@click.argument("model")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Where the models run (here: this machine's CPU, or its CUDA GPU).")
@click.option("--platform", type=click.Choice(["cpu", "tx2", "xavier", "rtx2080ti"]), default=None,
              help="A paper platform: Table 6's batch and precision for the model, and that platform's profile "
                   "(fitted to Table 1) for the prediction.")
@click.option("--profile", default=None,
              help="The device profile that predicts the speed: 'this', a platform name or a path. Default: the "
                   "platform's, else the one `comem calibrate` saved for this machine.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True, max=100000), default=None,
              help="A frame rate to keep up with (e.g. 30): shown for the measured and predicted speeds.")
@batch_option(default=None, help="Batch size (default: 1, or the platform's; a measured run holds at most 4096).")
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16"]), default=None,
              help="Default: fp32, or the platform's.")
@click.option("--runs", type=click.IntRange(2, 10000), default=10, show_default=True, help="Timed calls.")
@click.option("--threads", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="CPU threads (the paper used one core).")
@clip_option()
@size_option()
@format_option()
def bench_cmd(model, device, platform, profile, fps, batch, dtype, runs, threads, clip, size, fmt):
    """Measure the regular and continual models built from the spec (Appendix
    B's protocol: warm-up, input on the CPU, transfer, run, transfer back) and
    compare with comem's predictions: speed (latency model, from a device
    profile), MFU (achieved FLOP/s over the profile's peak), the continual /
    regular speed-up, whether each keeps up with --fps, and peak memory.
    Needs the [validate] extra.

    \b
    comem bench x3d-xs --fps 30
    comem bench x3d-m --device cuda --platform rtx2080ti -f json
    """
    from comem.device.bench import STEPS, bench, bench_table
    from comem.results.formats import render_tables

    with progress(len(STEPS), "benchmarking") as bar:
        d = bench(model, device, platform, batch, dtype, runs, clip, size, threads,
                  progress=lambda step: bar.update(1), profile=profile, fps=fps)
    emit(render_tables([bench_table(d)], fmt, data=d), fmt)
