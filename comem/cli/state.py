"""`comem state MODEL`: the state manifest — every state tensor of the continual step, in order."""
from __future__ import annotations

import click

from comem.cli.options import (Checked, NameValue, WholeNumber, batch_option, clip_option, dtype_type, knob_option,
                                profile_type, size_option)
from comem.cli.output import emit


def _format_type():
    from comem.results.formats import FORMATS, check_format
    from comem.results.state_manifest import EXTRA_FORMATS

    def check(v):
        key = str(v).strip().lower()
        return key if key in EXTRA_FORMATS else check_format(v)

    return Checked(tuple(FORMATS) + EXTRA_FORMATS, check)


@click.command("state")
@click.argument("model")
@clip_option()
@size_option()
@click.option("--profile", "-p", type=profile_type(), default="continual-inference", show_default=True,
              help="Whose state: continual-inference (the exported graph's s0..sN), stream-buffer (MoViNet's "
                   "state names) or paper.")
@knob_option()
@click.option("--set", "params", multiple=True, type=NameValue("depth_factor=5.0"),
              help="Override a spec parameter. Repeatable.")
@click.option("--dtype", type=dtype_type(), default="fp32", show_default=True, help="Bytes per state float.")
@batch_option(help="Streams in one batch: the batch axis of every tensor.")
@click.option("--check", is_flag=True,
              help="Export the step with continual-inference's exporter, compare the ONNX graph's state inputs "
                   "and outputs with the manifest, run it in ONNX Runtime and show one stream's memory "
                   "(needs pip install 'comem[export]').")
@click.option("--streams", "-n", type=WholeNumber("streams", 1, 1_000_000), default=8, show_default=True,
              help="With --check: the memory of this many streams.")
@click.option("--format", "-f", "fmt", type=_format_type(), default="table", show_default=True,
              help="Output format (c-header: a C header of the tensors).")
def state_cmd(model, clip, size, profile, knobs, params, dtype, batch, check, streams, fmt):
    """List every state tensor of MODEL's continual step.

    One row per tensor: its graph name (continual-inference: the s0..sN
    inputs and ns0..nsN outputs co.onnx.export gives; stream-buffer:
    MoViNet's state names), the layer that owns it, its role, shape at the
    batch, dtype, bytes and initial value.  Float state totals equal the
    report's state; indices and counters are integers, totalled apart.
    """
    from comem import api

    rep = api.analyze(model, clip=clip, size=size, profile=profile, knobs=dict(knobs) or None,
                      params=dict(params) or None, dtype=dtype, batch=batch)
    m = rep.state_tensors
    if not check:
        emit(m.render(fmt), "table" if fmt == "c-header" else fmt)
        return
    from comem.errors import ComemError

    if m.naming != "onnx":
        raise ComemError("--check exports with continual-inference: use --profile continual-inference")
    from comem.pytorch.export import check_model, check_tables

    res = check_model(model, rep.clip, (rep.size, rep.width), knobs=dict(knobs) or None, params=dict(params) or None,
                      batch=batch)
    if fmt == "json":
        from comem.results.formats import to_json

        emit(to_json(dict(m.to_dict(), check=res.to_dict(streams))), fmt)
    elif fmt == "c-header":
        raise ComemError("--check prints tables or JSON; drop --check for the C header")
    else:
        from comem.results.formats import render_tables

        emit(render_tables(m.tables(fmt) + check_tables(res, streams), fmt), fmt)
    if not res.ok:
        import sys

        sys.exit(1)
