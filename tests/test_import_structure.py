"""The numbers of an imported network do not depend on how its author
nested modules (issue 19, item 3): one network written three ways — flat
attributes called in turn, one ``nn.Sequential``, nested blocks — gives the
same stages, transient, regular worst case and every total.

The expectations come from the live module: forward hooks record every
leaf module's output; comem's paper transient (the largest stage output)
must be the largest of them — not the last output, as when an imported
model's only stage was its one top-level ``nn.Sequential``.
"""
import pytest

pytestmark = pytest.mark.validation

SHAPE = (3, 8, 32, 32)


def _c3d_layers(nn):
    return [nn.Conv3d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool3d((1, 2, 2)),
            nn.Conv3d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2),
            nn.Conv3d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2),
            nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(32, 10)]


def c3d(way):
    from torch import nn

    layers = _c3d_layers(nn)
    if way == "sequential":   # the C3D: every convolution in one nn.Sequential
        return nn.Sequential(*layers)
    if way == "nested":
        return nn.Sequential(nn.Sequential(nn.Sequential(*layers[:3]), nn.Sequential(*layers[3:6])),
                             nn.Sequential(*layers[6:9]), nn.Sequential(nn.Sequential(*layers[9:11]), layers[11]))

    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            for i, layer in enumerate(layers):
                setattr(self, f"l{i}", layer)

        def forward(self, x):
            for i in range(len(layers)):
                x = getattr(self, f"l{i}")(x)
            return x

    return Flat()


def resnet(way):
    """A small ResNet: stem, two stages of residual blocks (the first of each
    strided, with a projection shortcut), a head."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.a = nn.Sequential(nn.Conv3d(cin, cout, 3, (1, stride, stride), 1, bias=False), nn.BatchNorm3d(cout),
                                   nn.ReLU(), nn.Conv3d(cout, cout, (3, 1, 1), padding=(1, 0, 0), bias=False),
                                   nn.BatchNorm3d(cout))
            self.proj = None if cin == cout and stride == 1 else nn.Sequential(
                nn.Conv3d(cin, cout, 1, (1, stride, stride), bias=False), nn.BatchNorm3d(cout))
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.a(x) + (x if self.proj is None else self.proj(x)))

    torch.manual_seed(0)
    stem = [nn.Conv3d(3, 8, (1, 3, 3), (1, 2, 2), (0, 1, 1)), nn.BatchNorm3d(8), nn.ReLU()]
    stages = [[Block(8, 8, 1), Block(8, 8, 1)], [Block(8, 16, 2), Block(16, 16, 1)]]
    head = [nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(16, 10)]
    if way == "sequential":
        return nn.Sequential(*stem, *stages[0], *stages[1], *head)
    if way == "nested":
        return nn.Sequential(nn.Sequential(*stem), nn.Sequential(nn.Sequential(*stages[0]), nn.Sequential(*stages[1])),
                             nn.Sequential(*head))
    modules = stem + stages[0] + stages[1] + head

    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.parts = nn.ModuleList(modules)

        def forward(self, x):
            for m in self.parts:
                x = m(x)
            return x

    return Flat()


def _hooked_outputs(model, shape):
    """Every leaf module's output (numel, frame floats), in the order run."""
    import torch

    seen = []

    def hook(m, i, o):
        frame = o.numel() // o.shape[2] if o.dim() == 5 else o.numel()
        seen.append((type(m).__name__, o.numel(), frame))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    model.eval()
    with torch.no_grad():
        model(torch.randn((1,) + shape))
    for h in handles:
        h.remove()
    return seen


QUANTITIES = ("params", "ops_per_clip", "ops_per_step", "state_floats", "transient_floats",
              "regular_transient_floats", "total_floats", "regular_total_floats")


def _numbers(spec, **kw):
    import comem

    r = comem.analyze(spec, **kw)
    return {q: getattr(r, q) for q in QUANTITIES}, r


@pytest.mark.parametrize("make", [c3d, resnet], ids=["c3d", "resnet"])
def test_one_network_three_ways_same_numbers(make):
    pytest.importorskip("torch")
    import comem

    specs = {way: comem.from_module(make(way), SHAPE) for way in ("flat", "sequential", "nested")}
    for knobs in ({}, {"transient": "largest-map"}, {"transient": "liveness"}):
        got = {way: _numbers(s, knobs=knobs)[0] for way, s in specs.items()}
        assert got["flat"] == got["sequential"] == got["nested"], (knobs, got)
    got = {way: _numbers(s, profile="continual-inference")[0] for way, s in specs.items()}
    assert got["flat"] == got["sequential"] == got["nested"], got
    # the same stages, and rows in the order the network runs
    shapes = {way: [len(st.layers) for st in s.stages] for way, s in specs.items()}
    assert shapes["flat"] == shapes["sequential"] == shapes["nested"], shapes


@pytest.mark.parametrize("make", [c3d, resnet], ids=["c3d", "resnet"])
@pytest.mark.parametrize("way", ["flat", "sequential", "nested"])
def test_transient_is_the_largest_map_the_module_makes(make, way):
    pytest.importorskip("torch")
    import comem

    model = make(way)
    outs = _hooked_outputs(model, SHAPE)
    n, r = _numbers(comem.from_module(model, SHAPE))
    # every layer that changes the data's shape starts a stage, so the largest stage output is
    # the largest map any layer makes (ReLU and batch norm keep their input's size)
    assert n["regular_transient_floats"] == max(numel for _, numel, _ in outs)
    assert n["transient_floats"] == max(frame for _, _, frame in outs)
    assert n["regular_transient_floats"] > outs[-1][1]  # not the logits


def test_rows_follow_the_network():
    """The breakdown's layer rows are the leaf modules in the order they run."""
    pytest.importorskip("torch")
    import comem

    model = c3d("nested")
    ran = [name for name, _, _ in _hooked_outputs(model, SHAPE)]
    r = comem.analyze(comem.from_module(model, SHAPE))
    kinds = {"Conv3d": "conv", "ReLU": "relu", "MaxPool3d": "maxpool", "AdaptiveAvgPool3d": "avgpool",
             "Flatten": "flatten", "Linear": "linear"}
    assert [row.path.rsplit(".", 1)[-1].rstrip("_0123456789") for row in r.rows] == [kinds[n] for n in ran]
