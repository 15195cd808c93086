"""Predicted vs measured on this machine: peak allocated bytes (comem.model.runtime
against a real eager run) and throughput (the roofline for 'this' machine,
calibrated by a micro-benchmark, against `comem bench`), one CPU thread.

Run:  python benchmarks/device.py [runs]
"""
from __future__ import annotations

import sys


def main(runs: int = 5):
    from comem.device.bench import bench

    cases = [("x3d-xs", None, None), ("x3d-s", None, 112), ("x3d-m", None, 112), ("i3d-r50", 8, 112),
             ("slow-8x8-r50", 8, 112)]
    print(f"{'model':14s} {'part':10s} {'peak measured':>15s} {'peak predicted':>15s} {'per s measured':>15s} "
          f"{'per s predicted':>16s}")
    for model, clip, size in cases:
        d = bench(model, "cpu", None, None, "fp32", runs, clip, size, threads=1)
        for part, unit in (("regular", "clips_per_s"), ("continual", "frames_per_s")):
            m, p = d.get(part), d["predicted"].get(part)
            if not m:
                continue
            print(f"{model:14s} {part:10s} {m['peak_allocated_bytes']:15,d} {p['peak_allocated_bytes']:15,d} "
                  f"{m[unit]:15.2f} {p.get(unit, float('nan')):16.2f}")
        if "scratch_bytes" in d["regular"]:
            print(f"{'':14s} {'':10s} kernels' scratch beyond the live tensors (CPU allocator): "
                  f"{d['regular']['scratch_bytes']:,} bytes")
    print("predicted vs measured: peak allocated exact up to co.Delay(0)'s int64 indices; throughput: the roofline "
          "(an upper bound, calibrated peaks of this machine at all its threads vs one measured thread)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
