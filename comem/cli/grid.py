"""`comem sweep`, `comem pareto`, `comem solve`: the design space."""
from __future__ import annotations

import sys

import click

from comem import _compat
from comem.errors import ComemError
from comem.cli.options import grid_axis_options, knob_option, profile_option, NameValue, model_options, convention_option, format_option
from comem.cli.output import emit, progress


HUMAN_SWEEP_LIMIT = 20_000


@click.command("sweep")
@click.argument("model")
@grid_axis_options
@profile_option()
@knob_option()
@click.option("--set", "params", multiple=True, type=NameValue("width_factor=1..3:0.25"),
              help="A spec parameter: one value (an override) or several (swept): 2.2 | 1,2,2.5 | 1..3:0.25. "
                   "Repeatable.")
@convention_option()
@format_option("table")
def sweep_cmd(model, clips, sizes, batches, dtypes, profile, knobs, params, convention, fmt):
    """Evaluate a grid of spec parameters x clip x size x batch x dtype.

    Every point is exact (integers; decimals are exact fractions, so X3D's
    width rounding holds).  Parameters given several values are swept and
    become columns named after them; vectorised: one walk of the layer tree
    per structure (a repeat count, a kernel) evaluates every design of it.
    Large grids stream in blocks (-f csv or -f json): memory stays bounded.

    \b
    comem sweep x3d-m -T 4..64:4 -S 160..320:32
    comem sweep x3d-m --set width_factor=1..3:0.25 --set depth_factor=1..5:0.5 -T 16,64 -S 160..320:32 -f csv
    """
    from comem.analyses.grid import Grid
    from comem.results.formats import Table, render_tables

    spec, c, s, b, d, fixed, grid = grid_axes(model, clips, sizes, batches, dtypes, params)
    g = Grid(spec, grid, c, s, b, d, profile, dict(knobs), convention, fixed)
    if g.points > HUMAN_SWEEP_LIMIT and fmt not in ("csv", "json"):
        raise ComemError(f"the grid has {g.points:,} points: use -f csv or -f json (streamed) for more than "
                         f"{HUMAN_SWEEP_LIMIT:,}")
    if fmt in ("csv", "json"):
        stream_sweep(g.blocks(), fmt, g.points, lambda r: r.points)
        return
    r = g.result()
    notes = list(r.notes)
    if r.reasons:
        what = "design/clip/size points" if r.param_names else "clip/size pairs"
        notes.append(f"{int((~r.valid).sum())} of {r.valid.size} {what} are invalid: "
                     + "; ".join(dict.fromkeys(r.reasons)))
    if r.exact_python_ints:
        notes.append("values exceed int64: evaluated with exact Python integers")
    title = f"Sweep — {r.model}, profile {r.profile}, counts {r.convention}, {r.points:,} points"
    first = r.headers().index("valid") + 1
    emit(render_tables([Table(title, r.headers(), r.rows(), notes, numeric=tuple(range(first, len(r.headers()))))],
                       fmt), fmt)


def grid_axes(model, clips, sizes, batches, dtypes, params):
    """The axes of a sweep from its options: (spec, clips, sizes, batches,
    dtypes, fixed parameters, swept parameters)."""
    from comem.spec.registry import resolve
    from comem.core.units import MAX_BATCH, MAX_CLIP, MAX_SIZE, parse_range, parse_sizes

    spec = resolve(model)
    c = parse_range(clips, "clip", 1, MAX_CLIP) if clips else [spec.clip]
    s = parse_sizes(sizes, MAX_SIZE) if sizes else [None]
    b = parse_range(batches, "batch", 1, MAX_BATCH)
    d = [x.strip() for x in dtypes.split(",") if x.strip()]
    if not d:
        raise ComemError(f"--dtype {dtypes!r} names no dtype; write e.g. fp32 or fp32,fp16")
    fixed, grid = split_params(params)
    return spec, c, s, b, d, fixed, grid


def split_params(params) -> tuple[dict, dict]:
    """``--set`` pairs -> (overrides: name -> one value, grid: name -> values):
    a value with a range or a list is swept."""
    from comem.core.units import parse_values

    fixed, grid = {}, {}
    for name, text in params:
        if name in fixed or name in grid:
            raise ComemError(f"--set {name} is given twice; give each parameter once (a list: {name}=1,2,3)")
        if ".." in text or "," in text:
            grid[name] = parse_values(text, f"--set {name}")
        else:
            fixed[name] = text
    return fixed, grid


def stream_sweep(blocks, fmt, n_items, done=lambda r: len(r.clips)):
    """Write CSV lines or one JSON document block by block, with a progress bar on a terminal."""
    from comem.results.stream import write_blocks

    with progress(n_items, "sweeping") as bar:
        write_blocks(blocks, fmt, sys.stdout, lambda r: bar.update(done(r)))


@click.command("pareto")
@click.argument("model")
@click.option("--set", "params", multiple=True, type=NameValue("width_factor=1..3:0.25"),
              help="A spec parameter: one value or several (swept): 2.2 | 1,2,2.5 | 1..3:0.25. Repeatable.")
@grid_axis_options
@click.option("--minimize", default="total_bytes,ops_per_step", show_default=True,
              help="Columns to minimise, comma-separated.")
@click.option("--maximize", default="", help="Columns to maximise, comma-separated (e.g. params, size).")
@click.option("--where", "where", multiple=True,
              help="Keep points meeting COLUMN OP NUMBER[UNIT]: 'state_bytes<=8MiB', 'ops_per_step<1G', "
                   "'params>=3M'. Repeatable (all must hold).")
