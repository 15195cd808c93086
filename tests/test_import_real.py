"""comem.from_module on model code written elsewhere: pytorchvideo's model
builders (the X3D, Slow, SlowFast, CSN, R(2+1)D and MViT most people run),
at the settings of pytorchvideo's hub entries (``pytorchvideo/models/hub``)
and small inputs.

Every number asserted is measured on the very module that was imported:
trainable parameters counted by torch, per-clip operations by ptflops 0.7
(``backend="pytorch"``, ``count_functional=False``) and fvcore, run on it.
torchvision cannot load here; pytorchvideo's heads import it, so the tests
put a stub of ``torchvision``/``torchvision.ops`` in ``sys.modules``.
"""
import sys
import types

import pytest
from pytorchvideo_stub import pytorchvideo_importable

pytestmark = pytest.mark.validation


@pytest.fixture(scope="module")
def ptv():
    with pytorchvideo_importable():
        from pytorchvideo.models import csn, r2plus1d, resnet, slowfast, vision_transformers, x3d

        yield types.SimpleNamespace(x3d=x3d, resnet=resnet, slowfast=slowfast, csn=csn, r2plus1d=r2plus1d,
                                    vit=vision_transformers)


def _check(module, shape):
    """Import ``module``; return comem's and the instruments' numbers."""
    import comem
    from comem.pytorch.importer.check import compare

    spec = comem.from_module(module, shape)
    rows = compare(module, shape, spec)
    assert {q for q, _, _ in rows} >= {"params", "per-clip ops (ptflops)", "per-clip ops (fvcore)"}
    return spec, rows


def _x3d(ptv, clip, crop, depth, **kw):
    # pytorchvideo hub x3d_xs/s/m/l: create_x3d(input_clip_length, input_crop_size, depth_factor);
    # the head pool's kernel is computed with numpy from the clip and crop
    return ptv.x3d.create_x3d(input_clip_length=clip, input_crop_size=crop, depth_factor=depth, model_num_class=10,
                              head_dim_out=128, **kw)


# (name, hub depth factor, clip, crop, input shape): XS, S, M, L at small sizes; one non-square input
X3D = [("xs", 2.2, 4, 64, (3, 4, 64, 64)), ("s", 2.2, 6, 64, (3, 6, 64, 64)), ("m", 2.2, 8, 64, (3, 8, 64, 64)),
       ("m-wide", 2.2, 8, 64, (3, 8, 64, 96)), ("l", 5.0, 4, 32, (3, 4, 32, 32))]


@pytest.mark.parametrize("name,depth,clip,crop,shape", X3D, ids=[x[0] for x in X3D])
def test_pytorchvideo_x3d(ptv, name, depth, clip, crop, shape):
    m = _x3d(ptv, clip, crop, depth)
    kernel = m.blocks[-1].pool.pool.kernel_size
    assert any(type(k).__module__ == "numpy" for k in kernel)  # the construct the issue met
    spec, rows = _check(m, shape)
    assert [r for r in rows if r[1] != r[2]] == [], rows
    assert spec.continual  # a chain of residual blocks: it has a continual form


def test_pytorchvideo_slow_r50(ptv):
    # hub slow_r50: create_resnet(stem_conv_kernel_size=(1, 7, 7), head_pool_kernel_size=(8, 7, 7), depth 50)
    m = ptv.resnet.create_resnet(model_depth=50, model_num_class=10, stem_conv_kernel_size=(1, 7, 7),
                                 head_pool_kernel_size=(8, 2, 2))
    _, rows = _check(m, (3, 8, 64, 64))
    assert [r for r in rows if r[1] != r[2]] == [], rows


