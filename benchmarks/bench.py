"""comem's speed targets, measured on this machine in one run.

* cold ``comem x3d-m --clip 64`` vs a bare ``python -c pass`` (median of
  interleaved runs): answered from the output cache (target <= 3x) and
  computed (``COMEM_CACHE=0``)
* closed forms of x3d-m in clip and size (target < 2 s, sympy import included,
  in a fresh process)
* sweep throughput for state + transient + MACs of x3d-m on a
  1000 x 1000 clip x size grid (target >= 1,000,000 points/s), and against
  evaluating points one by one (target >= 100x)

The last two lines read ``cli: R× python startup`` and
``sweep: N points/s, M× per-point``.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from startup import measure as measure_startup  # noqa: E402


def bench_formula() -> float:
    code = ("import time; t=time.perf_counter(); from comem.analyses.symbolic import closed_forms; "
            "f=closed_forms('x3d-m'); print(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def bench_sweep(n_clip=1000, n_size=1000, per_point_samples=300):
    from comem import api
    from comem.analyses.sweep import sweep
    from comem.accounting.profiles import get_profile
    from comem.model.walk import evaluate_graph
    from comem.accounting.conventions import weigh

    clips = list(range(1, n_clip + 1))
    sizes = list(range(32, 32 + n_size))
    sweep("x3d-m", clips[:10], sizes[:10])  # warm caches (spec, graph, numpy)
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        r = sweep("x3d-m", clips, sizes)
        _ = (r.columns["state_floats"], r.columns["transient_floats"], r.columns["ops_per_step"],
             r.columns["ops_per_clip"])
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    points = len(clips) * len(sizes)
    # the same quantities, one point at a time
    spec = api.resolve("x3d-m")
    graph = api.get_graph(spec)
    prof = get_profile("paper")
    rng = random.Random(0)
    sample = [(rng.choice(clips), rng.choice(sizes)) for _ in range(per_point_samples)]
    t0 = time.perf_counter()
    for c, s in sample:
        t = evaluate_graph(graph, c, s, prof, record=False, clip_transient=False)
        _ = (t.state, t.transient("stage-output"), weigh(t.work_step, "ptflops"), weigh(t.work_clip, "ptflops"))
    per_point = (time.perf_counter() - t0) / len(sample)
    return points, best, per_point


def main():
    rounds = int(os.environ.get("COMEM_BENCH_ROUNDS", "11"))
    bare, job = measure_startup(rounds, cached=True)
    bare_c, computed = measure_startup(rounds, cached=False)
    print(f"python -c pass: {bare * 1000:.1f} ms; comem x3d-m --clip 64: {job * 1000:.1f} ms from the output cache "
          f"(target <= 3x), {computed * 1000:.1f} ms computed ({computed / bare_c:.1f}x; medians of {rounds} "
          "interleaved runs)")
    f = bench_formula()
    print(f"closed forms of x3d-m (fresh process, sympy import included): {f:.2f} s (target < 2 s)")
    points, dt, per_point = bench_sweep()
    rate = points / dt
    speedup = per_point * points / dt
    print(f"sweep of {points:,} x3d-m points (state, transient, MACs per step and per clip): {dt:.3f} s; "
          f"one point at a time: {per_point * 1000:.2f} ms/point (targets >= 1,000,000 points/s and >= 100x)")
    print(f"cli: {job / bare:.1f}× python startup")
    print(f"sweep: {rate:,.0f} points/s, {speedup:,.0f}× per-point")


if __name__ == "__main__":
    main()
