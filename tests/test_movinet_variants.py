"""MoViNet's variants: the spec parameters ``conv_type`` (3 = '3d', 21 =
'2plus1d') and ``se_type`` (3 = '3d', 23 = '2plus3d', 2 = '2d', 0 = 'none')
of specs/movinet-a{0,1,2}-stream.toml.

Expected stream state: a hand transcription of tensorflow/models
official/projects/movinet/modeling/movinet.py ``Movinet._get_initial_state_shapes``
(and BLOCK_SPECS), read for each configuration:

* a block's ``{prefix}_stream_buffer`` is ``(B, k_T − 1, H', W', expand)`` when
  ``k_T > 1``; under '2plus1d' (and '3d_2plus1d') a strided block counts its
  spatial downsampling *before* the buffer (``StreamConvBlock`` runs the 2D
  spatial convolution first and buffers the input of the k_T×1 temporal one),
  under '3d' after it (the buffer holds the 3D convolution's input);
  ``H' = ceil(H / 2^downsamples)``;
* ``{prefix}_pool_buffer`` ``(B, 1, 1, 1, expand)`` when ``'3d' in se_type``
  ('3d' and '2plus3d': ``StreamSqueezeExcitation`` runs the causal
  ``GlobalAveragePool3D`` — of each frame's spatial mean under '2plus3d' —
  keeping a running sum); '2d' and 'none' keep nothing;
* the head's ``state_head_pool_buffer`` ``(B, 1, 1, 1, project_filters)``;
* every pool buffer comes with an int32 ``frame_count`` (one integer, not a
  float of the analysed dtype: comem does not count it).

The squeeze width under '2plus3d': ``make_divisible(se_ratio · expand · 2, 8)``
(``MovinetBlock``: ``se_multiplier = 2``) — checked against the parameters of
a PyTorch port below.

Then Atze00/MoViNet-pytorch (not on PyPI; reproduced in tests/movinet_port.py):
the buffers its ``CausalModule``s keep after streaming, against comem's
``stream-buffer`` analysis of the same configuration.
"""
import math
import sys
from pathlib import Path

import pytest

import comem

from movinet_tf import BLOCK_SPECS  # noqa: E402  (tensorflow/models' table, transcribed)
CONV_TYPES = {"3d": 3, "2plus1d": 21}
SE_TYPES = {"3d": 3, "2plus3d": 23, "2d": 2, "none": 0}


def movinet_state_shapes(model_id, height, width, conv_type="3d", se_type="3d", batch=1):
    """``_get_initial_state_shapes`` for one configuration: name -> shape
    (B, T, H, W, C), the int32 frame counts left out."""
    stem, blocks, project = BLOCK_SPECS[model_id]
    states, downsamples = {}, 0

    def divide(n, k):
        return math.ceil(n / 2 ** k)

    _, kernel, _ = stem
    assert kernel[0] == 1   # A0-A2's 1x3x3 stem keeps no buffer
    downsamples += 1
    two_d = conv_type in ("2plus1d", "3d_2plus1d")
    for b, (_, expands, kernels, strides) in enumerate(blocks):
        for i, (e, k, s) in enumerate(zip(expands, kernels, strides)):
            prefix = f"state_block{b}_layer{i}"
            if tuple(s[1:3]) != (1, 1) and two_d:
                downsamples += 1                                  # 2D kernel: before the buffer
            if k[0] > 1:
                states[f"{prefix}_stream_buffer"] = (batch, k[0] - 1, divide(height, downsamples),
                                                     divide(width, downsamples), e)
            if "3d" in se_type:
                states[f"{prefix}_pool_buffer"] = (batch, 1, 1, 1, e)
            if tuple(s[1:3]) != (1, 1) and not two_d:
                downsamples += 1                                  # 3D kernel: after the buffer
    states["state_head_pool_buffer"] = (batch, 1, 1, 1, project)
    return states


def comem_path(name, conv_type):
    """The comem layer that keeps a TF state."""
    if name.startswith("state_head"):
        return "head.pool"
    _, block, layer = name.split("_")[:3]
    if name.endswith("stream_buffer"):
        return f"{block}.{layer}." + ("dw_t" if conv_type == "2plus1d" else "dw")
    return f"{block}.{layer}.se.pool"