def test_pytorchvideo_slowfast_r50(ptv):
    """Two pathways passed as a list between its blocks, fed from one clip as
    pytorchvideo's PackPathway transform does (slow: every α-th frame)."""
    import comem

    m = ptv.slowfast.create_slowfast(model_depth=50, model_num_class=10, slowfast_fusion_conv_kernel_size=(7, 1, 1),
                                     head_pool_kernel_sizes=((4, 2, 2), (16, 2, 2)))
    spec, rows = _check(m, (3, 16, 64, 64))
    assert [r for r in rows if r[1] != r[2]] == [], rows
    assert not spec.continual  # lateral connections fork and merge outside blocks
    # the α found is the one the model's fusion takes, and naming it gives the same spec
    again = comem.from_module(m, (3, 16, 64, 64), pathways=(4, 1))
    assert comem.analyze(again).ops_per_clip == comem.analyze(spec).ops_per_clip


def test_pytorchvideo_csn_r101(ptv):
    # hub csn_r101: create_csn(model_depth=101, stem_pool=nn.MaxPool3d, head_pool_kernel_size=(4, 7, 7))
    import torch

    m = ptv.csn.create_csn(model_depth=101, model_num_class=10, stem_pool=torch.nn.MaxPool3d,
                           head_pool_kernel_size=(1, 2, 2))
    _, rows = _check(m, (3, 8, 64, 64))
    assert [r for r in rows if r[1] != r[2]] == [], rows


def test_pytorchvideo_r2plus1d_r50(ptv):
    # hub r2plus1d_r50: create_r2plus1d(dropout_rate=0.5, head_pool_kernel_size=(2, 7, 7)) at 16 frames
    m = ptv.r2plus1d.create_r2plus1d(model_num_class=10, dropout_rate=0.5, head_pool_kernel_size=(2, 2, 2))
    _, rows = _check(m, (3, 8, 64, 64))
    assert [r for r in rows if r[1] != r[2]] == [], rows


def test_pytorchvideo_mvit(ptv):
    """MViT (patch embedding, class token + space-time positions, pooled
    attention blocks, a class-token head), regular model: params, ptflops and
    fvcore equal the live module's (more configurations in
    tests/test_import_mvit.py); it has no continual form."""
    m = ptv.vit.create_multiscale_vision_transformers(
        spatial_size=32, temporal_size=4, depth=2, head_num_classes=10, embed_dim_mul=[[1, 2.0]],
        atten_head_mul=[[1, 2.0]], pool_q_stride_size=[[1, 1, 2, 2]], pool_kv_stride_adaptive=[1, 4, 4],
        pool_kvq_kernel=[3, 3, 3])
    spec, rows = _check(m, (3, 4, 32, 32))
    assert [r for r in rows if r[1] != r[2]] == [], rows
    assert not spec.continual


@pytest.mark.slow
@pytest.mark.parametrize("name,depth,clip,crop", [("xs", 2.2, 4, 160), ("s", 2.2, 13, 160), ("m", 2.2, 16, 224),
                                                  ("l", 5.0, 16, 312)])
def test_pytorchvideo_x3d_full_size(ptv, name, depth, clip, crop):
    m = ptv.x3d.create_x3d(input_clip_length=clip, input_crop_size=crop, depth_factor=depth)
    _, rows = _check(m, (3, clip, crop, crop))
    assert [r for r in rows if r[1] != r[2]] == [], rows


# ---------------------------------------------------------------------------
# continual-skeletons (not on PyPI): its constructs reproduced in tests/skeleton_code.py

@pytest.mark.parametrize("shape,widths,strides", [((3, 20, 5, 2), (8, 8, 16, 16), (1, 1, 2, 1)),
                                                  ((3, 16, 7, 1), (8, 16), (1, 2))])
