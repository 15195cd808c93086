"""Per-clip counts of regular models built from the specs, measured by ptflops
and fvcore themselves, against comem's conventions — to the integer."""
import logging
import warnings

import pytest

from comem import api
from comem.accounting.conventions import weigh
from comem.accounting.profiles import get_profile
from comem.model.walk import evaluate_graph

pytestmark = pytest.mark.validation


def _extra():
    """Skip without the validate extra (a failure under COMEM_REQUIRE_VALIDATION=1)."""
    for name in ("torch", "continual", "ptflops", "fvcore"):
        pytest.importorskip(name)


def _measure(model, clip, size):
    _extra()
    import torch

    from comem.pytorch.build import build_regular
    from comem.pytorch.instrument import measure_regular

    spec = api.resolve(model)
    graph = api.get_graph(spec)
    t = evaluate_graph(graph, clip, size, get_profile("paper"), continual=False)
    reg, rmap = build_regular(graph, clip, size, get_profile("paper").as_dict())
    m = measure_regular(reg, rmap, graph.in_channels, clip, size)
    fv = None
    try:
        from fvcore.nn import FlopCountAnalysis
    except ImportError:  # pragma: no cover - fvcore is part of the validate extra
        FlopCountAnalysis = None
    if FlopCountAnalysis is not None:
        logging.disable(logging.WARNING)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            fa = FlopCountAnalysis(reg, (torch.randn(1, graph.in_channels, clip, size, size),))
            fa.unsupported_ops_warnings(False)
            fa.uncalled_modules_warnings(False)
            fv = fa.total()
        logging.disable(logging.NOTSET)
    return t, m, fv


SMALL = [("x3d-m", 4, 64), ("i3d-r50", 8, 64), ("slow-8x8-r50", 4, 64), ("r2plus1d-18", 8, 64),
         ("r2plus1d-18", 16, 40), ("slowfast-8x8-r50", 32, 64), ("slowfast-4x16-r50", 16, 96), ("x3d-l", 3, 70)]


@pytest.mark.parametrize("model,clip,size", SMALL)
def test_ptflops_and_fvcore_on_built_models(model, clip, size):
    t, m, fv = _measure(model, clip, size)
    assert weigh(t.work_clip, "ptflops") == m.ptflops_clip
    assert t.params == m.ptflops_params
    if fv is not None:
        assert weigh(t.work_clip, "fvcore") == fv


@pytest.mark.slow
@pytest.mark.parametrize("model", ["r2plus1d-18", "slowfast-8x8-r50", "slowfast-4x16-r50"])
def test_default_configurations_ptflops(model):
    spec = api.resolve(model)
    t, m, fv = _measure(model, spec.clip, spec.size)
    assert weigh(t.work_clip, "ptflops") == m.ptflops_clip
    if fv is not None:
        assert weigh(t.work_clip, "fvcore") == fv


def test_forward_stepping_fires_hooks_twice():
    """The library behaviour behind the published per-frame counts."""
    _extra()
    import continual as co
    import torch
    from torch import nn

    bn = co.forward_stepping(nn.BatchNorm3d(4))
    calls = []
    bn.register_forward_hook(lambda mod, i, o: calls.append(1))
    seq = co.Sequential(co.Conv3d(4, 4, (3, 1, 1), padding=(1, 0, 0)), bn).eval()
    with torch.no_grad():
        seq.forward_steps(torch.randn(1, 4, 4, 5, 5))
        calls.clear()
        with co.call_mode("forward_step"):
            seq(torch.randn(1, 4, 5, 5))
    assert len(calls) == 2
