"""Cold start of the main job against a bare Python start.

Runs ``python -c pass`` and ``comem x3d-m --clip 64`` alternately (N rounds,
interleaved so both see the same machine load) and prints the medians and
their ratio.  Target: ratio <= 8.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time


def comem_command():
    exe = shutil.which("comem", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    return [exe] if exe else [sys.executable, "-m", "comem"]


def measure(rounds: int = 11):
    bare = [sys.executable, "-c", "pass"]
    job = comem_command() + ["x3d-m", "--clip", "64"]
    subprocess.run(job, capture_output=True, check=True)  # warm the file cache and .pyc files
    t_bare, t_job = [], []
    for _ in range(rounds):
        for cmd, acc in ((bare, t_bare), (job, t_job)):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            acc.append(time.perf_counter() - t0)
    return statistics.median(t_bare), statistics.median(t_job)


if __name__ == "__main__":
    b, j = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 11)
    print(f"python -c pass: {b * 1000:.1f} ms (median)")
    print(f"comem x3d-m --clip 64: {j * 1000:.1f} ms (median)")
    print(f"cli: {j / b:.1f}× python startup")
