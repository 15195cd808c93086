"""pytorchvideo's multiscale vision transformer (MViT) read by
``comem.from_module``, regular (per-clip) model only.

Every number asserted is measured on the very module imported: trainable
parameters counted by torch, per-clip operations by ptflops 0.7
(``backend="pytorch"``, ``count_functional=False``) and fvcore, run on it
(:func:`comem.pytorch.importer.check.compare`).  What the tools do not count
is not counted under their conventions either: ptflops' module hooks see
the linear layers (bias once per output element), the depthwise pooling
convolutions, LayerNorms (1 per element), GELU and every max/avg pool
module (1 per input element, the skip's included), never the attention's
``q @ kᵀ``, ``attn @ v``, softmax or the functional adds; fvcore counts
the linear and convolution MACs, both matmuls and LayerNorms (5 per
element), never pools, GELU, softmax or adds.  The token counts behind
them are derived by hand below from pytorchvideo's own settings.
torchvision cannot load here; pytorchvideo's heads import it, so the tests
put a stub of ``torchvision``/``torchvision.ops`` in ``sys.modules``.
"""
import pytest
from pytorchvideo_stub import pytorchvideo_importable

pytestmark = pytest.mark.validation

SMALL = dict(spatial_size=32, temporal_size=4, depth=2, head_num_classes=10, embed_dim_mul=[[1, 2.0]],
             atten_head_mul=[[1, 2.0]], pool_q_stride_size=[[1, 1, 2, 2]], pool_kv_stride_adaptive=[1, 4, 4],
             pool_kvq_kernel=[3, 3, 3])
CONFIGS = {
    "conv-pool": {},
    "max-pool": {"pooling_mode": "max"},
    "no-cls-joint-pos": {"cls_embed_on": False, "sep_pos_embed": False, "spatial_size": 64, "temporal_size": 8,
                         "patch_embed_dim": 32, "num_heads": 2},
    "depth4-two-q-pools": {"depth": 4, "temporal_size": 8, "pool_q_stride_size": [[1, 1, 2, 2], [3, 1, 2, 2]],
                           "embed_dim_mul": [[1, 2.0], [3, 2.0]], "atten_head_mul": [[1, 2.0], [3, 2.0]],
                           "patch_embed_dim": 16, "qkv_bias": False, "mlp_ratio": 2.0},
}


@pytest.fixture(scope="module")
def vit():
    with pytorchvideo_importable():
        from pytorchvideo.models import vision_transformers

        yield vision_transformers


def _mvit(vit, **kw):
    cfg = {**SMALL, **kw}
    shape = (3, cfg["temporal_size"], cfg["spatial_size"], cfg["spatial_size"])
    return vit.create_multiscale_vision_transformers(**cfg), shape


@pytest.mark.parametrize("name", list(CONFIGS))
def test_mvit_params_and_per_clip_ops_equal_the_tools(vit, name):
    import comem
    from comem.pytorch.importer.check import compare

    m, shape = _mvit(vit, **CONFIGS[name])
    spec = comem.from_module(m, shape)
    rows = compare(m, shape, spec)
    assert {q for q, _, _ in rows} == {"params", "per-clip ops (ptflops)", "per-clip ops (fvcore)"}
    assert [r for r in rows if r[1] != r[2]] == [], rows
    assert not spec.continual  # pooled attention over the whole clip: no frame-by-frame form


