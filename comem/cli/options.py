"""Shared option types and option groups of the CLI: one declaration and one set of limits each."""
from __future__ import annotations

import click

from comem import _compat
from comem.errors import ComemError


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
        from comem.core.units import check_int

        try:
            return check_int(value, self.what, self.lo, self.hi)
        except ComemError as exc:
            self.fail(str(exc), param, ctx)


class FrameSize(click.ParamType):
    """``224`` (square; the joints of a 2D model) or ``224x398`` (height x width)."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        from comem.core.units import MAX_SIZE, check_int

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
        name = name.strip()
        if ctx is not None and param is not None:  # a repeated NAME would silently keep the last value
            seen = ctx.meta.setdefault(f"comem.name_value.{param.name}", set())
            if name in seen:
                opt = param.opts[0]
                hint = f" (several values: {opt} {name}=1,2,3)" if opt == "--set" else ""
                self.fail(f"{opt} {name} is given twice; give it once{hint}", param, ctx)
            seen.add(name)
        return name, v.strip()

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        items = self.completions() if callable(self.completions) else self.completions
        return [CompletionItem(c) for c in items if c.startswith(incomplete)]


def knob_completions():
    from comem.accounting.profiles import KNOBS

    return [f"{k}={v}" for k, values in KNOBS.items() for v in values]


def format_type():
    from comem.results.formats import FORMATS, check_format

    return Checked(FORMATS, check_format)


def profile_type():
    from comem.accounting.profiles import PROFILES, get_profile

    return Checked(PROFILES, lambda v: get_profile(v).name)


def dtype_type():
    from comem.core.units import dtype_bytes

    return Checked(("fp32", "fp16", "bf16", "int8", "fp64"), lambda v: dtype_bytes(v)[0])


def view_type():
    from comem.results.report import VIEWS, check_view

    return Checked(VIEWS, check_view)


def convention_type():
    from comem.accounting.conventions import CONVENTIONS, check_convention

    return Checked(CONVENTIONS, check_convention)


# -- shared options ----------------------------------------------------------

def clip_option(help="Frames per clip (the continual pool window). Default: the spec's."):
    """``--clip``: one declaration and one limit (comem.core.units.MAX_CLIP) for every command."""
    from comem.core.units import MAX_CLIP

    return click.option("--clip", "-T", type=WholeNumber("clip (frames)", 1, MAX_CLIP), default=None, help=help)


def size_option(help="Frame size: 224 (square) or 224x398 (height x width); the joints of a 2D model. "
                     "Default: the spec's."):
    """``--size``: one declaration (its limit is FrameSize's, comem.core.units.MAX_SIZE) for every command."""
    return click.option("--size", "-S", type=FrameSize(), default=None, help=help)


def batch_option(default=1, help="Batch size / number of streams."):
    """``--batch``: one declaration and one limit (comem.core.units.MAX_BATCH) for every command."""
    from comem.core.units import MAX_BATCH

    return click.option("--batch", "-b", type=WholeNumber("batch (streams)", 1, MAX_BATCH), default=default,
                        show_default=default is not None, help=help)


def profile_option():
    return click.option("--profile", "-p", type=profile_type(), default=None, help="Accounting profile (default: paper).")


def knob_option():
    return click.option("--knob", "-k", "knobs", multiple=True, type=NameValue("conv_state=library-buffer",
                                                                               knob_completions),
                        help="Change one profile knob (what-if), e.g. conv_state=library-buffer. Repeatable.")


def grid_axis_options(f):
    """``--clip``, ``--size``, ``--batch`` and ``--dtype`` of a grid (a value, a list or a range each; parsed
    with the same limits as the single options by comem.core.units.parse_range / parse_sizes)."""
    opts = [
        click.option("--clip", "-T", "clips", default=None,
                     help="Clips: 16 | 4..64 | 4..64:4 | 8,16,32. Default: the spec's."),
        click.option("--size", "-S", "sizes", default=None,
                     help="Sizes, same syntax, and HxW items: 160..320:32,224x398. Default: the spec's."),
        click.option("--batch", "-b", "batches", default="1", show_default=True,
                     help="Batches / streams, same syntax."),
        click.option("--dtype", "dtypes", default="fp32", show_default=True, help="One or more dtypes: fp32,fp16."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def model_options(f):
    opts = [
        clip_option(),
        size_option(),
        profile_option(),
        knob_option(),
        click.option("--set", "params", multiple=True, type=NameValue("depth_factor=5.0"),
                     help="Override a spec parameter, e.g. depth_factor=5.0. Repeatable."),
        click.option("--dtype", type=dtype_type(), default="fp32", show_default=True,
                     help="Bytes per value of state, maps and weights."),
        batch_option(),
        convention_option(),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def convention_option():
    return click.option("--convention", *_compat.option_aliases("--convention"), "-c", "convention",
                        type=convention_type(), default="ptflops", show_default=True,
                        help="FLOP-counting convention (--count: its 0.1 name, until comem 0.4).")


def format_option(default="table"):
    return click.option("--format", "-f", "fmt", type=format_type(), default=default, show_default=True,
                        help="Output format.")


def analysis_options(f):
    """Every option of `comem MODEL`, in one group that `comem analyze` and
    `comem import` share: the model options, ``--format``, and what the
    analysis shows (``--view``, ``--top``, ``--depth``) and adds
    (``--runtime``, ``--device``).  The command passes them on to
    :func:`run_analysis` as they come (``**options``)."""
    opts = [
        format_option(),
        click.option("--view", type=view_type(), default="breakdown", show_default=True,
                     help="What the table (and JSON/CSV) shows."),
        click.option("--top", type=click.IntRange(min=1), default=None, help="Only the N heaviest layers."),
        click.option("--depth", type=click.IntRange(min=1), default=None,
                     help="Layers summed to N levels of their path (1: stages, 2: blocks...), as torchinfo's depth."),
        click.option("--runtime", type=click.Choice(["pytorch"]), default=None,
                     help="Also predict the peak bytes PyTorch allocates (eager regular clip, continual-inference "
                          "step)."),
        click.option("--allocator", *_compat.option_aliases("--allocator"), "device", type=click.Choice(["cuda", "cpu"]),
                     default="cuda", show_default=True, help="The allocator --runtime models (cuda: 512-byte blocks)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return model_options(f)


def run_analysis(model, clip, size, profile, knobs, params, dtype, batch, convention, fmt, view, top, depth,
                 runtime, device):
    """Analyse ``model`` (a name, a spec file or a Spec) with the options of
    :func:`analysis_options` and print it."""
    from comem.api import analyze
    from comem.cli.output import emit

    r = analyze(model, **common_kwargs(clip, size, profile, knobs, params, dtype, batch, convention),
                runtime=runtime, device=device)
    if depth and view == "breakdown" and not top:
        view = "layers"
    emit(r.render(fmt, view, top, depth), fmt)


def common_kwargs(clip, size, profile, knobs, params, dtype, batch, convention) -> dict:
    return dict(clip=clip, size=size, profile=profile, knobs=dict(knobs) or None, params=dict(params) or None,
                dtype=dtype, batch=batch, convention=convention)
