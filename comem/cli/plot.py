"""`comem plot`: figures (needs matplotlib)."""
from __future__ import annotations

import os

import click

from comem import _compat
from comem.errors import ComemError
from comem.cli.options import model_options, common_kwargs
from comem.cli.output import emit
from comem.cli.grid import split_params


@click.command("plot")
@click.argument("figure", type=click.Choice(["stages", "clip", "size", "models", "pareto-grid",
                                           "accuracy-throughput"]))
@click.argument("models", nargs=-1)
@click.option("--out", "-o", required=True, help="Output file: .png or .svg.")
@click.option("--range", "values", default=None, help="x values for 'clip'/'size' plots: 4..64 or 160,224 (default: "
                                                      "clip 1..128, size 32..448:8).")
@click.option("--x", "x_col", default="total_bytes", show_default=True, help="pareto-grid: the x column.")
@click.option("--y", "y_col", default="ops_per_step", show_default=True, help="pareto-grid: the y column.")
@click.option("--color", "color_col", default=None, help="pareto-grid: the colour column (default: the first "
                                                         "swept parameter).")
@click.option("--where", "where", multiple=True, help="pareto-grid: keep points meeting COLUMN OP NUMBER[UNIT].")
@click.option("--maximize", "maximize", default=None,
              help="pareto-grid: the front also maximises this column, e.g. params (default: min x and y only, "
                   "the lower-left edge).")
@click.option("--platform", *_compat.option_aliases("--platform"), "plot_device",
              type=click.Choice(["cpu", "tx2", "xavier", "rtx2080ti"]), default="rtx2080ti", show_default=True,
              help="accuracy-throughput: the paper's platform.")
@model_options
def plot_cmd(figure, models, out, values, x_col, y_col, color_col, where, maximize, plot_device, clip, size, profile, knobs, params, dtype,
             batch, convention):
    """Save a plot: stages (memory by stage), clip / size (memory and operations
    as they vary, continual vs regular), models (continual vs regular per model),
    pareto-grid (every design of a --set sweep, memory against operations per
    frame, coloured by a parameter, with the Pareto front).

    \b
    comem plot stages x3d-m -o x3d-m-stages.png
    comem plot clip x3d-m --range 4..128 -o clip.svg
    comem plot models x3d-s x3d-m x3d-l i3d-r50 slow-8x8-r50 -o models.png
    comem plot pareto-grid x3d-m --set width_factor=1..3:0.1 --set depth_factor=1..5:0.25 -o pareto.png
    comem plot accuracy-throughput --device rtx2080ti -o fig9.png     # Figures 6-9: cpu, tx2, xavier
    """
    from comem import plot
    from comem.core.units import MAX_CLIP, MAX_SIZE, parse_range

    ext = os.path.splitext(out)[1].lower()
    if ext not in (".png", ".svg"):
        raise ComemError(f"--out must end in .png or .svg, got {out!r}")
    if figure == "accuracy-throughput":
        if models:
            raise ComemError("accuracy-throughput draws the paper's models; give no MODEL, only --device")
        fig = plot.accuracy_throughput(plot_device)
        try:
            fig.savefig(out, dpi=120)
        except OSError as exc:
            raise ComemError(f"cannot write {out}: {exc.strerror or exc}") from None
        emit(f"wrote {out}")
        return
    if not models:
        raise ComemError(f"'comem plot {figure}' needs a MODEL")
    if figure == "pareto-grid":
        fixed, grid = split_params(params)
        params = tuple(fixed.items())
    kw = common_kwargs(clip, size, profile, knobs, params, dtype, batch, convention)
    if figure in ("stages", "clip", "size", "pareto-grid") and len(models) != 1:
        raise ComemError(f"'comem plot {figure}' takes one model, got {len(models)}")
    if figure == "stages":
        from comem.api import analyze

        fig = plot.memory_by_stage(analyze(models[0], **kw))
    elif figure in ("clip", "size"):
        default = "1..128" if figure == "clip" else "32..448:8"
        xs = parse_range(values or default, figure, 1, MAX_CLIP if figure == "clip" else MAX_SIZE)
        kw.pop(figure)
        fig = plot.against(models[0], figure, xs, **{k: v for k, v in kw.items() if v is not None})
    elif figure == "pareto-grid":
        if not grid:
            raise ComemError("pareto-grid sweeps spec parameters: give --set NAME=VALUES with a range or a list")
        fig = plot.pareto_grid(models[0], grid, x_col, y_col, color_col, [clip] if clip else None,
                               [size] if size else None, [batch], [dtype], profile, dict(knobs), convention,
                               fixed, where, maximize or None)
    else:
        fig = plot.continual_vs_regular(models, **kw)
    try:
        fig.savefig(out, dpi=120)
    except OSError as exc:
        raise ComemError(f"cannot write {out}: {exc.strerror or exc}") from None
    emit(f"wrote {out}")