def test_mvit_pooled_attention_by_hand(vit):
    """One block's pooled attention, its token counts derived by hand from
    pytorchvideo's settings, against fvcore's count of that very module
    (its q/k/v/proj MACs, both matmuls, the pooling convolutions, the
    LayerNorms of the pooled tensors) and comem's block row."""
    import torch
    from fvcore.nn import FlopCountAnalysis

    m, shape = _mvit(vit)
    # patch embed: kernel (3,7,7) stride (2,4,4) pad (1,3,3) on 4x32x32 -> grid 2x8x8, 96 channels, + a cls token
    t, h, w = (4 + 2 - 3) // 2 + 1, (32 + 6 - 7) // 4 + 1, (32 + 6 - 7) // 4 + 1
    assert (t, h, w) == tuple(m.cls_positional_encoding.patch_embed_shape)
    blk = m.blocks[1]  # dim 192, 2 heads; q pooled (3,3,3)/(1,2,2), kv (3,3,3)/(1,2,2) (adaptive 4 -> 2)
    c = 192  # 2 heads
    n = 1 + t * h * w
    nq = 1 + t * ((h + 2 - 3) // 2 + 1) * ((w + 2 - 3) // 2 + 1)
    nk = nq
    x = torch.randn(1, n, c)
    fa = FlopCountAnalysis(blk.attn, (x, [t, h, w]))
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    by_hand = (3 * n * c * c + nq * c * c + 2 * nq * nk * c        # q, k, v, proj; q kᵀ and attn v
               + 3 * c * (nq - 1) * 27                             # three depthwise 3x3x3 pools
               + 5 * (nq + 2 * nk) * c)                            # their LayerNorms (fvcore: 5 per element)
    assert int(fa.total()) == by_hand
    # the whole block: its norms (5 per element) and MLP MACs besides the attention
    f = blk.mlp.fc1.out_features
    block_fvcore = by_hand + 5 * (n * c + nq * c) + nq * c * f + nq * f * c
    fb = FlopCountAnalysis(blk, (x, [t, h, w]))
    fb.unsupported_ops_warnings(False)
    fb.uncalled_modules_warnings(False)
    assert int(fb.total()) == block_fvcore


def test_mvit_continual_is_refused_in_one_line(vit):
    """No continual form: the spec says why in one line, naming the layer."""
    import comem

    m, shape = _mvit(vit)
    spec = comem.from_module(m, shape)
    assert not spec.continual
    note = spec.continual_note
    assert "\n" not in note and "patch_embed" in note and "no continual form" in note


def test_mvit_pool_first_is_refused_in_one_line(vit):
    import comem
    from comem.errors import ComemError

    m, shape = _mvit(vit, pool_first=True)
    with pytest.raises(ComemError) as info:
        comem.from_module(m, shape)
    msg = str(info.value)
    assert "\n" not in msg and "blocks.0 (MultiScaleBlock)" in msg and "pool_first" in msg


def test_mvit_other_input_size_is_refused(vit):
    """The tokens' grid is fixed at import: analysing another size says so."""
    import comem
    from comem.errors import ComemError

    m, shape = _mvit(vit)
    spec = comem.from_module(m, shape)
    with pytest.raises(ComemError) as info:
        comem.analyze(spec, clip=8, size=32)
    assert "\n" not in str(info.value) and "import the model at this input size" in str(info.value)


@pytest.mark.parametrize("name", ["conv-pool", "no-cls-joint-pos"])
def test_mvit_regular_transient_is_the_largest_token_tensor(vit, name):
    """Under the default (paper) rule the regular transient is the largest
    tensor handed between the network's parts: measured with forward hooks
    on the live module's patch embedding, position embedding, every block
    (its tokens, class token included), final norm and head."""
    import torch

    import comem

    m, shape = _mvit(vit, **CONFIGS[name])
    sizes = []

    def hook(module, args, out):
        out = out[0] if isinstance(out, tuple) else out
        sizes.append(out.numel())

    parts = [m.patch_embed, m.cls_positional_encoding, *m.blocks, m.norm_embed, m.head]
    handles = [p.register_forward_hook(hook) for p in parts]
    with torch.no_grad():
        m.eval()(torch.randn((1,) + shape))
    for h in handles:
        h.remove()
    r = comem.analyze(comem.from_module(m, shape))
    assert r.regular_transient_floats == max(sizes)
    # and the regular worst case adds the clip's stored input frames, (T - 1) * C * H * W
    assert r.regular_total_floats == max(sizes) + (shape[1] - 1) * shape[0] * shape[2] * shape[3]
