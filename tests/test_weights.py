"""The weights a device holds: trainable parameters (``params``: ptflops'
and the papers' count), frozen parameters and buffers, each layer kind's
``held`` counts — against the live modules' ``parameters()`` and
``buffers()`` (the authors' GCNs in tests/test_skeletons.py; here the
PyTorch modules comem builds for its specs, whose parameters and buffers
are PyTorch's own: nn.BatchNorm3d's running statistics and int64
``num_batches_tracked``) and against the runtime model's per-tensor list.
"""
import pytest

import comem

BUILTINS = ["x3d-xs", "x3d-m", "r2plus1d-18", "slow-8x8-r50", "slowfast-8x8-r50", "i3d-r50", "movinet-a0",
            "st-gcn", "agcn", "s-tr-star", "oadtr", "cooadtr-b1"]


@pytest.mark.parametrize("model", BUILTINS)
def test_weights_are_what_the_runtime_model_allocates_for_the_modules(model):
    """The split adds up to every parameter and buffer tensor the runtime
    model (``--runtime pytorch``) counts for the regular model, exactly."""
    r = comem.analyze(model, runtime="pytorch", device="cpu")
    w = r.weights
    assert w["total"] == w["trainable"] + w["frozen"] + w["buffers"] == r.weights_bytes
    assert w["trainable"] == r.params * 4
    assert r.runtime.regular.weights == w["total"]


@pytest.mark.validation
@pytest.mark.parametrize("model,clip,size", [("x3d-xs", 4, 32), ("r2plus1d-18", 8, 32), ("movinet-a0", 4, 32)])
def test_weights_equal_the_live_modules(model, clip, size):
    pytest.importorskip("torch")
    from comem.api import prepare
    from comem.pytorch.build import build_regular

    s = prepare(model)
    m, _ = build_regular(s.graph, clip, size or s.spec.size, s.profile.as_dict())
    params = list(m.parameters())
    live = {"trainable": sum(p.numel() * p.element_size() for p in params if p.requires_grad),
            "frozen": sum(p.numel() * p.element_size() for p in params if not p.requires_grad),
            "buffers": sum(b.numel() * b.element_size() for b in m.buffers())}
    live["total"] = sum(live.values())
    r = comem.analyze(model, clip=clip, size=size)   # size None: the spec's (a 1D model has none)
    assert r.weights == live
    assert r.params == sum(p.numel() for p in params if p.requires_grad)


def test_weights_split_in_json_and_table(cli):
    import json

    rc, out, err = cli("st-gcn", "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["weights_bytes"] == d["weights"]["total"] > d["params"] * 4
    assert d["total_bytes_incl_weights"] == d["total_bytes"] + d["weights"]["total"]
    rc, out, err = cli("st-gcn")
    line = next(t for t in out.splitlines() if t.startswith("weights"))
    assert "trainable" in line and "frozen" in line and "buffers" in line