def test_continual_skeletons_st_gcn(shape, widths, strides):
    """The authors' StGcn: a data batch norm over a frame's M·V·C features,
    bodies folded into the batch and back, graph convolutions that multiply
    the data with the adjacency (``torch.matmul``), ``zero``/``unity``
    residuals, ``x.view(N, M, C, -1).mean(3).mean(1)`` — read as comem's
    ``graph_conv`` kind on a 2D model of ``V × M`` frames."""
    pytest.importorskip("torch")
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import skeleton_code

    import comem
    from comem.pytorch.importer.check import compare

    m = skeleton_code.StGcn(shape, widths=widths, strides=strides).eval()
    spec = comem.from_module(m, shape, layout="CTVM")
    rows = compare(m, shape, spec)
    assert [r for r in rows if r[1] != r[2]] == [], rows
    assert {q for q, _, _ in rows} >= {"params", "per-clip ops (ptflops)", "per-clip ops (fvcore)"}
    r = comem.analyze(spec)
    assert [row.kind.name for row in r.rows].count("graph_conv") == len(widths)
    # the fixed adjacency is a tensor the module holds, not a trainable parameter
    assert r.params == sum(p.numel() for p in m.parameters()) - len(widths) * 3 * shape[2] ** 2


def test_matmul_against_data_outside_a_known_unit_is_refused():
    """A graph product written in a module comem does not know is refused in
    one line naming the module and the construct."""
    torch = pytest.importorskip("torch")
    import comem
    from comem.errors import ComemError

    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.A = torch.nn.Parameter(torch.rand(5, 5))
            self.conv = torch.nn.Conv2d(3, 4, 1)

        def forward(self, x):
            n, c, t, v = x.shape
            return self.conv(torch.matmul(x.view(n, c * t, v), self.A).view(n, c, t, v))

    with pytest.raises(ComemError, match=r"^cannot import Sequential: .*0 \(Odd\): aten\.\w*mm on the data: a "
                                         r"(batched )?matrix product") as info:
        comem.from_module(torch.nn.Sequential(Odd()), (3, 8, 5))
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------
# continual-transformers (not on PyPI): CoOadTR's encoder construct, reproduced in tests/transformer_code.py

def test_co_delay_subclass_overriding_forward_is_read_by_what_it_does():
    """continual-transformers' SelectOrDelay subclasses co.Delay and
    overrides forward to pick the last token: comem no longer reads it as
    the delay its base class is (which made the branches 6 frames against 1
    and declared the model without a continual form) — it follows the
    forward, and refuses the token pick in one line naming module and
    construct; the library's own encoder (co.TransformerEncoder, the same
    construct inside continual-inference) stays read whole."""
    pytest.importorskip("continual")
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import transformer_code

    import comem
    from comem.errors import ComemError

    m = transformer_code.co_oadtr_like().eval()
    with pytest.raises(ComemError) as info:
        comem.from_module(m, (12, 6))
    msg = str(info.value)
    assert "\n" not in msg and "(SelectOrDelay): selects frame -1 of 6" in msg, msg
    assert "delay" not in msg.split("SelectOrDelay")[-1]


@pytest.mark.parametrize("widths,strides", [((8, 8, 16), (1, 1, 1)), ((8, 8, 16), (1, 1, 2))])
def test_continual_skeletons_co_st_gcn(widths, strides):
    """The authors' CoStGcn construct (CoModelBase's frame-by-frame co.Lambda
    reshapes around the data batch norm and the spatial pool,
    co.forward_stepping graph convolutions, co.Residual / BroadcastReduce with
    an aligning co.Delay, the co.AvgPool1d head): params and per-clip ptflops
    of the module, and — warmed up through its receptive field — the state
    its modules keep (get_state()), its delay and receptive field
    (continual-inference) and the operations of one step (forward hooks)."""
    pytest.importorskip("continual")
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    import skeleton_code

    import comem
    from comem.pytorch.importer.check import compare

    shape = (3, 20, 5, 2)
    m = skeleton_code.co_st_gcn(shape, widths=widths, strides=strides).eval()
    spec = comem.from_module(m, shape, layout="CTVM")
    assert spec.continual, spec.continual_note
    rows = compare(m, shape, spec)
    assert {q for q, _, _ in rows} >= {"params", "state floats", "delay (frames)", "receptive field (frames)",
                                       "per-step ops (macs)"}
    assert [r for r in rows if r[1] != r[2]] == [], rows
