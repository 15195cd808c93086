"""`comem paper`: the publications' tables reproduced."""
from __future__ import annotations

import click

from comem.errors import ComemError
from comem.cli.options import format_option
from comem.cli.output import emit


@click.command("paper")
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
    from comem.results.formats import render_tables

    if paper != "co3d":
        from comem.reproduce.beyond import PAPERS, paper_tables as beyond_tables

        unknown = [t for t in tables if t not in PAPERS[paper][1]]
        if unknown:
            raise ComemError(f"--paper {paper} has tables {', '.join(PAPERS[paper][1])}, not {', '.join(unknown)}")
        emit(render_tables(beyond_tables(paper, tables), fmt), fmt)
        return
    from comem.reproduce.co3d import TABLES, paper_tables

    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ComemError(f"the CoX3D paper has tables {', '.join(TABLES)}, not {', '.join(unknown)}")
    emit(render_tables(paper_tables(tables or tuple(TABLES)), fmt), fmt)
