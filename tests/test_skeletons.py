"""ST-GCN, AGCN and S-TR (and their ``*`` variants, stride one and no
padding) against reference PyTorch models written after
continual-skeletons (tests/skeletons.py), and the published numbers of
Hedegaard, Heidari & Iosifidis, "Continual Spatio-Temporal Graph
Convolutional Networks" (Pattern Recognition 2023), Table II.

Independent sources: ptflops and fvcore run on the regular models, the continual
models' ``get_state()``, ``delay`` and ``receptive_field``, the modules'
parameters, and the paper's printed numbers (to their rounding).
"""
import sys
from pathlib import Path

import pytest

import comem

torch = pytest.importorskip("torch")
co = pytest.importorskip("continual")
ptflops = pytest.importorskip("ptflops")
sys.path.insert(0, str(Path(__file__).parent))
import skeletons as sk  # noqa: E402

MODELS = [("st-gcn", False), ("st-gcn", True), ("agcn", False), ("agcn", True), ("s-tr", False), ("s-tr", True)]


def spec_name(kind, star):
    return kind + ("-star" if star else "")


def state_floats(model):
    total = 0
    for m in model.modules():
        if isinstance(m, co.CoModule) and hasattr(m, "get_state") and \
                not any(isinstance(c, co.CoModule) for c in m.modules() if c is not m):
            s = m.get_state()
            if s:
                total += sum(t.numel() for t in s if isinstance(t, torch.Tensor) and t.is_floating_point())
    return total


@pytest.mark.parametrize("kind,star", MODELS)
@pytest.mark.parametrize("joints", [25, 18])
def test_regular_model_params_and_ptflops(kind, star, joints):
    T = 100 if star else 64
    torch.manual_seed(0)
    m = sk.Regular(kind, V=joints, star=star).eval()
    with torch.no_grad():
        macs, params = ptflops.get_model_complexity_info(m, (3, T, joints, 2), as_strings=False,
                                                         print_per_layer_stat=False, backend="pytorch",
                                                         backend_specific_config={"count_functional": False})
    r = comem.analyze(spec_name(kind, star), clip=T, size=joints)
    assert (r.ops_per_clip, r.params) == (macs, params)
    if joints == 25:  # fvcore counts the joint products (aten::matmul) too
        fvcore = pytest.importorskip("fvcore.nn")
        f = fvcore.FlopCountAnalysis(m, (torch.randn(1, 3, T, joints, 2),))
        f.unsupported_ops_warnings(False)
        f.uncalled_modules_warnings(False)
        assert comem.analyze(spec_name(kind, star), clip=T, size=joints, convention="fvcore").ops_per_clip == f.total()


@pytest.mark.parametrize("kind,star", MODELS)
def test_continual_model_state_delay_and_receptive_field(kind, star):
    """The head pool as continual-skeletons' CoModelBase sizes and pads it
    for the clip (tests/skeletons.py head_pool): CoST-GCN's delay is T − 4
    (its pool pads 19 of its ceil(T/4) frames), not the T + 72 of an
    unpadded pool."""
    T = 100
    r = comem.analyze(spec_name(kind, star), clip=T, profile="continual-inference")
    m = sk.continual(kind, star=star, T=T).eval()
    x = torch.randn(2, 3, r.receptive_field + 8, 25)   # two bodies, folded into the batch
    with torch.no_grad():
        for t in range(x.shape[2]):
            m.forward_step(x[:, :, t])
    assert r.state_floats == state_floats(m)
    assert (r.delay, r.receptive_field) == (m.delay, m.receptive_field)
    assert r.temporal_stride == (1 if star else 4)
    assert r.delay == (T - 4 if not star else T - 1)   # by hand: 76 + (25 - 1 - 19) x 4; 80 + (20 - 1)


@pytest.mark.parametrize("T", [300, 64, 160])
def test_cost_gcn_delay_at_other_clips(T):
    """Delay and receptive field of the whole CoST-GCN as continual-inference
    composes them (no stepping), at the paper's 300 frames and others."""
    m = sk.continual("st-gcn", T=T)
    r = comem.analyze("st-gcn", clip=T, profile="continual-inference")
    assert (r.delay, r.receptive_field) == (m.delay, m.receptive_field)


def test_repeated_block_that_shrinks_time_is_refused(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[model]\nname = "s"\ndims = 2\nclip = 40\nsize = 5\nin_channels = 2\n'
                    '[blocks.b]\ntype = "sequence"\nlayers = [ { kind = "conv", out = 2, kernel = [3, 1] } ]\n'
                    '[[stages]]\nname = "a"\nblock = "b"\nrepeat = 3\n')
    with pytest.raises(comem.ComemError, match="repeated block must keep its frames"):
        comem.analyze(str(spec))


# Table II (NTU RGB+D 60, joints): params (M), FLOPs (G) per prediction
TABLE_II = [("st-gcn", False, 3.14, 16.73), ("st-gcn-star", False, 3.14, 36.90), ("st-gcn", True, 3.14, 0.27),
            ("st-gcn-star", True, 3.14, 0.16), ("agcn", False, 3.47, 18.69), ("agcn-star", False, 3.47, 40.87),
            ("agcn", True, 3.47, 0.30), ("agcn-star", True, 3.47, 0.17), ("s-tr", False, 3.09, 16.14),
            ("s-tr-star", False, 3.09, 35.65), ("s-tr-star", True, 3.09, 0.15)]


