"""pytorchvideo beside a torch that torchvision's compiled ops cannot load with:
its heads import ``torchvision``/``torchvision.ops`` only for names, so the tests
put a stub of them in ``sys.modules`` (never comem itself)."""
import contextlib
import sys
import types

import pytest

_NAMES = ("torchvision", "torchvision.ops", "torchvision.transforms")


@contextlib.contextmanager
def pytorchvideo_importable():
    """Skip without torch, pytorchvideo, ptflops or fvcore; otherwise stub
    torchvision (if it is not there), pin torch to one thread, and restore
    ``sys.modules`` afterwards."""
    for name in ("torch", "pytorchvideo", "ptflops", "fvcore"):
        pytest.importorskip(name)
    saved = {k: sys.modules.get(k) for k in _NAMES}
    if "torchvision" not in sys.modules:
        tv, ops, tr = (types.ModuleType(n) for n in _NAMES)
        stub = type("TorchvisionStub", (), {})
        ops.RoIAlign = ops.DeformConv2d = stub
        ops.roi_align = None
        tv.ops, tv.transforms = ops, tr
        sys.modules.update(dict(zip(_NAMES, (tv, ops, tr))))
    import torch

    torch.set_num_threads(1)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
