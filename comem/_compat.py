"""Every compatibility name of comem in one place, each with its removal version.

* Module paths of comem 0.2 (before the package tree of 0.3): ``from comem.sweep
  import sweep`` keeps working through a meta-path finder that loads the module's
  new home under the old name.  Removed in 0.4.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
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


class _Loader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module):
        pass


class _OldPaths(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = MODULE_PATHS.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Loader(new))


def install() -> None:
    if not any(isinstance(f, _OldPaths) for f in sys.meta_path):
        sys.meta_path.append(_OldPaths())
