"""`comem MODEL` (`comem analyze MODEL`): the main job."""
from __future__ import annotations

import click

from comem.cli.options import analysis_options, run_analysis


@click.command("analyze")
@click.argument("model")
@analysis_options
def analyze_cmd(model, **options):
    """Analyse MODEL (a built-in name or a spec file)."""
    run_analysis(model, **options)
