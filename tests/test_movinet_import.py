"""comem.from_module on a causal MoViNet written in PyTorch: Atze00/MoViNet-pytorch
(reproduced in tests/movinet_port.py), read in its regular whole-clip mode (causal,
conv_type '3d', not tf_like) and analysed under the ``stream-buffer`` profile.

Expectations come from the live port: the buffers its ``CausalModule``s keep after
being streamed frame by frame (``stream_buffers``), its ``parameters()``, and
hand derivations written below — never from comem.

What the import reads: the empty stream buffer ``torch.cat((zeros(k_T − 1), x), 2)``
before an unpadded convolution (causal padding; written as the built-in MoViNet
specs write it), the causal squeeze-excitation (``cumsum`` over time divided by
``arange(1, T + 1)``, concatenated with each frame's mean: the ``se`` kind with
``pool = 2plus3d``), the head's cumulative pool whose last frame is taken (a global
average pool: a running sum under ``stream-buffer``).  Named differences: the
port's ReZero ``alpha`` scalars (one per block) are parameters torch counts and
the spec does not (the spec's description names them); the port's frame counts
are Python ints (comem counts no integer state).  The port's tf_like 'same'
padding (F.pad) and its '2plus1d' conv_type (2D convolutions on reshaped frames)
stay refused in one line.
"""
import sys
from collections import Counter
from pathlib import Path

import pytest

import comem

pytestmark = pytest.mark.validation


def _port():
    pytest.importorskip("torch")
    sys.path.insert(0, str(Path(__file__).parent))
    import movinet_port

    return movinet_port


def _streamed_buffers(mp, model, h, w, steps=3):
    """The port's buffers after ``steps`` single frames (its stream mode)."""
    import torch

    with torch.no_grad():
        for _ in range(steps):
            model(torch.randn(1, 3, 1, h, w))
    return mp.stream_buffers(model)


@pytest.mark.parametrize("h,w", [(64, 64), (64, 96)])
def test_causal_3d_port_imports_with_the_buffers_it_keeps(h, w):
    torch = pytest.importorskip("torch")
    mp = _port()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = mp.MoViNet(causal=True, conv_type="3d", tf_like=False).eval()
    spec = comem.from_module(model, (3, 4, h, w))
    assert mp.stream_buffers(model) == {} and model.cgap.n_cumulated_values == 0   # left as found
    kept = _streamed_buffers(mp, model, h, w)
    r = comem.analyze(spec, size=(h, w), profile="stream-buffer")
    state = [row.state * row.multiplicity for row in r.rows if row.state]
    assert Counter(state) == Counter(kept.values())          # layer by layer, as a multiset
    assert r.state_floats == sum(kept.values())
    assert r.delay == 0
    # by hand: block1.layer0's 3x3x3 depthwise conv keeps k_T - 1 = 2 frames of its 80-channel
    # input at a quarter of the frame (stem and block0 stride 2); the head's pool one 480-vector
    assert kept["blocks.b1_l0.deep"] == 2 * 80 * (h // 4) * (w // 4)
    assert kept["cgap"] == 480
    assert 2 * 80 * (h // 4) * (w // 4) in state and 480 in state


def test_parameters_are_torchs_less_the_named_rezero_scalars():
    torch = pytest.importorskip("torch")
    mp = _port()
    model = mp.MoViNet(causal=True, conv_type="3d", tf_like=False).eval()
    spec = comem.from_module(model, (3, 4, 64, 64))
    total = sum(p.numel() for p in model.parameters())
    alphas = [n for n, p in model.named_parameters() if p.dim() == 0]
    assert len(alphas) == sum(len(b) for b in mp.A0["blocks"]) == 15
    assert comem.analyze(spec, size=64, clip=4).params == total - len(alphas)
    assert f"{len(alphas)} learnable scalar gain(s)" in spec.description and alphas[0] in spec.description
    del torch


def test_causal_squeeze_is_the_se_kind_with_the_ports_widths():
    """Each imported se's first 1x1x1 conv has the port's fc1 weights and bias
    (2C inputs: the cumulative mean and the frame's mean)."""
    torch = pytest.importorskip("torch")
    mp = _port()
    model = mp.MoViNet(causal=True, conv_type="3d", tf_like=False).eval()
    spec = comem.from_module(model, (3, 4, 64, 64))
    r = comem.analyze(spec, size=64, clip=4, profile="stream-buffer")
    fc1 = sorted(row.params for row in r.rows if row.path.endswith(".se.fc1"))
    port = sorted(sum(p.numel() for p in m.fc1.parameters())
                  for name, m in model.named_modules() if isinstance(m, mp.SqueezeExcitation))
    assert fc1 == port and len(port) == 15
    # block0.layer0: expand 24 -> 48 pooled, make_divisible(24 // 4 * 2, 8) = 16: 48*16 + 16
    assert 48 * 16 + 16 in fc1
    del torch


@pytest.mark.parametrize("conv_type,tf_like,construct", [
    ("3d", True, "conv1 (ConvBlock3D): aten.constant_pad_nd"),            # TF 'same' padding by F.pad
    ("2plus1d", False, "conv1.conv_1.conv (Conv2d): a 2D convolution in a 3D model"),
])
def test_other_port_settings_are_refused_in_one_line(conv_type, tf_like, construct):
    pytest.importorskip("torch")
    mp = _port()
    model = mp.MoViNet(causal=True, conv_type=conv_type, tf_like=tf_like).eval()
    with pytest.raises(comem.ComemError) as exc:
        comem.from_module(model, (3, 4, 64, 64))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("cannot import MoViNet") and construct in msg


def test_a_port_that_already_streamed_is_refused():
    """Its buffers hold an earlier call's frames and running sums: adding them
    to the clip's cumulative sum is not a cumulative average of the clip."""
    torch = pytest.importorskip("torch")
    mp = _port()
    model = mp.MoViNet(causal=True, conv_type="3d", tf_like=False).eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 1, 64, 64))
    where = r"blocks\.b0_l0\.se\.temporal_cumualtive_GAvg3D \(TemporalCGAvgPool3D\)"
    with pytest.raises(comem.ComemError, match=where + r": aten\.add_ on a cumulative sum"):
        comem.from_module(model, (3, 4, 64, 64))


