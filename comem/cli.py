"""The ``comem`` command line: a thin layer over :mod:`comem.api`.

``comem MODEL [options]`` analyses a model (a built-in name or a spec file);
the other commands are listed by ``comem --help``.  Every problem with the
input is reported as one line on stderr with exit status 2.
"""
from __future__ import annotations

import os
import sys

import click

from .errors import ComemError

def _fail(msg: str, code: int = 2):
    msg = " ".join(str(msg).split())
    click.echo(f"comem: error: {msg}", err=True)
    sys.exit(code)


class ModelGroup(click.Group):
    """A group whose first argument may be a model instead of a command."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["analyze"] + list(args)
        return super().parse_args(ctx, args)

    def format_usage(self, ctx, formatter):
        formatter.write_usage("comem", "MODEL [OPTIONS]  |  comem COMMAND [ARGS]...")


# -- shared options ----------------------------------------------------------

def model_options(f):
    opts = [
        click.option("--clip", "-T", default=None, help="Frames per clip (the continual pool window). Default: the spec's."),
        click.option("--size", "-S", default=None, help="Input resolution (square). Default: the spec's."),
        click.option("--profile", "-p", default=None,
                     help="Accounting profile: paper (default) | continual-inference."),
        click.option("--knob", "-k", "knobs", multiple=True, metavar="NAME=VALUE",
                     help="Change one profile knob (what-if), e.g. conv_state=library-buffer. Repeatable."),
        click.option("--set", "params", multiple=True, metavar="PARAM=VALUE",
                     help="Override a spec parameter, e.g. depth_factor=5.0. Repeatable."),
        click.option("--dtype", default="fp32", show_default=True, help="fp32 | fp16 | bf16 | int8 | fp64."),
        click.option("--batch", "-b", default="1", show_default=True, help="Batch size / number of streams."),
        convention_option(),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def convention_option():
    return click.option("--convention", "--count", "-c", "convention", default="ptflops", show_default=True,
                        help="FLOP-counting convention: ptflops | macs | flops | fvcore (--count: its 0.1 name).")


def format_option(default="table"):
    return click.option("--format", "-f", "fmt", default=default, show_default=True,
                        help="table | json | csv | markdown | latex.")


def parse_params(items) -> dict:
    from .units import parse_assignments

    return parse_assignments(items, "--set", "depth_factor=5.0")


def common_kwargs(clip, size, profile, knobs, params, dtype, batch, convention) -> dict:
    from .profiles import parse_knob_options

    return dict(clip=clip, size=size, profile=profile, knobs=parse_knob_options(knobs),
                params=parse_params(params), dtype=dtype, batch=batch, convention=convention)


def emit(text: str):
    click.echo(text)


# -- commands ------------------------------------------------------------------

@click.group(cls=ModelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="comem", prog_name="comem")
def main():
    """Analytic memory and FLOP calculator for continual 3D CNNs.

    \b
    comem x3d-m --clip 64            Appendix-A-style breakdown and totals
    comem path/to/spec.toml          analyse your own architecture
    comem list                       the known models
    """


@main.command("analyze")
@click.argument("model")
@model_options
@format_option()
@click.option("--view", default="breakdown", show_default=True, help="breakdown | layers | stages | summary.")
@click.option("--top", default=None, type=int, help="Show only the N heaviest layers.")
def analyze_cmd(model, clip, size, profile, knobs, params, dtype, batch, convention, fmt, view, top):
    """Analyse MODEL (a built-in name or a spec file)."""
    from .api import analyze
    from .formats import check_format

    fmt = check_format(fmt)
    if top is not None and top < 1:
        raise ComemError(f"--top must be at least 1, got {top}")
    r = analyze(model, **common_kwargs(clip, size, profile, knobs, params, dtype, batch, convention))
    emit(r.render(fmt, view, top))


@main.command("list")
@format_option()
def list_cmd(fmt):
    """The built-in models."""
    from .formats import Table, render_tables
    from .spec import builtin_names, resolve

    rows = []
    for name in builtin_names():
        s = resolve(name)
        rows.append([s.name, s.title, s.clip, s.size, "yes" if s.continual else "no", ", ".join(s.aliases)])
    emit(render_tables([Table("Known models", ["model", "title", "clip", "size", "continual", "aliases"], rows,
                              numeric=(2, 3))], fmt))


@main.command("profiles")
@format_option()
def profiles_cmd(fmt):
    """Accounting profiles and their knobs."""
    from .formats import Table, render_tables
    from .profiles import KNOBS, PROFILE_DOC, PROFILES

    rows = [[k, " | ".join(v)] + [PROFILES[p][k] for p in PROFILES] for k, v in KNOBS.items()]
    notes = [f"{p}: {d}" for p, d in PROFILE_DOC.items()]
    emit(render_tables([Table("Profiles and knobs", ["knob", "values"] + list(PROFILES), rows, notes)], fmt))


@main.command("kinds")
@format_option()
def kinds_cmd(fmt):
    """Layer kinds a spec can use: their fields, state formula and module."""
    from .expr import parse
    from .formats import Table, render_tables
    from .layers import KINDS

    def state(kind):
        f = kind.state_formulas
        if isinstance(f, dict):
            return "; ".join(f"{kind.state_knob}={k}: {parse(v).render()}" for k, v in f.items())
        return "" if f == "0" else parse(f).render()

    rows = [[k.name, ", ".join(k.fields), state(k), type(k).__module__, k.summary] for k in KINDS.values()]
    emit(render_tables([Table("Layer kinds", ["kind", "fields", "state (floats)", "formulas in", "summary"], rows,
                              ["every kind's delay: r_T−1−p_T (receptive field and temporal padding)"])], fmt))


@main.command("validate")
@click.argument("model")
@click.option("--clip", "-T", default=None, help="Frames per clip. Default: the spec's.")
@click.option("--size", "-S", default=None, help="Input resolution. Default: the spec's.")
@click.option("--knob", "-k", "knobs", multiple=True, metavar="NAME=VALUE", help="Change a knob of the profile.")
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
    from .formats import check_format, render_tables
    from .profiles import parse_knob_options
    from .validate import require_extra

    fmt = check_format(fmt)
    require_extra()
    from .validate.compare import validate, validation_tables

    v = validate(model, clip, size, "continual-inference", parse_knob_options(knobs), use_ptflops=not no_ptflops)
    if fmt == "json":
        import json

        emit(json.dumps({"model": v.model, "clip": v.clip, "size": v.size, "profile": v.profile, "ok": v.ok,
                         "checks": [{"group": c.group, "quantity": c.quantity, "comem": c.analytic,
                                     "measured": c.measured, "ok": c.ok} for c in v.checks]},
                        indent=2, default=str))
    else:
        emit(render_tables(validation_tables(v, layers), fmt))
    if not v.ok:
        sys.exit(1)


@main.command("paper")
@click.option("--table", "tables", multiple=True, type=click.Choice(["1", "3", "7"]),
              help="Only these tables (repeatable). Default: 1, 3 and 7.")
@format_option()
def paper_cmd(tables, fmt):
    """Tables 1, 3 and 7 of the CoX3D paper beside comem's numbers.

    \b
    Regular models: params and per-clip ptflops counts.  Continual models:
    comem's per-frame count (each module once) and the count the published
    toolchain (ptflops 0.6 on continual-inference modules) reports:
      + BatchNorm/ReLU counted twice (co.forward_stepping fires hooks twice)
      + co.Linear(channel_dim=1) counted as in_features + 1
      - temporal pooling at the default window (inferred)
    """
    from .formats import check_format, render_tables
    from .paper import paper_tables

    fmt = check_format(fmt)
    emit(render_tables(paper_tables(tables or ("1", "3", "7")), fmt))


@main.command("formula")
@click.argument("model")
@click.option("--symbol", "-s", "symbols", multiple=True, metavar="PARAM",
              help="Keep a spec parameter symbolic too (e.g. width_factor, depth_factor). Repeatable.")
@click.option("--profile", "-p", default=None, help="paper (default) | continual-inference.")
@click.option("--knob", "-k", "knobs", multiple=True, metavar="NAME=VALUE", help="Change a profile knob.")
@click.option("--set", "params", multiple=True, metavar="PARAM=VALUE", help="Override a spec parameter.")
@click.option("--dtype", default="fp32", show_default=True, help="Bytes per float for the *_bytes forms.")
@convention_option()
@format_option("table")
def formula_cmd(model, symbols, profile, knobs, params, dtype, convention, fmt):
    """Closed forms (sympy) of state, transient, totals and MACs in clip and size.

    JSON gives each expression as a string sympy can parse; LaTeX as math.
    """
    from .formats import check_format, render_tables
    from .profiles import parse_knob_options
    from .symbolic import closed_forms, forms_latex, forms_tables

    fmt = check_format(fmt)
    forms = closed_forms(model, profile, parse_knob_options(knobs), parse_params(params), symbols, dtype, 1,
                         convention)
    if fmt == "latex":
        emit(forms_latex(forms))
        return
    tables, data = forms_tables(forms, fmt)
    emit(render_tables(tables, fmt, data if fmt == "json" else None))


@main.command("sweep")
@click.argument("model")
@click.option("--clip", "-T", "clips", default=None, help="Clips: 16 | 4..64 | 4..64:4 | 8,16,32. Default: the spec's.")
@click.option("--size", "-S", "sizes", default=None, help="Sizes, same syntax. Default: the spec's.")
@click.option("--batch", "-b", "batches", default="1", show_default=True, help="Batches / streams, same syntax.")
@click.option("--dtype", "dtypes", default="fp32", show_default=True, help="One or more dtypes: fp32,fp16.")
@click.option("--profile", "-p", default=None, help="paper (default) | continual-inference.")
@click.option("--knob", "-k", "knobs", multiple=True, metavar="NAME=VALUE", help="Change a profile knob.")
@click.option("--set", "params", multiple=True, metavar="PARAM=VALUE", help="Override a spec parameter.")
@convention_option()
@format_option("table")
def sweep_cmd(model, clips, sizes, batches, dtypes, profile, knobs, params, convention, fmt):
    """Evaluate a grid of clip x size x batch x dtype at once (numpy, vectorised)."""
    from .formats import Table, check_format, render_tables
    from .profiles import parse_knob_options
    from .spec import resolve
    from .sweep import sweep
    from .units import MAX_BATCH, MAX_CLIP, MAX_SIZE, MAX_POINTS, parse_range

    fmt = check_format(fmt)
    spec = resolve(model)
    c = parse_range(clips, "clip", 1, MAX_CLIP) if clips else [spec.clip]
    s = parse_range(sizes, "size", 1, MAX_SIZE) if sizes else [spec.size]
    b = parse_range(batches, "batch", 1, MAX_BATCH)
    d = [x.strip() for x in dtypes.split(",") if x.strip()] or ["fp32"]
    if len(c) * len(s) * len(b) * len(d) > MAX_POINTS:
        raise ComemError(f"the grid has {len(c) * len(s) * len(b) * len(d):,} points; the limit is {MAX_POINTS:,}")
    r = sweep(spec, c, s, b, d, profile, parse_knob_options(knobs), convention, parse_params(params))
    notes = []
    if r.reasons:
        notes.append(f"{int((~r.valid).sum())} of {r.valid.size} clip/size pairs are invalid: "
                     + "; ".join(dict.fromkeys(r.reasons)))
    if r.exact_python_ints:
        notes.append("values exceed int64: evaluated with exact Python integers")
    title = f"Sweep — {r.model}, profile {r.profile}, counts {r.convention}, {r.points:,} points"
    emit(render_tables([Table(title, r.headers(), r.rows(), notes, numeric=tuple(range(5, len(r.headers()))))], fmt))


@main.command("solve")
@click.argument("model")
@click.option("--for", "for_", required=True, type=click.Choice(["size", "clip", "batch"]),
              help="What to maximise.")
@click.option("--budget", default=None, help="Memory budget: 8MiB, 512KB, 1.5GiB, 4096 (bytes).")
@click.option("--ops-budget", "--macs-budget", "ops_budget", default=None,
              help="Operations per frame (continual) / per clip under --convention: 1G, 325M, 5000000 "
                   "(--macs-budget: its 0.1 name).")
@model_options
@format_option("table")
def solve_cmd(model, for_, budget, ops_budget, clip, size, profile, knobs, params, dtype, batch, convention, fmt):
    """The largest size, clip or batch that fits a memory or MAC budget."""
    from .formats import Table, check_format, render_tables
    from .profiles import parse_knob_options
    from .solve import solve
    from .units import parse_bytes, parse_count

    fmt = check_format(fmt)
    r = solve(model, for_, parse_bytes(budget) if budget is not None else None,
              parse_count(ops_budget) if ops_budget is not None else None, clip, size, batch, dtype, profile,
              parse_knob_options(knobs), convention, parse_params(params))
    rows = [["largest " + for_, r["value"]], [f"cost at {r['value']} ({r['cost_unit']})", r["cost"]],
            ["budget", r["budget"]]]
    if r.get("cost_next") is not None:
        rows.append([f"cost at {r['value'] + 1}", r["cost_next"]])
    notes = [f"settings: {', '.join(f'{k}={v}' for k, v in r['settings'].items())}"]
    if r.get("note"):
        notes.append(r["note"])
    emit(render_tables([Table(f"Solve — {r['model']}", ["", "value"], rows, notes, numeric=(1,))], fmt,
                       r if fmt == "json" else None))


@main.command("compare")
@click.argument("items", nargs=-1, required=True)
@model_options
@format_option("table")
def compare_cmd(items, clip, size, profile, knobs, params, dtype, batch, convention, fmt):
    """Models or settings side by side with ratios.

    \b
    comem compare x3d-s x3d-m x3d-l
    comem compare x3d-m x3d-m:clip=64 x3d-m:profile=continual-inference,dtype=fp16
    comem compare x3d-m:knob.se_pool=frame x3d-m:knob.se_pool=clip-causal
    """
    from .compare import compare, compare_table
    from .formats import check_format, render_tables
    from .profiles import parse_knob_options

    fmt = check_format(fmt)
    defaults = dict(clip=clip, size=size, profile=profile, knobs=parse_knob_options(knobs),
                    params=parse_params(params), dtype=dtype, batch=batch, convention=convention)
    reports = compare(items, defaults)
    if fmt == "json":
        import json

        emit(json.dumps({label: r.summary() for label, r in reports}, indent=2, default=str))
    else:
        emit(render_tables([compare_table(reports)], fmt))


@main.command("plot")
@click.argument("kind", type=click.Choice(["stages", "clip", "size", "models"]))
@click.argument("models", nargs=-1, required=True)
@click.option("--out", "-o", required=True, help="Output file: .png or .svg.")
@click.option("--range", "values", default=None, help="x values for 'clip'/'size' plots: 4..64 or 160,224 (default: "
                                                      "clip 1..128, size 32..448:8).")
@model_options
def plot_cmd(kind, models, out, values, clip, size, profile, knobs, params, dtype, batch, convention):
    """Save a plot: stages (memory by stage), clip / size (memory and MACs as
    they vary, continual vs regular), models (continual vs regular per model).

    \b
    comem plot stages x3d-m -o x3d-m-stages.png
    comem plot clip x3d-m --range 4..128 -o clip.svg
    comem plot models x3d-s x3d-m x3d-l i3d-r50 slow-8x8-r50 -o models.png
    """
    import os

    from . import plot
    from .units import MAX_CLIP, MAX_SIZE, parse_range

    ext = os.path.splitext(out)[1].lower()
    if ext not in (".png", ".svg"):
        raise ComemError(f"--out must end in .png or .svg, got {out!r}")
    kw = common_kwargs(clip, size, profile, knobs, params, dtype, batch, convention)
    if kind in ("stages", "clip", "size") and len(models) != 1:
        raise ComemError(f"'comem plot {kind}' takes one model, got {len(models)}")
    if kind == "stages":
        from .api import analyze

        fig = plot.memory_by_stage(analyze(models[0], **kw))
    elif kind in ("clip", "size"):
        default = "1..128" if kind == "clip" else "32..448:8"
        xs = parse_range(values or default, kind, 1, MAX_CLIP if kind == "clip" else MAX_SIZE)
        kw.pop(kind)
        fig = plot.against(models[0], kind, xs, **{k: v for k, v in kw.items() if v is not None})
    else:
        fig = plot.continual_vs_regular(models, **kw)
    try:
        fig.savefig(out, dpi=120)
    except OSError as exc:
        raise ComemError(f"cannot write {out}: {exc.strerror or exc}") from None
    emit(f"wrote {out}")


def run(argv=None):
    """Entry point: run the CLI, turning every input problem into one line."""
    try:
        main.main(args=argv, prog_name="comem", standalone_mode=False)
    except ComemError as exc:
        _fail(str(exc), exc.exit_code)
    except click.exceptions.NoSuchOption as exc:
        hint = f" (did you mean {', '.join(exc.possibilities)}?)" if exc.possibilities else ""
        _fail(f"no such option {exc.option_name}{hint}; see 'comem --help'")
    except click.exceptions.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else "comem"
        _fail(f"{exc.format_message()}; see '{cmd} --help'")
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        sys.exit(0)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except RecursionError:
        _fail("the spec nests too deeply to analyse", 2)
    except Exception as exc:  # a bug, not bad input: still one line, but say so
        if os.environ.get("COMEM_DEBUG"):
            raise
        _fail(f"internal error ({type(exc).__name__}: {exc}); please report it with the command you ran "
              "(set COMEM_DEBUG=1 for a traceback)", 1)


if __name__ == "__main__":  # pragma: no cover
    run()