def state_by_layer(r):
    return {row.path: row.state * row.multiplicity for row in r.rows if row.state}


def analyse(model_id, size, conv_type, se_type):
    return comem.analyze(f"movinet-{model_id}", size=size, profile="stream-buffer",
                         params={"conv_type": CONV_TYPES[conv_type], "se_type": SE_TYPES[se_type]})


@pytest.mark.parametrize("conv_type", ["3d", "2plus1d"])
@pytest.mark.parametrize("se_type", ["3d", "2plus3d", "2d", "none"])
def test_each_variant_keeps_tensorflow_models_state(conv_type, se_type):
    expected = movinet_state_shapes("a0", 172, 172, conv_type, se_type)
    r = analyse("a0", 172, conv_type, se_type)
    by_layer = state_by_layer(r)
    for name, shape in expected.items():
        assert by_layer.get(comem_path(name, conv_type)) == math.prod(shape), (name, shape)
    assert len(by_layer) == len(expected)
    assert r.state_floats == sum(math.prod(s) for s in expected.values())
    assert r.delay == 0


@pytest.mark.parametrize("model_id,size", [("a1", 172), ("a2", 224), ("a0", (200, 355)), ("a2", 171)])
@pytest.mark.parametrize("se_type", ["2plus3d", "2d"])
def test_tf_lite_stream_configuration_at_other_models_and_sizes(model_id, size, se_type):
    """The TF Lite stream models' conv_type '2plus1d' (README: --conv_type=2plus1d
    --se_type=2plus3d) on A1, A2 and non-square frames."""
    h, w = (size, size) if isinstance(size, int) else size
    expected = movinet_state_shapes(model_id, h, w, "2plus1d", se_type)
    r = analyse(model_id, size, "2plus1d", se_type)
    by_layer = state_by_layer(r)
    assert by_layer == {comem_path(n, "2plus1d"): math.prod(s) for n, s in expected.items()}


def test_2plus1d_buffers_after_the_spatial_stride_by_hand():
    """A0 at 172², block1.layer0 (expand 80, 3x3x3, spatial stride 2 from 43x43):
    '3d' buffers 2 frames of its 43x43 input, '2plus1d' 2 frames of the
    strided 22x22 map."""
    rows = {c: {row.path: row for row in analyse("a0", 172, c, "3d").rows} for c in ("3d", "2plus1d")}
    assert rows["3d"]["block1.layer0.dw"].state == 2 * 80 * 43 * 43
    assert rows["2plus1d"]["block1.layer0.dw"].state == 0            # the 1x3x3 spatial part keeps nothing
    assert rows["2plus1d"]["block1.layer0.dw_t"].state == 2 * 80 * 22 * 22


def test_se_type_2plus3d_squeezes_twice_the_channels():
    """make_divisible(0.25 · 2 · expand, 8) hidden channels on 2·expand inputs:
    block0.layer0 (expand 24): 16 hidden (3d: make_divisible(6, 8) = 8)."""
    rows = {s: {row.path: row for row in analyse("a0", 172, "3d", s).rows} for s in ("3d", "2plus3d")}
    assert rows["3d"]["block0.layer0.se.fc1"].params == 24 * 8 + 8
    assert rows["2plus3d"]["block0.layer0.se.fc1"].params == 48 * 16 + 16
    assert rows["2plus3d"]["block0.layer0.se.fc2"].params == 16 * 24 + 24


def test_unknown_variant_is_refused_in_one_line(cli):
    rc, out, err = cli("movinet-a0", "--set", "conv_type=2")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "conv_type" in err and "21" in err


# -- a PyTorch port: Atze00/MoViNet-pytorch (tests/movinet_port.py) -----------------

def _port():
    pytest.importorskip("torch")
    sys.path.insert(0, str(Path(__file__).parent))
    import movinet_port

    return movinet_port