@pytest.mark.parametrize("model,continual,params_m,gflops", TABLE_II)
def test_table_ii_reproduced(model, continual, params_m, gflops):
    from comem.reproduce.beyond import per_prediction

    r = comem.analyze(model)
    assert round(r.params / 1e6, 2) == params_m
    got = per_prediction(r) if continual else r.ops_per_clip
    assert round(float(got) / 1e9, 2) == gflops


def test_table_ii_cos_tr_counts_strided_convolutions_on_emitted_frames_only():
    """Table II prints CoS-TR 0.22 G: comem's count with the strided temporal
    convolutions working on emitted frames only; the every-frame count that
    reproduces CoST-GCN's 0.27 and CoAGCN's 0.30 gives 0.26."""
    from comem.reproduce.beyond import emitted_only, per_prediction

    r = comem.analyze("s-tr")
    assert round(float(emitted_only(r)) / 1e9, 2) == 0.22
    assert round(float(per_prediction(r)) / 1e9, 2) == 0.26
    st = comem.analyze("st-gcn")
    assert round(float(emitted_only(st)) / 1e9, 2) == 0.22 != 0.27


def test_kinetics_table_v():
    """Table V (Kinetics-Skeleton, 18 joints, 400 classes): ST-GCN 12.04,
    AGCN 13.45, S-TR 11.62 G; CoST-GCN* 0.11."""
    from comem.reproduce.beyond import per_prediction

    for model, g in (("st-gcn", 12.04), ("agcn", 13.45), ("s-tr", 11.62)):
        assert round(comem.analyze(model, size=18, params={"classes": 400}).ops_per_clip / 1e9, 2) == g
    r = comem.analyze("st-gcn-star", size=18, params={"classes": 400})
    assert round(float(per_prediction(r)) / 1e9, 2) == 0.11


@pytest.mark.parametrize("model", ["st-gcn-star", "s-tr"])
def test_validate_passes_on_one_body(model):
    from comem.pytorch.validate import validate

    v = validate(model, clip=100 if model.endswith("star") else 40, size=(25, 1))
    assert v.ok, [c for c in v.checks if not c.ok]


@pytest.mark.parametrize("kind,star", MODELS)
def test_regular_eager_activations_equal_a_live_tensor_tracker(kind, star):
    """comem's regular activation peak (each graph unit's and spatial
    attention's temporaries from their forward's locals) equals the live
    tensors of the reference forward on the CPU, but for one tensor the
    reference keeps beside it: its input reshaped for the blocks
    (``x = self.layers(x)`` holds it), 3·T·V·M floats."""
    from comem.pytorch.instrument import LiveTensorTracker, _storages_of

    T = 100 if star else 64
    torch.set_num_threads(1)
    m = sk.Regular(kind, star=star).eval()
    x = torch.randn(1, 3, T, 25, 2)
    tracker = LiveTensorTracker(_storages_of(m, [x]))
    with torch.no_grad(), tracker:
        m(x)
    r = comem.analyze(spec_name(kind, star), clip=T, runtime="pytorch", device="cpu")
    assert r.runtime.regular.activations + 3 * T * 25 * 2 * 4 == tracker.peak


def test_table_ii_memory_of_the_regular_models():
    """Table II's Max mem. (MB, read as MiB as for the CoX3D paper's Table 1):
    ST-GCN 45.3, ST-GCN* 72.6, AGCN 48.4, AGCN* 76.4, S-TR 74.2, S-TR* 111.5."""
    for model, mib in (("st-gcn", 45.3), ("st-gcn-star", 72.6), ("agcn", 48.4), ("agcn-star", 76.4),
                       ("s-tr", 74.2), ("s-tr-star", 111.5)):
        r = comem.analyze(model, runtime="pytorch", device="cuda")
        assert abs(r.runtime.regular.total / 2 ** 20 - mib) / mib < 0.05, model


@pytest.mark.parametrize("kind,star", MODELS)
@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_weights_held_equal_the_live_modules_parameters_and_buffers(kind, star, dtype):
    """What a device holds for the module: its trainable parameters (the
    params ptflops and Table II count), its frozen ones (the graph
    convolutions' fixed adjacency, ``requires_grad=False``) and its buffers
    (batch norms' running statistics, float, and ``num_batches_tracked``,
    int64) — the live module's ``parameters()`` and ``buffers()``."""
    m = sk.Regular(kind, star=star)
    if dtype == "fp16":
        m = m.half()
    params = list(m.parameters())
    live = {"trainable": sum(p.numel() * p.element_size() for p in params if p.requires_grad),
            "frozen": sum(p.numel() * p.element_size() for p in params if not p.requires_grad),
            "buffers": sum(b.numel() * b.element_size() for b in m.buffers())}
    live["total"] = sum(live.values())
    r = comem.analyze(spec_name(kind, star), clip=100 if star else 64, dtype=dtype)
    assert r.weights == live
    assert r.weights_bytes == live["total"] and r.params == sum(p.numel() for p in params if p.requires_grad)
    assert live["frozen"] > 0 and live["buffers"] > 0    # every model's graph convolutions hold a fixed A
    assert r.total_bytes_incl_weights == r.total_bytes + live["total"]
    assert r.summary()["weights"] == live
