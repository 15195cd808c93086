"""`comem formula MODEL`: closed forms over symbolic parameters."""
from __future__ import annotations

import click

from comem.cli.options import NameValue, knob_completions, profile_type, dtype_type, convention_option, format_option
from comem.cli.output import emit


@click.command("formula")
@click.argument("model")
@click.option("--symbol", "-s", "symbols", multiple=True, metavar="PARAM",
              help="Keep a spec parameter symbolic too (e.g. width_factor, depth_factor). Repeatable.")
@click.option("--profile", "-p", type=profile_type(), default=None, help="Accounting profile (default: paper).")
@click.option("--knob", "-k", "knobs", multiple=True, type=NameValue("conv_state=library-buffer", knob_completions),
              help="Change a profile knob.")
@click.option("--set", "params", multiple=True, type=NameValue("depth_factor=5.0"), help="Override a spec parameter.")
@click.option("--dtype", type=dtype_type(), default="fp32", show_default=True,
              help="Bytes per value for the *_bytes forms.")
@convention_option()
@format_option("table")
def formula_cmd(model, symbols, profile, knobs, params, dtype, convention, fmt):
    """Closed forms (sympy) of state, transient, totals and operations in clip and size.

    JSON gives each expression as a string sympy can parse; LaTeX as math.
    """
    from comem.results.formats import render_tables
    from comem.analyses.symbolic import closed_forms, forms_latex, forms_tables

    forms = closed_forms(model, profile, dict(knobs), dict(params), symbols, dtype, 1, convention)
    if fmt == "latex":
        emit(forms_latex(forms), fmt)
        return
    tables, data = forms_tables(forms, fmt)
    emit(render_tables(tables, fmt, data if fmt == "json" else None), fmt)


#: grids larger than this are streamed: only CSV and JSON
