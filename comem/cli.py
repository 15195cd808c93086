"""The ``comem`` command line: a thin layer over :mod:`comem.api`.

``comem MODEL [options]`` analyses a model (a built-in name or a spec file);
the other commands are listed by ``comem --help``.  Every problem with the
input is reported as one line on stderr with exit status 2.

Options are validated by click types that call comem's own checks, so their
choices show in ``--help`` and shell completion, and a bad value gets
comem's message (with suggestions).
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


# -- option types ----------------------------------------------------------------

class Checked(click.Choice):
    """A choice whose conversion is one of comem's checks (aliases, suggestions)."""

    def __init__(self, choices, check):
        super().__init__(list(choices), case_sensitive=False)
        self.check = check

    def convert(self, value, param, ctx):
        try:
            return self.check(value)
        except ComemError as exc:
            self.fail(str(exc), param, ctx)


class WholeNumber(click.ParamType):
    """A whole number in ``[lo, hi]`` (comem's check and messages)."""

    name = "integer"

    def __init__(self, what, lo=1, hi=None):
        self.what, self.lo, self.hi = what, lo, hi

    def convert(self, value, param, ctx):
        from .units import check_int

        try:
            return check_int(value, self.what, self.lo, self.hi)
        except ComemError as exc:
            self.fail(str(exc), param, ctx)


