"""`comem validate MODEL`: build the model in PyTorch and compare comem with the instruments."""
from __future__ import annotations

import sys

import click

from comem.cli.options import NameValue, clip_option, format_option, knob_completions, size_option
from comem.cli.output import emit, progress


@click.command("validate")
@click.argument("model")
@clip_option()
@size_option()
@click.option("--knob", "-k", "knobs", multiple=True, type=NameValue("conv_state=library-buffer", knob_completions),
              help="Change a knob of the continual-inference profile.")
@click.option("--layers", is_flag=True, help="Show every per-layer check, not only the layer groups.")
@click.option("--no-ptflops", is_flag=True, help="Skip ptflops' own count of the regular model.")
@format_option()
def validate_cmd(model, clip, size, knobs, layers, no_ptflops, fmt):
    """Compare comem's continual-inference numbers with instrumented models.

    Builds the regular and the continual PyTorch model of MODEL, warms the
    continual one up through its receptive field and measures state,
    parameters, work per step and per clip, delay, receptive field and the
    transient peak of one step; exits 1 on any mismatch.  Needs
    pip install 'comem[validate]'.
    """
    from comem.results.formats import render_tables
    from comem.pytorch import require_extra

    require_extra()
    from comem.pytorch.validate import STEPS, validate, validation_tables

    with progress(len(STEPS), f"validating {model}") as bar:
        v = validate(model, clip, size, "continual-inference", dict(knobs), use_ptflops=not no_ptflops,
                     progress=lambda step: bar.update(1, step))
    if fmt == "json":
        from comem.results.formats import to_json

        emit(to_json(v.to_dict()), fmt)
    else:
        emit(render_tables(validation_tables(v, layers), fmt), fmt)
    if not v.ok:
        sys.exit(1)
