"""`comem import FILE.py:CALLABLE`: analyse a PyTorch model (imports the user's file: runs their code)."""
from __future__ import annotations

import sys

import click

from comem.errors import ComemError
from comem.cli.options import NameValue, analysis_options, run_analysis
from comem.cli.output import emit


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


def _pathways(text):
    """``--pathways 4,1`` -> (4, 1)."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) < 2 or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise ComemError(f"--pathways {text!r} is not whole numbers >= 1 per pathway, e.g. 4,1")
    return tuple(int(p) for p in parts)


@click.command("import")
@click.argument("target", metavar="FILE.py:CALLABLE")
@click.option("--input", "input_shape", required=True, metavar="CxTxHxW",
              help="Input shape without the batch: 3x16x224x224 (video), 3x300x25 (C x T x V), 64x100 (C x T).")
@click.option("--arg", "args", multiple=True, type=NameValue("num_classes=400"),
              help="A keyword argument for the callable (numbers, true/false, text). Repeatable.")
@click.option("--name", default=None, help="The spec's model name. Default: the module's class.")
@click.option("--out", "-o", default=None, help="Write the spec as TOML (re-load it with `comem FILE.toml`).")
@click.option("--check", is_flag=True, help="Also measure the module itself (params, ptflops/fvcore per clip; "
                                            "state, delay and per-step ops of a continual model) and compare.")
@click.option("--layout", type=click.Choice(["CTVM"], case_sensitive=False), default=None,
              help="CTVM: a skeleton model's input (C, T, V joints, M bodies) whose bodies the model folds into "
                   "the batch (continual-skeletons); --input then reads CxTxVxM.")
@click.option("--pathways", default=None, metavar="A,B",
              help="A multi-pathway model (SlowFast) fed from one clip: each pathway's temporal subsampling, "
                   "e.g. 4,1. Default: tried from 2,1 upwards.")
@analysis_options
def import_cmd(target, input_shape, args, name, out, check, layout, pathways, **options):
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
    from comem.pytorch.importer import load_factory, parse_input, spec_from_module
    from comem.pytorch.importer.emit import to_toml

    shape = parse_input(input_shape)
    steps = _pathways(pathways)
    module = load_factory(target, {k: _arg_value(v) for k, v in args})
    spec, data = spec_from_module(module, shape, name, pathways=steps, layout=layout.upper() if layout else None)
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
        from comem.results.formats import Table, render_tables
        from comem.pytorch.importer.check import compare

        rows = compare(module, shape, spec, pathways=steps)
        table = [[q, a, m, "✓" if a == m else "✗"] for q, a, m in rows]
        fmt = options["fmt"]
        emit(render_tables([Table(f"comem vs the module itself — {spec.title}, input {shape}",
                                  ["quantity", "comem", "measured", ""], table, numeric=(1, 2))], fmt), fmt)
        if any(a != m for _, a, m in rows):
            sys.exit(1)
        return
    if not out:
        run_analysis(spec, **options)