class FrameSize(click.ParamType):
    """``224`` (square; the joints of a 2D model) or ``224x398`` (height x width)."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        from .units import MAX_SIZE, check_int

        try:
            if isinstance(value, (int, tuple)):
                return value
            text = str(value).strip().lower().replace(" ", "")
            if "x" in text:
                parts = text.split("x")
                if len(parts) != 2:
                    raise ComemError(f"size {value!r} is not HEIGHTxWIDTH; write e.g. 224x398")
                return (check_int(parts[0], "height (pixels)", 1, MAX_SIZE),
                        check_int(parts[1], "width (pixels)", 1, MAX_SIZE))
            return check_int(text, "size (pixels)", 1, MAX_SIZE)
        except ComemError as exc:
            self.fail(str(exc), param, ctx)


class NameValue(click.ParamType):
    """``NAME=VALUE`` (repeatable options such as ``--knob`` and ``--set``)."""

    name = "NAME=VALUE"

    def __init__(self, example, completions=()):
        self.example = example
        self.completions = completions

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        text = str(value)
        if "=" not in text or not text.split("=", 1)[0].strip():
            opt = param.opts[0] if param is not None else "option"
            self.fail(f"{opt} expects NAME=VALUE (e.g. {opt} {self.example}), got {text!r}", param, ctx)
        name, v = text.split("=", 1)
        return name.strip(), v.strip()

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        items = self.completions() if callable(self.completions) else self.completions
        return [CompletionItem(c) for c in items if c.startswith(incomplete)]


def _knob_completions():
    from .profiles import KNOBS

    return [f"{k}={v}" for k, values in KNOBS.items() for v in values]


def _format_type():
    from .formats import FORMATS, check_format

    return Checked(FORMATS, check_format)


def _profile_type():
    from .profiles import PROFILES, get_profile

    return Checked(PROFILES, lambda v: get_profile(v).name)


def _dtype_type():
    from .units import dtype_bytes

    return Checked(("fp32", "fp16", "bf16", "int8", "fp64"), lambda v: dtype_bytes(v)[0])


def _view_type():
    from .report import VIEWS, check_view

    return Checked(VIEWS, check_view)


def _convention_type():
    from .conventions import CONVENTIONS, check_convention

    return Checked(CONVENTIONS, check_convention)


# -- shared options ----------------------------------------------------------

def model_options(f):
    from .units import MAX_BATCH, MAX_CLIP

    opts = [
        click.option("--clip", "-T", type=WholeNumber("clip (frames)", 1, MAX_CLIP), default=None,
                     help="Frames per clip (the continual pool window). Default: the spec's."),
        click.option("--size", "-S", type=FrameSize(), default=None,
                     help="Frame size: 224 (square) or 224x398 (height x width); the joints of a 2D model. "
                          "Default: the spec's."),
        click.option("--profile", "-p", type=_profile_type(), default=None,
                     help="Accounting profile (default: paper)."),
        click.option("--knob", "-k", "knobs", multiple=True, type=NameValue("conv_state=library-buffer",
                                                                            _knob_completions),
                     help="Change one profile knob (what-if), e.g. conv_state=library-buffer. Repeatable."),
        click.option("--set", "params", multiple=True, type=NameValue("depth_factor=5.0"),
                     help="Override a spec parameter, e.g. depth_factor=5.0. Repeatable."),
        click.option("--dtype", type=_dtype_type(), default="fp32", show_default=True,
                     help="Bytes per value of state, maps and weights."),
        click.option("--batch", "-b", type=WholeNumber("batch (streams)", 1, MAX_BATCH), default=1,
                     show_default=True, help="Batch size / number of streams."),
        convention_option(),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def convention_option():
    return click.option("--convention", "--count", "-c", "convention", type=_convention_type(), default="ptflops",
                        show_default=True, help="FLOP-counting convention (--count: its 0.1 name).")


def format_option(default="table"):
    return click.option("--format", "-f", "fmt", type=_format_type(), default=default, show_default=True,
                        help="Output format.")


def common_kwargs(clip, size, profile, knobs, params, dtype, batch, convention) -> dict:
    return dict(clip=clip, size=size, profile=profile, knobs=dict(knobs) or None, params=dict(params) or None,
                dtype=dtype, batch=batch, convention=convention)


def color_enabled() -> bool | None:
    """False under NO_COLOR; otherwise click decides (colour on a terminal only)."""
    return False if os.environ.get("NO_COLOR") else None


_MARKS = {"✓": "green", "✗": "red", "⚠": "yellow", "FAIL": "red", "PASS": "green"}


def emit(text: str, fmt: str = "table"):
    """Print a command's output; ✓ ✗ ⚠ in colour on a terminal (not under
    NO_COLOR, never in machine formats)."""
    if fmt == "table" and color_enabled() is not False:
        for mark, colour in _MARKS.items():
            text = text.replace(mark, click.style(mark, fg=colour, bold=mark != "⚠"))
    click.echo(text, color=color_enabled())


def progress(length: int, label: str):
    """A progress bar on stderr when it is a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        return _NoProgress()
    return click.progressbar(length=length, label=label, file=sys.stderr)


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n, current_item=None):
        return None


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
@click.option("--view", type=_view_type(), default="breakdown", show_default=True,
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
    from .api import analyze

    r = analyze(model, **common_kwargs(clip, size, profile, knobs, params, dtype, batch, convention),
                runtime=runtime, device=device)
    if depth and view == "breakdown" and not top:
        view = "layers"
    emit(r.render(fmt, view, top, depth), fmt)


def _arg_value(text: str):
    """A --arg value as Python would spell it, read (never evaluated): whole
    numbers, decimals, true/false/none, else the text itself."""
    import re

    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    if re.fullmatch(r"[+-]?\d+", t):
        return int(t)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?", t):
        return float(t)
    return t


@main.command("import")
@click.argument("target", metavar="FILE.py:CALLABLE")
@click.option("--input", "input_shape", required=True, metavar="CxTxHxW",
              help="Input shape without the batch: 3x16x224x224 (video), 3x300x25 (C x T x V), 64x100 (C x T).")
@click.option("--arg", "args", multiple=True, type=NameValue("num_classes=400"),
              help="A keyword argument for the callable (numbers, true/false, text). Repeatable.")
@click.option("--name", default=None, help="The spec's model name. Default: the module's class.")
@click.option("--out", "-o", default=None, help="Write the spec as TOML (re-load it with `comem FILE.toml`).")
@click.option("--check", is_flag=True, help="Also measure the module itself (params, ptflops/fvcore per clip; "
                                            "state, delay and per-step ops of a continual model) and compare.")
@model_options
@format_option()
@click.option("--view", type=_view_type(), default="breakdown", show_default=True, help="What the analysis shows.")
def import_cmd(target, input_shape, args, name, out, check, clip, size, profile, knobs, params, dtype, batch,
               convention, fmt, view):
    """Read a PyTorch or continual-inference model into a spec.

    Imports FILE.py — which runs its code, as importing any Python file does
    — calls CALLABLE(**args) to get the module, traces it once on a fake
    input of --input's shape, and either writes the spec (-o, the format of
    the built-in specs) or prints its analysis (every option of `comem
    MODEL` applies).  Modules or ops comem cannot map are listed in one line.

    \b
    comem import models.py:make_x3d --input 3x16x224x224 -o my-x3d.toml
    comem import models.py:make_x3d --input 3x16x224x224 --arg num_classes=400 --size 224x398
    comem my-x3d.toml --clip 64 --profile continual-inference
    """
    from .api import analyze
    from .importer import load_factory, parse_input, spec_from_module
    from .importer.emit import to_toml

    shape = parse_input(input_shape)
    module = load_factory(target, {k: _arg_value(v) for k, v in args})
    spec, data = spec_from_module(module, shape, name)
    if out:
        header = (f"{spec.title}: imported by comem from {target} at input {'x'.join(map(str, shape))}.\n"
                  "Edit freely: it is a spec like the built-in ones (comem kinds lists the layer kinds).")
        try:
            with open(out, "w", encoding="utf-8") as fh:
                fh.write(to_toml(data, header))
        except OSError as exc:
            raise ComemError(f"cannot write {out}: {exc.strerror or exc}") from None
        emit(f"wrote {out} ({len(data['stages'])} stages, {len(data.get('blocks', {}))} block templates)")
    if check:
        from .formats import Table, render_tables
        from .importer.check import compare

        rows = compare(module, shape, spec)
        table = [[q, a, m, "✓" if a == m else "✗"] for q, a, m in rows]
        emit(render_tables([Table(f"comem vs the module itself — {spec.title}, input {shape}",
                                  ["quantity", "comem", "measured", ""], table, numeric=(1, 2))], fmt), fmt)
        if any(a != m for _, a, m in rows):
            sys.exit(1)
        return
    if not out:
        r = analyze(spec, **common_kwargs(clip, size, profile, knobs, params, dtype, batch, convention))
        emit(r.render(fmt, view), fmt)


@main.command("list")
@format_option()
def list_cmd(fmt):
    """The built-in models."""
    from .formats import Table, render_tables
    from .spec import builtin_names, resolve

    rows = []
    for name in builtin_names():
        s = resolve(name)
        rows.append([s.name, s.title, s.clip, s.size, s.continual, list(s.aliases)])
    emit(render_tables([Table("Known models", ["model", "title", "clip", "size", "continual", "aliases"], rows,
                              numeric=(2, 3))], fmt), fmt)


@main.command("profiles")
@format_option()
def profiles_cmd(fmt):
    """Accounting profiles and their knobs."""
    from .formats import Table, render_tables
    from .profiles import KNOBS, PROFILE_DOC, PROFILES

    rows = [[k, list(v)] + [PROFILES[p][k] for p in PROFILES] for k, v in KNOBS.items()]
    notes = [f"{p}: {d}" for p, d in PROFILE_DOC.items()]
    emit(render_tables([Table("Profiles and knobs", ["knob", "values"] + list(PROFILES), rows, notes)], fmt), fmt)


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
            chooser = kind.state_field or kind.state_knob
            return "; ".join(f"{chooser}={k}: {parse(v).render()}" for k, v in f.items())
        return "" if f == "0" else parse(f).render()

    rows = [[k.name, list(k.fields), state(k), type(k).__module__, k.summary] for k in KINDS.values()]
    emit(render_tables([Table("Layer kinds", ["kind", "fields", "state (floats)", "formulas in", "summary"], rows,
                              ["every kind's delay: r_T−1−p_T (receptive field and temporal padding)"],
                              wrap={1: 30, 2: 40, 4: 40})], fmt), fmt)


@main.command("validate")
@click.argument("model")
@click.option("--clip", "-T", type=WholeNumber("clip (frames)"), default=None, help="Frames per clip.")
@click.option("--size", "-S", type=FrameSize(), default=None, help="Frame size: 224 or 224x398.")
@click.option("--knob", "-k", "knobs", multiple=True, type=NameValue("conv_state=library-buffer", _knob_completions),
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
    from .formats import render_tables
    from .validate import require_extra

    require_extra()
    from .validate.compare import STEPS, validate, validation_tables

    with progress(len(STEPS), f"validating {model}") as bar:
        v = validate(model, clip, size, "continual-inference", dict(knobs), use_ptflops=not no_ptflops,
                     progress=lambda step: bar.update(1, step))
    if fmt == "json":
        import json

        from .formats import json_default

        emit(json.dumps({"model": v.model, "clip": v.clip, "size": v.size, "profile": v.profile, "ok": v.ok,
                         "checks": [{"group": c.group, "quantity": c.quantity, "comem": c.analytic,
                                     "measured": c.measured, "ok": c.ok} for c in v.checks]},
                        indent=2, default=json_default), fmt)
    else:
        emit(render_tables(validation_tables(v, layers), fmt), fmt)
    if not v.ok:
        sys.exit(1)


@main.command("paper")
@click.option("--paper", "paper", type=click.Choice(["co3d", "cost-gcn", "continual-transformers"]),
              default="co3d", show_default=True,
              help="Which paper: co3d (Continual 3D CNNs, ECCV 2022), cost-gcn (Continual Spatio-Temporal GCNs, "
                   "Pattern Recognition 2023: Tables II, III, V and Table II's memory), continual-transformers (ICLR 2023: Tables 6, 7).")
@click.option("--table", "tables", multiple=True,
              type=click.Choice(["1", "2", "3", "6", "7", "mem", "speed", "7-speed", "rcu"]),
              help="Only these tables (repeatable).  co3d: 1 (params, FLOPs), 3, 7 (FLOP ratios), mem (Table 1's "
                   "Mem.), speed (Table 1's throughput vs the roofline), 7-speed (Table 7's throughput ratios), "
                   "6 (Table 6's configurations and their memory), rcu (Appendix C); cost-gcn: 2, 3, mem; "
                   "continual-transformers: 6, 7.  Default: all of the paper's.")
@format_option()
def paper_cmd(paper, tables, fmt):
    """A paper's tables beside comem's numbers: by default the CoX3D paper's
    Tables 1, 3, 6, 7 and Appendix C; --paper cost-gcn and --paper
    continual-transformers the authors' continual GCNs and transformers.

    \b
    Regular models: params and per-clip ptflops counts.  Continual models:
    comem's per-frame count (each module once) and the count the published
    toolchain (ptflops 0.6 on continual-inference modules) reports:
      + BatchNorm/ReLU counted twice (co.forward_stepping fires hooks twice)
      + co.Linear(channel_dim=1) counted as in_features + 1
      - temporal pooling at the default window (inferred)
    """
    from .formats import render_tables

    if paper != "co3d":
        from .paper_beyond import PAPERS, paper_tables as beyond_tables

        unknown = [t for t in tables if t not in PAPERS[paper][1]]
        if unknown:
            raise ComemError(f"--paper {paper} has tables {', '.join(PAPERS[paper][1])}, not {', '.join(unknown)}")
        emit(render_tables(beyond_tables(paper, tables), fmt), fmt)
        return
    from .paper import TABLES, paper_tables

    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ComemError(f"the CoX3D paper has tables {', '.join(TABLES)}, not {', '.join(unknown)}")
    emit(render_tables(paper_tables(tables or tuple(TABLES)), fmt), fmt)


@main.command("predict")
@click.argument("model")
@click.option("--device", "device", default="rtx2080ti", show_default=True,
              help="cpu (the paper's i7-9750H core), tx2, xavier, rtx2080ti, orin, a100, h100, or 'this' (this "
                   "machine, calibrated by a short micro-benchmark).")
@click.option("--clip", "-T", type=WholeNumber("clip (frames)", 1, 100000), default=None,
              help="Frames per clip. Default: the spec's.")
@click.option("--size", "-S", type=FrameSize(), default=None, help="Frame size. Default: the spec's.")
@click.option("--batch", "-b", type=WholeNumber("batch (streams)", 1, 65536), default=1, show_default=True,
              help="Batch size (streams).")
@click.option("--dtype", type=_dtype_type(), default=None, help="Default: fp16 on the Jetsons, fp32 elsewhere.")
@click.option("--set", "params", multiple=True, type=NameValue("depth_factor=5.0"), help="Override a spec parameter.")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Slowest layers shown.")
@format_option()
def predict_cmd(model, device, clip, size, batch, dtype, params, top, fmt):
    """Latency and throughput of the regular clip and the continual frame on a
    device, by a roofline: executed work and bytes moved per layer against the
    device's peaks (comem.roofline; figures and their sources in
    specs/devices/devices.toml).  A model, not a measurement: see comem bench.

    \b
    comem predict x3d-m --device rtx2080ti --batch 64
    comem predict x3d-m --device tx2 --batch 32      # fp16
    comem predict x3d-m --device this
    """
    from .formats import Table, render_tables
    from .roofline import predict
    from .runtime import runtime_peak

    pr = predict(model, device, batch, dtype, clip, size, dict(params) or None)
    from .roofline import get_device

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

        from .formats import json_default

        d = pr.as_dict()
        d["peak_allocated_bytes"] = {"regular": rt.regular.total,
                                     "continual": None if rt.continual is None else rt.continual.total}
        d["device_memory_bytes"] = int(cap)
        emit(json.dumps(d, indent=2, default=json_default), fmt)
    else:
        emit(render_tables(tables, fmt), fmt)


@main.command("bench")
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
    from .bench import STEPS, bench, bench_table
    from .formats import render_tables

    with progress(len(STEPS), "benchmarking") as bar:
        d = bench(model, device, platform, batch, dtype, runs, clip, size, threads,
                  progress=lambda step: bar.update(1))
    if fmt == "json":
        import json

        from .formats import json_default

        emit(json.dumps(d, indent=2, default=json_default), fmt)
    else:
        emit(render_tables([bench_table(d)], fmt), fmt)


@main.command("formula")
@click.argument("model")
@click.option("--symbol", "-s", "symbols", multiple=True, metavar="PARAM",
              help="Keep a spec parameter symbolic too (e.g. width_factor, depth_factor). Repeatable.")
@click.option("--profile", "-p", type=_profile_type(), default=None, help="Accounting profile (default: paper).")
@click.option("--knob", "-k", "knobs", multiple=True, type=NameValue("conv_state=library-buffer", _knob_completions),
              help="Change a profile knob.")
@click.option("--set", "params", multiple=True, type=NameValue("depth_factor=5.0"), help="Override a spec parameter.")
@click.option("--dtype", type=_dtype_type(), default="fp32", show_default=True,
              help="Bytes per value for the *_bytes forms.")
@convention_option()
@format_option("table")
def formula_cmd(model, symbols, profile, knobs, params, dtype, convention, fmt):
    """Closed forms (sympy) of state, transient, totals and operations in clip and size.

    JSON gives each expression as a string sympy can parse; LaTeX as math.
    """
    from .formats import render_tables
    from .symbolic import closed_forms, forms_latex, forms_tables

    forms = closed_forms(model, profile, dict(knobs), dict(params), symbols, dtype, 1, convention)
    if fmt == "latex":
        emit(forms_latex(forms), fmt)
        return
    tables, data = forms_tables(forms, fmt)
    emit(render_tables(tables, fmt, data if fmt == "json" else None), fmt)


#: grids larger than this are streamed: only CSV and JSON
HUMAN_SWEEP_LIMIT = 20_000


@main.command("sweep")
@click.argument("model")
@click.option("--clip", "-T", "clips", default=None, help="Clips: 16 | 4..64 | 4..64:4 | 8,16,32. Default: the spec's.")
@click.option("--size", "-S", "sizes", default=None,
              help="Sizes, same syntax, and HxW items: 160..320:32,224x398. Default: the spec's.")
@click.option("--batch", "-b", "batches", default="1", show_default=True, help="Batches / streams, same syntax.")
@click.option("--dtype", "dtypes", default="fp32", show_default=True, help="One or more dtypes: fp32,fp16.")
@click.option("--profile", "-p", type=_profile_type(), default=None, help="Accounting profile (default: paper).")
@click.option("--knob", "-k", "knobs", multiple=True, type=NameValue("conv_state=library-buffer", _knob_completions),
              help="Change a profile knob.")
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
    from .formats import Table, render_tables
    from .sweep import iter_sweep, sweep
    from .units import MAX_POINTS

    spec, c, s, b, d, fixed, grid = grid_axes(model, clips, sizes, batches, dtypes, params)
    designs = 1
    for values in grid.values():
        designs *= len(values)
    points = designs * len(c) * len(s) * len(b) * len(d)
    if points > MAX_POINTS:
        raise ComemError(f"the grid has {points:,} points; the limit is {MAX_POINTS:,}")
    if points > HUMAN_SWEEP_LIMIT and fmt not in ("csv", "json"):
        raise ComemError(f"the grid has {points:,} points: use -f csv or -f json (streamed) for more than "
                         f"{HUMAN_SWEEP_LIMIT:,}")
    if grid:
        from .design import design_sweep, iter_design_sweep

        if fmt in ("csv", "json"):
            _stream_sweep(iter_design_sweep(spec, grid, c, s, b, d, profile, dict(knobs), convention, fixed), fmt,
                          designs, lambda r: r.designs)
            return
        r = design_sweep(spec, grid, c, s, b, d, profile, dict(knobs), convention, fixed)
    elif fmt in ("csv", "json"):
        _stream_sweep(iter_sweep(spec, c, s, b, d, profile, dict(knobs), convention, fixed), fmt, len(c))
        return
    else:
        r = sweep(spec, c, s, b, d, profile, dict(knobs), convention, fixed)
    notes = []
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
    from .spec import resolve
    from .units import MAX_BATCH, MAX_CLIP, MAX_SIZE, parse_range, parse_sizes

    spec = resolve(model)
    c = parse_range(clips, "clip", 1, MAX_CLIP) if clips else [spec.clip]
    s = parse_sizes(sizes, MAX_SIZE) if sizes else [None]
    b = parse_range(batches, "batch", 1, MAX_BATCH)
    d = [x.strip() for x in dtypes.split(",") if x.strip()] or ["fp32"]
    fixed, grid = split_params(params)
    return spec, c, s, b, d, fixed, grid


def split_params(params) -> tuple[dict, dict]:
    """``--set`` pairs -> (overrides: name -> one value, grid: name -> values):
    a value with a range or a list is swept."""
    from .units import parse_values

    fixed, grid = {}, {}
    for name, text in params:
        if name in fixed or name in grid:
            raise ComemError(f"--set {name} is given twice; give each parameter once (a list: {name}=1,2,3)")
        if ".." in text or "," in text:
            grid[name] = parse_values(text, f"--set {name}")
        else:
            fixed[name] = text
    return fixed, grid


def _stream_sweep(blocks, fmt, n_items, done=lambda r: len(r.clips)):
    """Write CSV lines or one JSON document block by block."""
    import json

    out = click.get_text_stream("stdout")
    first = True
    reasons: list = []
    with progress(n_items, "sweeping") as bar:
        for r in blocks:
            if first:
                if fmt == "csv":
                    out.write(",".join(r.headers()) + "\n")
                else:
                    head = {"model": r.model, "profile": r.profile, "convention": r.convention,
                            "columns": r.headers()}
                    out.write(json.dumps(head)[:-1] + ', "rows": [\n')
            text = r.text_rows(fmt)
            if text:
                if fmt == "json" and not first:
                    out.write(",\n")
                out.write(text)
                if fmt == "csv":
                    out.write("\n")
            first = False
            reasons.extend(x for x in r.reasons if x not in reasons)
            bar.update(done(r))
    if fmt == "json":
        out.write("\n], " + json.dumps({"invalid_reasons": reasons})[1:] + "\n")
    out.flush()


@main.command("pareto")
@click.argument("model")
@click.option("--set", "params", multiple=True, type=NameValue("width_factor=1..3:0.25"),
              help="A spec parameter: one value or several (swept): 2.2 | 1,2,2.5 | 1..3:0.25. Repeatable.")
@click.option("--clip", "-T", "clips", default=None, help="Clips: 16 | 4..64 | 4..64:4 | 8,16,32.")
@click.option("--size", "-S", "sizes", default=None, help="Sizes, same syntax, and HxW items.")
@click.option("--batch", "-b", "batches", default="1", show_default=True, help="Batches / streams, same syntax.")
@click.option("--dtype", "dtypes", default="fp32", show_default=True, help="One or more dtypes: fp32,fp16.")
@click.option("--minimize", default="total_bytes,ops_per_step", show_default=True,
              help="Columns to minimise, comma-separated.")
@click.option("--maximize", default="", help="Columns to maximise, comma-separated (e.g. params, size).")
@click.option("--where", "where", multiple=True,
              help="Keep points meeting COLUMN OP NUMBER[UNIT]: 'state_bytes<=8MiB', 'ops_per_step<1G', "
                   "'params>=3M'. Repeatable (all must hold).")
@click.option("--profile", "-p", type=_profile_type(), default=None, help="Accounting profile (default: paper).")
@click.option("--knob", "-k", "knobs", multiple=True, type=NameValue("conv_state=library-buffer", _knob_completions),
              help="Change a profile knob.")
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
    from .formats import render_tables
    from .pareto import pareto

    spec, c, s, b, d, fixed, grid = grid_axes(model, clips, sizes, batches, dtypes, params)
    if not grid:
        raise ComemError("pareto sweeps spec parameters: give at least one --set NAME=VALUES with a range or a list "
                         "(e.g. --set width_factor=1..3:0.25)")
    goals_min = [g.strip() for g in minimize.split(",") if g.strip()]
    goals_max = [g.strip() for g in maximize.split(",") if g.strip()]
    front = pareto(spec, grid, c, s, b, d, profile, dict(knobs), convention, fixed, goals_min, goals_max, where)
    if fmt == "json":
        import json

        from .formats import json_default

        emit(json.dumps(front.to_dict(), indent=2, default=json_default), fmt)
    else:
        emit(render_tables([front.table()], fmt), fmt)


@main.command("solve")
@click.argument("model")
@click.option("--for", "for_", required=True, metavar="size|clip|batch|PARAM",
              help="What to maximise: size, clip, batch, or any numeric spec parameter (width_factor, "
                   "depth_factor, ...).")
@click.option("--budget", default=None, help="Memory budget: 8MiB, 512KB, 1.5GiB, 4096 (bytes).")
@click.option("--ops-budget", "--macs-budget", "ops_budget", default=None,
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
    from .formats import Table, render_tables
    from .solve import solve, solve_param
    from .sweep import param_value
    from .units import parse_bytes, parse_count, parse_values

    for_ = for_.strip()
    budget_b = parse_bytes(budget) if budget is not None else None
    budget_o = parse_count(ops_budget) if ops_budget is not None else None
    if for_ in ("size", "clip", "batch"):
        if step is not None or lo is not None or hi is not None:
            raise ComemError("--step/--min/--max apply to solving for a spec parameter")
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


@main.command("compare")
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
    from .compare import compare, compare_table
    from .formats import render_tables
    from .profiles import PROFILES

    if each_profile:
        if profile is not None:
            raise ComemError("--each-profile shows every profile; drop --profile")
        items = tuple(f"{it}{',' if ':' in it else ':'}profile={p}" for it in items for p in PROFILES)

    reports = compare(items, common_kwargs(clip, size, profile, knobs, params, dtype, batch, convention))
    if fmt == "json":
        import json

        from .formats import json_default

        emit(json.dumps({label: r.summary() for label, r in reports}, indent=2, default=json_default), fmt)
    else:
        emit(render_tables([compare_table(reports)], fmt), fmt)


@main.command("plot")
@click.argument("kind", type=click.Choice(["stages", "clip", "size", "models", "pareto-grid",
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
@click.option("--maximize", "maximize", default="params", show_default=True,
              help="pareto-grid: the front also maximises this column ('' for min x and y only).")
@click.option("--device", "plot_device", type=click.Choice(["cpu", "tx2", "xavier", "rtx2080ti"]),
              default="rtx2080ti", show_default=True, help="accuracy-throughput: the paper's platform.")
@model_options
def plot_cmd(kind, models, out, values, x_col, y_col, color_col, where, maximize, plot_device, clip, size, profile, knobs, params, dtype,
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
    from . import plot
    from .units import MAX_CLIP, MAX_SIZE, parse_range

    ext = os.path.splitext(out)[1].lower()
    if ext not in (".png", ".svg"):
        raise ComemError(f"--out must end in .png or .svg, got {out!r}")
    if kind == "accuracy-throughput":
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
        raise ComemError(f"'comem plot {kind}' needs a MODEL")
    if kind == "pareto-grid":
        fixed, grid = split_params(params)
        params = tuple(fixed.items())
    kw = common_kwargs(clip, size, profile, knobs, params, dtype, batch, convention)
    if kind in ("stages", "clip", "size", "pareto-grid") and len(models) != 1:
        raise ComemError(f"'comem plot {kind}' takes one model, got {len(models)}")
    if kind == "stages":
        from .api import analyze

        fig = plot.memory_by_stage(analyze(models[0], **kw))
    elif kind in ("clip", "size"):
        default = "1..128" if kind == "clip" else "32..448:8"
        xs = parse_range(values or default, kind, 1, MAX_CLIP if kind == "clip" else MAX_SIZE)
        kw.pop(kind)
        fig = plot.against(models[0], kind, xs, **{k: v for k, v in kw.items() if v is not None})
    elif kind == "pareto-grid":
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


def run(argv=None):
    """Entry point: run the CLI, turning every input problem into one line."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:  # bare `comem`: its help, as people expect
        with click.Context(main, info_name="comem") as ctx:
            click.echo(main.get_help(ctx))
        sys.exit(0)
    try:
        main.main(args=args, prog_name="comem", standalone_mode=False)
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
