"""`comem MODEL` (`comem analyze MODEL`): the main job."""
from __future__ import annotations

import click

from comem.cli.options import view_type, model_options, format_option, common_kwargs
from comem.cli.output import emit


@click.command("analyze")
@click.argument("model")
@model_options
@format_option()
@click.option("--view", type=view_type(), default="breakdown", show_default=True,
              help="What the table (and JSON/CSV) shows.")
@click.option("--top", type=click.IntRange(min=1), default=None, help="Only the N heaviest layers.")
@click.option("--depth", type=click.IntRange(min=1), default=None,
              help="Layers summed to N levels of their path (1: stages, 2: blocks...), as torchinfo's depth.")
@click.option("--runtime", type=click.Choice(["pytorch"]), default=None,
              help="Also predict the peak bytes PyTorch allocates (eager regular clip, continual-inference step).")
@click.option("--device", "device", type=click.Choice(["cuda", "cpu"]), default="cuda", show_default=True,
              help="The allocator --runtime models (cuda: 512-byte blocks).")
def analyze_cmd(model, clip, size, profile, knobs, params, dtype, batch, convention, fmt, view, top, depth, runtime,
                device):
    """Analyse MODEL (a built-in name or a spec file)."""
    from comem.api import analyze

    r = analyze(model, **common_kwargs(clip, size, profile, knobs, params, dtype, batch, convention),
                runtime=runtime, device=device)
    if depth and view == "breakdown" and not top:
        view = "layers"
    emit(r.render(fmt, view, top, depth), fmt)
