"""A roofline prediction of speed: the regular model's clip and the continual
model's frame on a device (``comem predict``, ``comem paper``).

Per layer, from the analysis (``continual-inference`` accounting, the
arithmetic the runtime executes — the ``executed`` convention):

* **work**: ``2 × MACs + additions`` of convolutions and linear layers as
  executed (a continual convolution's zero taps and partial-sum additions
  included); elementwise layers are charged for their bytes only;
* **bytes moved**: weights read (once per batch), the input read and the
  output written (per stream), and for a continual step the state and the
  library's copies (``LayerKind.state_traffic``: a convolution's stored
  partials gathered and written back, a pool's window, a delay's frame);
* **time** = ``max(work / (peak · efficiency_compute), bytes / (bandwidth ·
  efficiency_memory)) + overhead`` (per layer: Python, dispatch, launch);
  a layer is *memory-bound* when its bytes term is the larger.

A step's time averages layers behind a temporal stride over the frames they
skip; the host→device transfer of the input (Appendix B's protocol) is added
for a discrete GPU.  Device figures, efficiencies and overheads — each with
its source or marked as an assumption — live in ``specs/devices/devices.toml``;
``this`` is the machine comem runs on, calibrated by a short micro-benchmark.
The prediction is a model, not a measurement: ``comem paper`` prints it
beside Table 1's throughput with its error, and ``comem bench`` measures.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from comem.errors import ComemError, suggest
from comem.core.vocab import Role



def load_devices() -> dict:
    from comem.spec.data import devices

    return devices()


def get_device(name) -> dict:
    """A device of the table by name, ``this`` (calibrated), or a dict of the
    table's fields (``peak_gflops``, ``bandwidth_gbs``, efficiencies...)."""
    if isinstance(name, dict):
        required = ("peak_gflops", "bandwidth_gbs", "efficiency_compute", "efficiency_memory", "overhead_us")
        missing = [k for k in required if k not in name]
        if missing:
            raise ComemError(f"a device needs {', '.join(missing)}")
        return {"name": "custom", "title": "custom device", "memory_gb": 0.0, "transfer_gbs": 0, **name}
    devices = load_devices()
    key = str(name).strip().lower()
    if key == "this":
        # never calibrated on the fly from one noisy reading: this machine is the latency model's
        raise ComemError("the datasheet roofline has no 'this' machine: its speed comes from a calibrated profile; "
                         "run `comem calibrate`, then `comem predict MODEL` (comem.device.latency)")
    if key not in devices:
        names = list(devices) + ["this"]
        raise ComemError(f"unknown device {name!r}{suggest(key, names)}; choose one of: {', '.join(names)}")
    return dict(devices[key], name=key)


_THIS: dict | None = None


def calibrate_this_machine(seconds: float = 0.5) -> dict:
    """Peak compute and bandwidth of this machine's CPU (all its threads), read
    by a short numpy micro-benchmark: a float32 matrix product and a large
    copy; the per-layer overhead by timing a tiny PyTorch op when torch is
    installed.  Efficiencies are 1: the peaks are what was reached."""
    global _THIS
    if _THIS is not None:
        return _THIS
    import os
    import time

    import numpy as np

    n = 512
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds / 2:
        a @ a
        reps += 1
    gflops = 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9
    big = np.ones(16 * 2 ** 20, dtype=np.float32)
    out = np.empty_like(big)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds / 2:
        np.copyto(out, big)
        reps += 1
    gbs = 2 * big.nbytes * reps / (time.perf_counter() - t0) / 1e9
    overhead = 20.0
    try:
        import torch

        x = torch.ones(8)
        t0 = time.perf_counter()
        for _ in range(2000):
            torch.relu(x)
        overhead = (time.perf_counter() - t0) / 2000 * 1e6 * 3   # a layer: a few ops
    except ImportError:
        pass
    _THIS = {"name": "this", "title": f"this machine ({os.cpu_count()} CPU threads), calibrated",
             "memory_gb": _memory_gb(), "peak_gflops": {"fp32": gflops}, "bandwidth_gbs": gbs,
             "efficiency_compute": 1.0, "efficiency_memory": 1.0, "overhead_us": overhead, "transfer_gbs": 0,
             "sources": [f"micro-benchmark: float32 {n}x{n} matmul {gflops:.1f} GFLOP/s, 64 MiB copy "
                         f"{gbs:.1f} GB/s, a tiny op {overhead / 3:.1f} us"]}
    return _THIS


