"""`comem compare`: models or settings side by side."""
from __future__ import annotations

import click

from comem.errors import ComemError
from comem.cli.options import model_options, format_option, common_kwargs
from comem.cli.output import emit


@click.command("compare")
@click.argument("items", nargs=-1, required=True)
@click.option("--each-profile", is_flag=True,
              help="Each item under every accounting profile: partial outputs (paper), the library's buffers "
                   "(continual-inference) and input-frame stream buffers (stream-buffer), side by side.")
@model_options
@format_option("table")
def compare_cmd(items, each_profile, clip, size, profile, knobs, params, dtype, batch, convention, fmt):
    """Models or settings side by side with ratios.

    \b
    comem compare x3d-s x3d-m x3d-l
    comem compare x3d-m x3d-m:clip=64 x3d-m:profile=continual-inference,dtype=fp16
    comem compare x3d-m:knob.se_pool=frame x3d-m:knob.se_pool=clip-causal
    comem compare movinet-a0-stream --each-profile   # the three state conventions
    """
    from comem.analyses.compare import compare, compare_table
    from comem.results.formats import render_tables
    from comem.accounting.profiles import PROFILES

    if each_profile:
        if profile is not None:
            raise ComemError("--each-profile shows every profile; drop --profile")
        items = tuple(f"{it}{',' if ':' in it else ':'}profile={p}" for it in items for p in PROFILES)

    reports = compare(items, common_kwargs(clip, size, profile, knobs, params, dtype, batch, convention))
    if fmt == "json":
        from comem.results.formats import to_json

        emit(to_json({label: r.summary() for label, r in reports}), fmt)
    else:
        emit(render_tables([compare_table(reports)], fmt), fmt)