@profile_option()
@knob_option()
@convention_option()
@format_option("table")
def pareto_cmd(model, params, clips, sizes, batches, dtypes, minimize, maximize, where, profile, knobs, convention,
               fmt):
    """The non-dominated designs of a sweep: no other point is as good in
    every objective and better in one.

    \b
    comem pareto x3d-m --set width_factor=1..3:0.25 --set depth_factor=1..5:0.5 -S 160..320:32 \\
        --dtype fp16 -b 4 --minimize total_bytes,ops_per_step --maximize params --where 'total_bytes<=64MiB'
    """
    from comem.results.formats import render_tables
    from comem.analyses.pareto import pareto

    spec, c, s, b, d, fixed, grid = grid_axes(model, clips, sizes, batches, dtypes, params)
    if not grid:
        raise ComemError("pareto sweeps spec parameters: give at least one --set NAME=VALUES with a range or a list "
                         "(e.g. --set width_factor=1..3:0.25)")
    goals_min = [g.strip() for g in minimize.split(",") if g.strip()]
    goals_max = [g.strip() for g in maximize.split(",") if g.strip()]
    front = pareto(spec, grid, c, s, b, d, profile, dict(knobs), convention, fixed, goals_min, goals_max, where)
    if fmt == "json":
        from comem.results.formats import to_json

        emit(to_json(front.to_dict()), fmt)
    else:
        emit(render_tables([front.table()], fmt), fmt)


@click.command("solve")
@click.argument("model")
@click.option("--for", "for_", required=True, metavar="size|clip|batch|PARAM",
              help="What to maximise: size, clip, batch, or any numeric spec parameter (width_factor, "
                   "depth_factor, ...).")
@click.option("--budget", default=None, help="Memory budget: 8MiB, 512KB, 1.5GiB, 4096 (bytes).")
@click.option("--ops-budget", *_compat.option_aliases("--ops-budget"), "ops_budget", default=None,
              help="Operations per frame (continual) / per clip under --convention: 1G, 325M, 5000000 "
                   "(--macs-budget: its 0.1 name).")
@click.option("--include-weights", is_flag=True, help="The memory budget also holds the weights.")
@click.option("--step", default=None, help="For a parameter: the grid step (default 1 for whole-number "
                                           "parameters, 0.01 otherwise).")
@click.option("--min", "lo", default=None, help="For a parameter: the smallest value tried (default: one step).")
@click.option("--max", "hi", default=None, help="For a parameter: the largest value tried (default: 16x the "
                                                "spec's).")
@model_options
@format_option("table")
def solve_cmd(model, for_, budget, ops_budget, include_weights, step, lo, hi, clip, size, profile, knobs, params,
              dtype, batch, convention, fmt):
    """The largest size, clip, batch or spec parameter that fits a memory or
    operations budget (exact: the next step does not fit).

    \b
    comem solve x3d-m --for size --budget 8MiB
    comem solve x3d-m --for width_factor --budget 8MiB --dtype fp16 --batch 4
    comem solve x3d-m --for depth_factor --ops-budget 300M --step 0.1
    """
    from comem.results.formats import Table, render_tables
    from comem.analyses.solve import solve, solve_param
    from comem.analyses.sweep import param_value
    from comem.core.units import parse_bytes, parse_count, parse_values

    for_ = for_.strip()
    budget_b = parse_bytes(budget) if budget is not None else None
    budget_o = parse_count(ops_budget) if ops_budget is not None else None
    if for_ in ("size", "clip", "batch"):
        if step is not None or lo is not None or hi is not None:
            raise ComemError("--step/--min/--max apply to solving for a spec parameter")
        if (for_ == "size" and size is not None) or (for_ == "clip" and clip is not None):
            raise ComemError(f"--for {for_} solves for the {for_}: drop --{for_}")
        r = solve(model, for_, budget_b, budget_o, clip, size, batch, dtype, profile, dict(knobs), convention,
                  dict(params), include_weights=include_weights)
        nxt = r["value"] + 1
    else:
        if (budget_b is None) == (budget_o is None):
            raise ComemError("give exactly one budget: --budget (memory, e.g. 8MiB) or --ops-budget (e.g. 1G)")

        def one(text, what):
            if text is None:
                return None
            vals = parse_values(str(text), what)
            if len(vals) != 1:
                raise ComemError(f"{what} takes one number, got {text!r}")
            return vals[0]

        r = solve_param(model, for_, budget_b if budget_b is not None else budget_o,
                        "memory" if budget_b is not None else "ops", clip, size, batch, dtype, profile, dict(knobs),
                        convention, dict(params), include_weights, one(step, "--step"), one(lo, "--min"),
                        one(hi, "--max"))
        nxt = param_value(r["next"]) if "next" in r else None
        r = {k: (param_value(v) if k in ("value", "next", "step", "largest_fitting", "limit") else v)
             for k, v in r.items()}
        r["range"] = [param_value(v) for v in r["range"]]
    rows = [["largest " + for_, r["value"]], [f"cost at {r['value']} ({r['cost_unit']})", r["cost"]],
            ["budget", r["budget"]]]
    if r.get("cost_next") is not None:
        rows.append([f"cost at {nxt}", r["cost_next"]])
    notes = [f"settings: {', '.join(f'{k}={v}' for k, v in r['settings'].items() if v is not None)}"]
    if r.get("evaluations"):
        notes.append(f"{r['evaluations']} exact evaluations (bisection on steps of {r['step']} over "
                     f"{r['range'][0]}..{r['range'][1]})")
    if r.get("note"):
        notes.append(r["note"])
    emit(render_tables([Table(f"Solve — {r['model']}", ["", "value"], rows, notes, numeric=(1,))], fmt,
                       r if fmt == "json" else None), fmt)