def _memory_gb() -> float:
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return 0.0


@dataclass
class LayerTime:
    path: str
    kind: str
    flops: int
    bytes: int
    seconds: float
    bound: str          # "compute" | "memory"
    rate: int = 1


@dataclass
class Prediction:
    model: str
    device: str
    title: str
    dtype: str
    batch: int
    clip: int
    regular: dict = field(default_factory=dict)     # seconds, per_s (clips/s), layers
    continual: dict | None = None                   # seconds (full step), per_s (frames/s), layers

    def as_dict(self) -> dict:
        def part(p):
            if p is None:
                return None
            return {k: v for k, v in p.items() if k != "layers"} | {
                "memory_bound_layers": sum(1 for lt in p["layers"] if lt.bound == "memory"),
                "layers": len(p["layers"])}

        out = {"model": self.model, "device": self.device, "dtype": self.dtype, "batch": self.batch,
               "clip": self.clip, "regular": part(self.regular), "continual": part(self.continual)}
        if self.continual is not None:
            out["speedup"] = self.continual["per_s"] / self.regular["per_s"]
        return out


def _peak(dev: dict, dtype: str) -> float:
    peaks = dev["peak_gflops"]
    return peaks.get(dtype, peaks["fp32"]) * 1e9


def predict(model, device: str = "rtx2080ti", batch: int = 1, dtype: str | None = None, clip=None, size=None,
            params=None) -> Prediction:
    """Latency and throughput of the regular clip and the continual frame."""
    from comem.api import analyze, prepare
    from comem.accounting.conventions import weigh
    from comem.core.units import dtype_bytes

    dev = get_device(device)
    dname, b = dtype_bytes(dtype or dev.get("dtype", "fp32"))  # the device's default precision (its data)
    continual = prepare(model, params=params).continual
    r = analyze(model, clip=clip, size=size, dtype=dname, params=params, batch=batch,
                profile="continual-inference" if continual else None)
    peak = _peak(dev, dname) * dev["efficiency_compute"]
    bw = dev["bandwidth_gbs"] * 1e9 * dev["efficiency_memory"]
    over = dev["overhead_us"] * 1e-6
    from comem.layers.base import Env

    knobs = Env(r.knobs, r.rows[0].x if r.rows else None, b, batch)   # the first layer reads the model input

    def layer_time(row, work, frames_in, frames_out, traffic):
        macs = weigh({k: v for k, v in work.items() if k.endswith("mac") or "mac_" in k}, "executed")
        adds = weigh(work, "executed") - macs
        flops = (2 * macs + adds) * batch
        nbytes = (row.params + (frames_in + frames_out + traffic) * batch) * b
        tc, tm = flops / peak, nbytes / bw
        return LayerTime(row.path, row.kind.name, int(flops), int(nbytes), max(tc, tm) + over,
                         "memory" if tm > tc else "compute", row.rate)

    frame = r.rows[0].x.frame if r.rows else 0
    transfer = dev.get("transfer_gbs") or 0
    reg_rows = [row for row in r.rows if row.role != Role.ALIGNMENT]   # alignment delays exist per step only
    reg_layers = [layer_time(row, row.work_clip, row.x.numel, row.y.numel, 0) for row in reg_rows]
    t_reg = sum(lt.seconds * _mult(row) for lt, row in zip(reg_layers, reg_rows))
    if transfer:
        t_reg += frame * r.clip * batch * b / (transfer * 1e9)
    pred = Prediction(r.model, dev["name"], dev["title"], dname, batch, r.clip)
    pred.regular = {"seconds": t_reg, "per_s": batch / t_reg, "layers": reg_layers}
    if continual:
        layers = [layer_time(row, row.work_step, row.x.frame, row.y.frame,
                             row.kind.state_traffic(row.cfg, row.x, row.y, knobs)) for row in r.rows]
        full = sum(lt.seconds * _mult(row) for lt, row in zip(layers, r.rows))
        avg = sum(Fraction(lt.seconds).limit_denominator(10 ** 12) * _mult(row) / row.rate
                  for lt, row in zip(layers, r.rows))
        avg = float(avg)
        if transfer:
            full += frame * batch * b / (transfer * 1e9)
            avg += frame * batch * b / (transfer * 1e9)
        pred.continual = {"seconds": full, "seconds_per_frame": avg, "per_s": batch / avg, "layers": layers}
    return pred


def _mult(row):
    return int(row.multiplicity)