def _port_path_to_comem(name, conv_type):
    if name == "cgap":
        return "head.pool"
    _, block = name.split(".")[:2]                       # blocks.b1_l0.deep / .se.temporal_cumualtive_GAvg3D
    i, j = block[1:].split("_l")
    if name.endswith(".deep"):
        return f"block{i}.layer{j}." + ("dw_t" if conv_type == "2plus1d" else "dw")
    return f"block{i}.layer{j}.se.pool"


def _same_padding(n, stride, kernel):
    """The port's ``same_padding`` (TF 'same'): rows added along one axis."""
    return max(kernel - (stride if n % stride == 0 else n % stride), 0)


@pytest.mark.validation
@pytest.mark.parametrize("conv_type", ["2plus1d", "3d"])
def test_port_stream_buffers_against_comem(conv_type):
    """The port streamed frame by frame (causal, tf_like: the pretrained
    stream models' setting) keeps, per CausalModule, a ``kt − 1``-frame
    buffer and a running sum of each SE's frame means (and the head's) —
    comem's stream-buffer state of the same configuration (se_type
    '2plus3d': the port's causal SE always concatenates).  Differences, named:

    * conv_type '3d' with tf_like: the port pads each frame 'same' (F.pad)
      *before* caching it, so its buffer holds padded frames,
      ``(H + p_H)(W + p_W)`` per channel instead of ``H·W``;
    * the SE's and the head's frame counts are Python ints, not tensors
      (TF keeps int32 tensors; comem counts neither).
    """
    torch = pytest.importorskip("torch")
    mp = _port()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    h = w = 48
    model = mp.MoViNet(causal=True, conv_type=conv_type, tf_like=True).eval()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(1, 3, 1, h, w))
    kept = mp.stream_buffers(model)
    r = analyse("a0", (h, w), conv_type, "2plus3d")
    rows = {row.path: row for row in r.rows}
    comem_state = state_by_layer(r)
    assert len(kept) == len(comem_state)
    for name, numel in kept.items():
        path = _port_path_to_comem(name, conv_type)
        expected = comem_state[path]
        if conv_type == "3d" and name.endswith(".deep"):
            row = rows[path]
            k, s = row.cfg["kernel"][1], row.cfg["stride"][1]
            padded = (row.x.h + _same_padding(row.x.h, s, k)) * (row.x.w + _same_padding(row.x.w, s, k))
            expected = expected // (row.x.h * row.x.w) * padded
        assert numel == expected, (name, path, numel, expected)
    if conv_type == "2plus1d":   # no padding quirk: the port keeps exactly TF's (and comem's) state
        assert sum(kept.values()) == r.state_floats == sum(
            math.prod(s) for s in movinet_state_shapes("a0", h, w, "2plus1d", "2plus3d").values())


@pytest.mark.validation
@pytest.mark.parametrize("conv_type", ["2plus1d", "3d"])
def test_port_parameters_against_comem(conv_type):
    """The port's parameters are comem's for se_type '2plus3d' (the port's
    causal SE) plus one ReZero scalar per block (``alpha``: 15 in A0, TF's
    ``rezero`` Scale too), which comem's spec leaves out."""
    torch = pytest.importorskip("torch")
    mp = _port()
    model = mp.MoViNet(causal=True, conv_type=conv_type, tf_like=True)
    n = sum(p.numel() for p in model.parameters())
    blocks = sum(len(b) for b in mp.A0["blocks"])
    assert analyse("a0", 172, conv_type, "2plus3d").params == n - blocks
    del torch


@pytest.mark.validation
def test_port_import_as_deployed_is_refused_in_one_line():
    """comem.from_module on the port as deployed (causal 2plus1d, tf_like) is
    refused in one line naming the module paths and the constructs out of
    reach (its 2D convolutions on frames folded into the batch, its 'same'
    padding by F.pad); the causal '3d' port without tf_like imports exactly
    (tests/test_movinet_import.py)."""
    pytest.importorskip("torch")
    mp = _port()
    model = mp.MoViNet(causal=True, conv_type="2plus1d", tf_like=True).eval()
    with pytest.raises(comem.ComemError) as exc:
        comem.from_module(model, (3, 4, 48, 48))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("cannot import MoViNet")
    assert "conv1 (ConvBlock3D): aten.constant_pad_nd" in msg
