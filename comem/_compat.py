"""Every compatibility name of comem in one place, each with its removal version.

* Module paths of comem 0.2 (before the package tree of 0.3): ``from comem.sweep
  import sweep`` keeps working through a meta-path finder that loads the module's
  new home under the old name.  Removed in 0.4.
"""
from __future__ import annotations

import sys

REMOVED_IN = "0.4"

# 0.2 module path -> its home since 0.3
MODULE_PATHS = {
    "comem.shim": "comem.core.shim", "comem.expr": "comem.core.expr", "comem.units": "comem.core.units",
    "comem.profiles": "comem.accounting.profiles", "comem.conventions": "comem.accounting.conventions",
    "comem.nodes": "comem.layers.nodes", "comem.errata": "comem.spec.errata",
    "comem.graph": "comem.model.build", "comem.inputs": "comem.model.inputs", "comem.walker": "comem.model.walk",
    "comem.report": "comem.results.report", "comem.formats": "comem.results.formats",
    "comem.sweep": "comem.analyses.sweep", "comem.design": "comem.analyses.sweep",
    "comem.pareto": "comem.analyses.pareto", "comem.solve": "comem.analyses.solve",
    "comem.symbolic": "comem.analyses.symbolic", "comem.compare": "comem.analyses.compare",
    "comem.runtime": "comem.model.runtime", "comem.roofline": "comem.device.roofline",
    "comem.bench": "comem.device.bench", "comem.paper": "comem.reproduce.co3d",
    "comem.paper_beyond": "comem.reproduce.beyond",
    "comem.validate": "comem.pytorch", "comem.validate.builder": "comem.pytorch.build",
    "comem.validate.kit": "comem.pytorch.modules", "comem.validate.instrument": "comem.pytorch.instrument",
    "comem.validate.runtime": "comem.pytorch.measure", "comem.validate.compare": "comem.pytorch.validate",
    "comem.importer": "comem.pytorch.importer", "comem.importer.trace": "comem.pytorch.importer.trace",
    "comem.importer.emit": "comem.pytorch.importer.emit",
    "comem.importer.structure": "comem.pytorch.importer.structure",
    "comem.importer.check": "comem.pytorch.importer.check",
}


class _Loader:
    """Loads a 0.2 module path as the module at its new home (no importlib.abc
    base: importing it would cost every start-up)."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        import importlib

        return importlib.import_module(self.target)

    def exec_module(self, module):
        pass


class _OldPaths:
    """A meta-path finder for the 0.2 module paths."""

    def find_spec(self, fullname, path=None, target=None):
        new = MODULE_PATHS.get(fullname)
        if new is None:
            return None
        import importlib.util

        return importlib.util.spec_from_loader(fullname, _Loader(new))


def install() -> None:
    if not any(isinstance(f, _OldPaths) for f in sys.meta_path):
        sys.meta_path.append(_OldPaths())


# -- 0.1 names (before "ops" replaced "macs" and "convention" replaced "count") ------------------------
# Kept in every JSON output and as Python aliases until REMOVED_IN; the current names are the truth and
# each 0.1 name is only ever a copy of one.

#: a report's summary: 0.1 key -> current key
SUMMARY_KEYS = {"count": "convention", "macs_per_step": "ops_per_step", "macs_per_clip": "ops_per_clip",
                "macs_per_frame_avg": "ops_per_frame_avg"}
#: a layer row (``count`` was the multiplicity of repeated blocks)
LAYER_KEYS = {"count": "multiplicity", "macs_per_step": "ops_per_step", "macs_per_clip": "ops_per_clip"}
#: a stage group
STAGE_KEYS = {"macs_per_step": "ops_per_step", "macs_per_clip": "ops_per_clip"}
#: a breakdown row
BREAKDOWN_KEYS = {"count": "multiplicity"}
#: ``Report.top_layers(by=...)``
TOP_BY = {"macs": "ops"}
#: ``comem compare`` item keys
COMPARE_KEYS = {"count": "convention"}
#: CLI options: 0.1 spelling -> current (declared as secondary names of the current option)
OPTIONS = {"--count": "--convention", "--macs-budget": "--ops-budget"}
#: CLI options renamed in 0.3 so that one word means one thing ("device": where bench runs, which latency
#: profile predict uses); their 0.2 spellings, removed in 0.4 too
OPTIONS.update({"--device": "--allocator"})  # comem MODEL --device (the allocator --runtime models)
#: comem plot accuracy-throughput --device (a paper platform); declared per option, so predict's and bench's own
#: --device (the profile that predicts, where bench runs) are not affected
PLOT_OPTIONS = {"--device": "--platform"}


def add_keys(d: dict, table: dict) -> dict:
    """Copy each current value under its 0.1 key (``table``: old -> new) and return ``d``."""
    for old, new in table.items():
        if new in d:
            d[old] = d[new]
    return d


class ReportNames:
    """The 0.1 attribute names of :class:`comem.results.report.Report`."""

    def macs(self, convention: str, step: bool = False):
        return self.ops(convention, step)

    @property
    def count(self):
        return self.convention

    @property
    def macs_per_clip(self):
        return self.ops_per_clip

    @property
    def macs_per_step(self):
        return self.ops_per_step

    @property
    def macs_per_frame_avg(self):
        return self.ops_per_frame_avg


def solve_budget(ops_budget, macs_budget):
    """``solve(macs_budget=...)``: the 0.1 name of ``ops_budget``."""
    return macs_budget if ops_budget is None else ops_budget


def option_aliases(current: str) -> list[str]:
    """The 0.1/0.2 spellings of a CLI option, declared beside its current name."""
    return [old for table in (OPTIONS, PLOT_OPTIONS) for old, new in table.items() if new == current]
