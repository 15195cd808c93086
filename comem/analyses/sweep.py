"""Sweeps of a model: clip × size × batch × dtype (:func:`sweep`), and any
spec parameters besides (:func:`design_sweep`) — both one grid
(:class:`comem.analyses.grid.Grid`); ``iter_*`` stream large grids in blocks
whose memory stays bounded whatever the number of points."""
from __future__ import annotations

from comem.errors import ComemError
from comem.analyses.grid import BLOCK_POINTS, COLUMNS, Grid, SweepResult, param_text, param_value

__all__ = ["BLOCK_POINTS", "COLUMNS", "Grid", "SweepResult", "design_sweep", "iter_design_sweep", "iter_sweep",
           "param_text", "param_value", "sweep"]


def sweep(model, clips, sizes, batches=(1,), dtypes=("fp32",), profile=None, knobs=None, convention="ptflops",
          params=None) -> SweepResult:
    """Evaluate ``model`` on the grid ``clips × sizes × batches × dtypes`` at
    once (for grids that fit in memory; :func:`iter_sweep` streams)."""
    return Grid(model, None, clips, sizes, batches, dtypes, profile, knobs, convention, params).result()


def iter_sweep(model, clips, sizes, batches=(1,), dtypes=("fp32",), profile=None, knobs=None,
               convention="ptflops", params=None, block_points: int = BLOCK_POINTS):
    """The sweep as a sequence of :class:`SweepResult` blocks of whole clips,
    each of about ``block_points`` (clip, size) pairs, in row order."""
    yield from Grid(model, None, clips, sizes, batches, dtypes, profile, knobs, convention, params).blocks(
        block_points)


def design_sweep(model, grid: dict, clips=None, sizes=None, batches=(1,), dtypes=("fp32",), profile=None,
                 knobs=None, convention="ptflops", params=None) -> SweepResult:
    """Evaluate ``model`` over ``grid`` (parameter name -> values) × clips ×
    sizes × batches × dtypes, in memory: a :class:`SweepResult` whose columns
    have a leading design axis (``param_rows`` holds each design's values).
    :func:`iter_design_sweep` streams large grids."""
    return _design(model, grid, clips, sizes, batches, dtypes, profile, knobs, convention, params).result()


def iter_design_sweep(model, grid: dict, clips=None, sizes=None, batches=(1,), dtypes=("fp32",), profile=None,
                      knobs=None, convention="ptflops", params=None, block_points: int = BLOCK_POINTS):
    """The design sweep as :class:`SweepResult` blocks of whole designs, in row order."""
    yield from _design(model, grid, clips, sizes, batches, dtypes, profile, knobs, convention, params).blocks(
        block_points)


def _design(model, grid, clips, sizes, batches, dtypes, profile, knobs, convention, params) -> Grid:
    from comem.spec.registry import resolve

    if not grid:
        raise ComemError("a design sweep needs at least one parameter with values (e.g. width_factor=1..3:0.25)")
    spec = resolve(model)
    return Grid(spec, grid, clips if clips is not None else [spec.clip], sizes if sizes is not None else [None],
                batches, dtypes, profile, knobs, convention, params)
