"""`comem list`, `comem profiles`, `comem kinds`: what comem knows."""
from __future__ import annotations

import click

from comem.cli.options import format_option
from comem.cli.output import emit


@click.command("list")
@format_option()
def list_cmd(fmt):
    """The built-in models."""
    from comem.results.formats import Table, render_tables
    from comem.spec.registry import builtin_names, resolve

    rows = []
    for name in builtin_names():
        s = resolve(name)
        rows.append([s.name, s.title, s.clip, s.size, s.continual, list(s.aliases)])
    emit(render_tables([Table("Known models", ["model", "title", "clip", "size", "continual", "aliases"], rows,
                              numeric=(2, 3))], fmt), fmt)


@click.command("profiles")
@format_option()
def profiles_cmd(fmt):
    """Accounting profiles and their knobs."""
    from comem.results.formats import Table, render_tables
    from comem.accounting.profiles import KNOBS, PROFILE_DOC, PROFILES

    rows = [[k, list(v)] + [PROFILES[p][k] for p in PROFILES] for k, v in KNOBS.items()]
    notes = [f"{p}: {d}" for p, d in PROFILE_DOC.items()]
    emit(render_tables([Table("Profiles and knobs", ["knob", "values"] + list(PROFILES), rows, notes)], fmt), fmt)


@click.command("kinds")
@format_option()
def kinds_cmd(fmt):
    """Layer kinds a spec can use: their fields, state formula and module."""
    from comem.core.expr import parse
    from comem.results.formats import Table, render_tables
    from comem.layers import KINDS

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
