"""Cold start of the main job against a bare Python start.

Runs ``python -c pass`` and ``comem x3d-m --clip 64`` alternately (N rounds,
interleaved so both see the same machine load) and prints the medians and
their ratio, twice: answered from the output cache (a repeated analysis:
comem/cli/cache.py) and computed (``COMEM_CACHE=0``: imports, the analysis
and its three accountings, rendering).  Target: the cached main job within 3x
a bare interpreter start.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def comem_command():
    exe = shutil.which("comem", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    return [exe] if exe else [sys.executable, "-m", "comem"]


def measure(rounds: int = 11, cached: bool = True):
    bare = [sys.executable, "-c", "pass"]
    job = comem_command() + ["x3d-m", "--clip", "64"]
    env = dict(os.environ, COMEM_CACHE="1" if cached else "0")
    env["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="comem-startup-")
    subprocess.run(job, capture_output=True, check=True, env=env)  # warm the file cache, .pyc files (and the cache)
    t_bare, t_job = [], []
    for _ in range(rounds):
        for cmd, acc in ((bare, t_bare), (job, t_job)):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True, env=env)
            acc.append(time.perf_counter() - t0)
    return statistics.median(t_bare), statistics.median(t_job)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 11
    for cached, what in ((True, "from the output cache"), (False, "computed (COMEM_CACHE=0)")):
        b, j = measure(n, cached)
        print(f"{what}: python -c pass {b * 1000:.1f} ms, comem x3d-m --clip 64 {j * 1000:.1f} ms (medians of {n}); "
              f"ratio {j / b:.1f}x")