class _LastFrames:
    @staticmethod
    def make(kind):
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv3d(3, 4, (2, 1, 1) if kind == "even" else (3, 1, 1))

            def forward(self, x):
                if kind == "last":
                    return self.conv(torch.cat((torch.zeros(1, 3, 2, *x.shape[3:]), x), 2))[:, :, -2:]
                return self.conv(torch.cat((torch.zeros(1, 3, 1, *x.shape[3:]), x), 2))

        return Net()


def test_an_output_made_of_kept_frames_is_refused():
    """``x[:, :, -2:]`` is what a stream keeps for its next call: fine when
    nothing reads it, refused when the output is made of it."""
    pytest.importorskip("torch")
    with pytest.raises(comem.ComemError, match="keeps the last 2 frame"):
        comem.from_module(_LastFrames.make("last"), (3, 4, 8, 8))


def test_causal_padding_before_an_even_kernel_is_refused():
    pytest.importorskip("torch")
    with pytest.raises(comem.ComemError, match="odd, unstrided, unpadded kernel"):
        comem.from_module(_LastFrames.make("even"), (3, 4, 8, 8))


@pytest.mark.parametrize("how", ["cat", "pad"])
def test_causal_padding_keeps_the_clip_length(how):
    """Two zero frames before a 3-frame kernel (an empty stream buffer's
    ``torch.cat``, or ``F.pad`` in time): as many output frames as input frames
    (4), as torch computes."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(3, 4, (3, 1, 1), bias=False)

        def forward(self, x):
            if how == "pad":
                return self.conv(torch.nn.functional.pad(x, (0, 0, 0, 0, 2, 0)))
            return self.conv(torch.cat((torch.zeros(1, 3, 2, *x.shape[3:]), x), 2))

    net = Net()
    out = net(torch.randn(1, 3, 4, 8, 8))
    spec = comem.from_module(net, (3, 4, 8, 8))
    r = comem.analyze(spec, clip=4, size=8, profile="stream-buffer")
    (row,) = [row for row in r.rows if row.params]
    assert (row.y.c, row.y.t, row.y.h, row.y.w) == tuple(out.shape[1:])
    assert row.params == sum(p.numel() for p in net.parameters())
    assert r.state_floats == 2 * 3 * 8 * 8           # k_T - 1 input frames: MoViNet's stream buffer
