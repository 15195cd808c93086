"""Design-sweep speed: an X3D-M grid over width × depth × bottleneck × clip ×
size (1,178,793 points), evaluated exactly, against the point-by-point path.

Prints ``design sweep: N points/s`` (evaluation of every column, median of
runs), the structure groups built, the per-point rate of ``comem.analyze``
with the same ``params`` (on a random sample of the grid, whose values it
also checks against the sweep), and their ratio.  Targets: >= 1e6 points/s
and >= 1000x the per-point path.
Run:  python benchmarks/design_sweep.py [runs]
"""
from __future__ import annotations

import random
import statistics
import sys
import time


def main(runs: int = 3):
    import comem
    from comem.analyses.grid import Grid
    from comem.core.units import parse_values

    grid = {"width_factor": parse_values("1..3:0.25", "w"), "depth_factor": parse_values("1..5:0.5", "d"),
            "bottleneck_factor": parse_values("1.5..3:0.25", "b")}
    clips, sizes = list(range(4, 130, 2)), list(range(128, 392, 8))
    times, blocks, ds = [], None, None
    for _ in range(runs):
        ds = Grid("x3d-m", grid, clips, sizes)
        t0 = time.perf_counter()
        blocks = list(ds.blocks())
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    rate = ds.points / t
    print(f"grid: {' x '.join(f'{k} ({len(v)})' for k, v in grid.items())} x clip ({len(clips)}) x size "
          f"({len(sizes)}) = {ds.points:,} points, {len(ds.rows)} designs")
    print(f"structure groups built: {ds.groups_built} (one layer tree per distinct depth)")
    print(f"design sweep: {rate:,.0f} points/s ({t:.2f} s for {ds.points:,} points, median of {runs})")
    # the per-point path on a random sample, checked against the sweep
    r = blocks[0]
    random.seed(0)
    sample = [(random.randrange(len(r.param_rows)), random.randrange(len(clips)), random.randrange(len(sizes)))
              for _ in range(40)]
    t0 = time.perf_counter()
    for p, i, j in sample:
        rep = comem.analyze("x3d-m", clip=clips[i], size=sizes[j],
                            params=dict(zip(r.param_names, r.param_rows[p])))
        for col in ("state_floats", "transient_floats", "ops_per_step", "ops_per_clip", "regular_total_floats"):
            if int(r.columns[col][p, i, j, 0, 0]) != getattr(rep, col):
                raise SystemExit(f"MISMATCH at {r.param_rows[p]}, clip {clips[i]}, size {sizes[j]}: {col}")
    per_point = (time.perf_counter() - t0) / len(sample)
    print(f"per-point path (comem.analyze): {1 / per_point:,.0f} points/s ({per_point * 1000:.1f} ms a point; "
          f"{len(sample)} sampled points equal the sweep)")
    print(f"ratio: {rate * per_point:,.0f}x the per-point path (targets: >= 1,000,000 points/s, >= 1000x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
