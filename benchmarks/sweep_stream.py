"""Streaming sweeps stay bounded: time and peak memory of writing a large
clip x size grid of x3d-m as CSV and as JSON.

Runs ``comem sweep x3d-m --clip 1..24000 --size 32..448 -f csv`` (10,008,000
points) in a child process and reads its peak resident memory
(``getrusage(RUSAGE_CHILDREN).ru_maxrss``).  Target: under 500 MB.  Prints
``sweep stream (FMT): N points in S s, peak M MB``.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from startup import comem_command  # noqa: E402


def measure(fmt: str, clips: str = "1..24000", sizes: str = "32..448"):
    cmd = comem_command() + ["sweep", "x3d-m", "--clip", clips, "--size", sizes, "-f", fmt]
    t0 = time.perf_counter()
    with open(os.devnull, "w") as sink:
        proc = subprocess.run(cmd, stdout=sink, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    a, b = (int(x) for x in clips.split(".."))
    c, d = (int(x) for x in sizes.split(".."))
    return (b - a + 1) * (d - c + 1), dt, peak_kib / 1024


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--one":  # one measurement in a fresh process
        points, dt, mb = measure(sys.argv[2])
        print(f"sweep stream ({sys.argv[2]}): {points:,} points in {dt:.1f} s, peak {mb:.0f} MB (target < 500 MB)")
        return
    for fmt in ("csv", "json"):
        subprocess.run([sys.executable, __file__, "--one", fmt], check=True)


if __name__ == "__main__":
    main()
