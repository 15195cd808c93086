"""A reproduction of Atze00/MoViNet-pytorch (movinets/models.py, config.py)
for the tests: its causal stream buffers (``ConvBlock3D``: ``kt − 1`` frames
cached before a 3D convolution, or, under ``conv_type = "2plus1d"``, after
the spatial 2D convolution and before the temporal one), its cumulative
squeeze-excitation (``SqueezeExcitation`` with ``causal``: a per-frame
spatial mean whose running sum ``TemporalCGAvgPool3D`` keeps, concatenated
with the frame's own mean: ``2C`` into ``fc1``), ReZero residuals and its
head (``conv7``, a cumulative global pool, a 1×1×1 classifier).

Module for module as the port writes them (einops' ``rearrange`` spelled
with permute/reshape); the port is not on PyPI.  Independent of comem.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class Hardsigmoid(nn.Module):
    def forward(self, x):
        return (0.2 * x + 0.5).clamp(min=0.0, max=1.0)


class CausalModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.activation = None

    def reset_activation(self):
        self.activation = None


class TemporalCGAvgPool3D(CausalModule):
    """The running sum of the frames seen (``activation``: one frame) and
    their count (a Python int)."""

    def __init__(self):
        super().__init__()
        self.n_cumulated_values = 0

    def forward(self, x):
        cumulative_sum = torch.cumsum(x, dim=2)
        if self.activation is None:
            self.activation = cumulative_sum[:, :, -1:].clone()
        else:
            cumulative_sum += self.activation
            self.activation = cumulative_sum[:, :, -1:].clone()
        divisor = torch.arange(1, x.shape[2] + 1)[None, None, :, None, None].expand(x.shape)
        x = cumulative_sum / (self.n_cumulated_values + divisor)
        self.n_cumulated_values += x.shape[2]
        return x

    def reset_activation(self):
        super().reset_activation()
        self.n_cumulated_values = 0


def _conv_bn_act(conv, norm_layer, out, activation_layer):
    norm_layer = norm_layer or nn.Identity
    activation_layer = activation_layer or nn.Identity
    return nn.Sequential(OrderedDict([("conv", conv), ("norm", norm_layer(out, eps=0.001)),
                                      ("act", activation_layer())]))


def same_padding(x, stride_h, stride_w, filter_h, filter_w):
    in_h, in_w = x.shape[-2], x.shape[-1]
    pad_h = max(filter_h - (stride_h if in_h % stride_h == 0 else in_h % stride_h), 0)
    pad_w = max(filter_w - (stride_w if in_w % stride_w == 0 else in_w % stride_w), 0)
    return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))


class ConvBlock3D(CausalModule):
    def __init__(self, cin, cout, *, kernel_size, causal, conv_type, tf_like=False, padding=0, stride=1,
                 groups=1, norm_layer=None, activation_layer=None, bias=False):
        super().__init__()
        kernel_size = _triple(kernel_size)
        stride = _triple(stride)
        padding = _triple(padding)
        self.conv_2 = None
        if tf_like:
            padding = ((kernel_size[0] - 1) // 2, 0, 0)
        if causal:
            padding = (0, padding[1], padding[2])
        if conv_type == "2plus1d":
            self.conv_1 = _conv_bn_act(nn.Conv2d(cin, cout, kernel_size[1:], stride=stride[1:], padding=padding[1:],
                                                 groups=groups, bias=bias), norm_layer, cout, activation_layer)
            if kernel_size[0] > 1:
                self.conv_2 = _conv_bn_act(nn.Conv2d(cin, cout, (kernel_size[0], 1), stride=(stride[0], 1),
                                                     padding=(padding[0], 0), groups=groups, bias=bias),
                                           norm_layer, cout, activation_layer)
        else:
            self.conv_1 = _conv_bn_act(nn.Conv3d(cin, cout, kernel_size, stride=stride, padding=padding,
                                                 groups=groups, bias=bias), norm_layer, cout, activation_layer)
        self.kernel_size, self.stride, self.dim_pad = kernel_size, stride, kernel_size[0] - 1
        self.causal, self.conv_type, self.tf_like = causal, conv_type, tf_like

    def _forward(self, x):
        if self.dim_pad > 0 and self.conv_2 is None and self.causal:
            x = self._cat_stream_buffer(x)
        t = x.shape[2]
        if self.conv_type == "2plus1d":
            b, c, _, h, w = x.shape
            x = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)          # b c t h w -> (b t) c h w
        x = self.conv_1(x)
        if self.conv_type == "2plus1d":
            _, c, h, w = x.shape
            x = x.reshape(-1, t, c, h, w).permute(0, 2, 1, 3, 4)          # (b t) c h w -> b c t h w
            if self.conv_2 is not None:
                if self.dim_pad > 0 and self.causal:
                    x = self._cat_stream_buffer(x)
                b, c, t, h, w = x.shape
                x = self.conv_2(x.reshape(b, c, t, h * w)).reshape(b, c, -1, h, w)
        return x

    def forward(self, x):
        if self.tf_like:
            x = same_padding(x, self.stride[-2], self.stride[-1], self.kernel_size[-2], self.kernel_size[-1])
        return self._forward(x)

    def _cat_stream_buffer(self, x):
        if self.activation is None:
            self.activation = torch.zeros(*x.shape[:2], self.dim_pad, *x.shape[3:])
        x = torch.cat((self.activation, x), 2)
        self.activation = x[:, :, -self.dim_pad:].clone().detach()
        return x


def _triple(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v, v)


def make_divisible(v, divisor, min_value=None):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class SqueezeExcitation(nn.Module):
    def __init__(self, cin, activation_2, activation_1, conv_type, causal, squeeze_factor=4, bias=True):
        super().__init__()
        self.causal = causal
        se_multiplier = 2 if causal else 1
        squeeze = make_divisible(cin // squeeze_factor * se_multiplier, 8)
        self.temporal_cumualtive_GAvg3D = TemporalCGAvgPool3D()
        self.fc1 = ConvBlock3D(cin * se_multiplier, squeeze, kernel_size=1, causal=causal, conv_type=conv_type,
                               bias=bias)
        self.activation_1 = activation_1()
        self.activation_2 = activation_2()
        self.fc2 = ConvBlock3D(squeeze, cin, kernel_size=1, causal=causal, conv_type=conv_type, bias=bias)

    def _scale(self, x):
        if self.causal:
            x_space = torch.mean(x, dim=[3, 4], keepdim=True)
            scale = self.temporal_cumualtive_GAvg3D(x_space)
            scale = torch.cat((scale, x_space), dim=1)
        else:
            scale = F.adaptive_avg_pool3d(x, 1)
        scale = self.activation_1(self.fc1(scale))
        return self.activation_2(self.fc2(scale))

    def forward(self, x):
        return self._scale(x) * x


class TfAvgPool3D(nn.Module):
    """The port's ``tfAvgPool3D`` (TF's 'same' 1×3×3 stride-2 average pool)."""

    def __init__(self):
        super().__init__()
        self.avgf = nn.AvgPool3d((1, 3, 3), stride=(1, 2, 2))

    def forward(self, x):
        if x.shape[-1] % 2 != 0:
            return F.avg_pool3d(x, (1, 3, 3), stride=(1, 2, 2), count_include_pad=False, padding=(0, 1, 1))
        x = self.avgf(F.pad(x, (0, 1, 0, 1)))
        x[..., -1] = x[..., -1] * 9 / 6
        x[..., -1, :] = x[..., -1, :] * 9 / 6
        return x


class BasicBneck(nn.Module):
    def __init__(self, cin, cout, expanded, kernel, stride, padding, padding_avg, causal, tf_like, conv_type,
                 norm_layer, activation_layer):
        super().__init__()
        self.res = None
        kw = dict(causal=causal, conv_type=conv_type, tf_like=tf_like, norm_layer=norm_layer)
        self.expand = ConvBlock3D(cin, expanded, kernel_size=1, activation_layer=activation_layer, **kw) \
            if expanded != cout else None
        self.deep = ConvBlock3D(expanded, expanded, kernel_size=kernel, padding=padding, stride=stride,
                                groups=expanded, activation_layer=activation_layer, **kw)
        self.se = SqueezeExcitation(expanded, causal=causal, activation_1=activation_layer,
                                    activation_2=nn.Sigmoid if conv_type == "3d" else Hardsigmoid,
                                    conv_type=conv_type)
        self.project = ConvBlock3D(expanded, cout, kernel_size=1, activation_layer=nn.Identity, **kw)
        if not (stride == (1, 1, 1) and cin == cout):
            layers = []
            if stride != (1, 1, 1):
                layers.append(TfAvgPool3D() if tf_like else nn.AvgPool3d((1, 3, 3), stride=stride,
                                                                          padding=padding_avg))
            layers.append(ConvBlock3D(cin, cout, kernel_size=1, activation_layer=nn.Identity, **kw))
            self.res = nn.Sequential(*layers)
        self.alpha = nn.Parameter(torch.tensor(0.0))

    def forward(self, x):
        residual = self.res(x) if self.res is not None else x
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.se(self.deep(y)))
        return residual + self.alpha * y


K13, K15, K33, K53 = (1, 3, 3), (1, 5, 5), (3, 3, 3), (5, 3, 3)
S11, S12 = (1, 1, 1), (1, 2, 2)
#: config.py's MoViNet-A0: (in, out, expanded, kernel, stride, padding, padding_avg) per block
A0 = {
    "conv1": (3, 8, K13, S12, (0, 1, 1)),
    "blocks": [
        [(8, 8, 24, K15, S12, (0, 2, 2), (0, 1, 1))],
        [(8, 32, 80, K33, S12, (1, 0, 0), (0, 0, 0)), (32, 32, 80, K33, S11, (1, 1, 1), (0, 1, 1)),
         (32, 32, 80, K33, S11, (1, 1, 1), (0, 1, 1))],
        [(32, 56, 184, K53, S12, (2, 0, 0), (0, 0, 0)), (56, 56, 112, K33, S11, (1, 1, 1), (0, 1, 1)),
         (56, 56, 184, K33, S11, (1, 1, 1), (0, 1, 1))],
        [(56, 56, 184, K53, S11, (2, 1, 1), (0, 1, 1)), (56, 56, 184, K33, S11, (1, 1, 1), (0, 1, 1)),
         (56, 56, 184, K33, S11, (1, 1, 1), (0, 1, 1)), (56, 56, 184, K33, S11, (1, 1, 1), (0, 1, 1))],
        [(56, 104, 384, K53, S12, (2, 1, 1), (0, 1, 1)), (104, 104, 280, K15, S11, (0, 2, 2), (0, 1, 1)),
         (104, 104, 280, K15, S11, (0, 2, 2), (0, 1, 1)), (104, 104, 344, K15, S11, (0, 2, 2), (0, 1, 1))],
    ],
    "conv7": (104, 480),
    "hidden": 2048,
}


class MoViNet(nn.Module):
    def __init__(self, cfg=A0, causal=True, num_classes=600, conv_type="3d", tf_like=False):
        super().__init__()
        norm_layer = nn.BatchNorm3d if conv_type == "3d" else nn.BatchNorm2d
        act = Swish if conv_type == "3d" else nn.Hardswish
        kw = dict(causal=causal, conv_type=conv_type, tf_like=tf_like)
        cin, cout, k, s, p = cfg["conv1"]
        self.conv1 = ConvBlock3D(cin, cout, kernel_size=k, stride=s, padding=p, norm_layer=norm_layer,
                                 activation_layer=act, **kw)
        blocks = OrderedDict()
        for i, block in enumerate(cfg["blocks"]):
            for j, (ci, co, e, k, s, p, pa) in enumerate(block):
                blocks[f"b{i}_l{j}"] = BasicBneck(ci, co, e, k, s, p, pa, norm_layer=norm_layer, activation_layer=act,
                                                  **kw)
        self.blocks = nn.Sequential(blocks)
        c7_in, c7 = cfg["conv7"]
        self.conv7 = ConvBlock3D(c7_in, c7, kernel_size=1, norm_layer=norm_layer, activation_layer=act, **kw)
        self.classifier = nn.Sequential(
            ConvBlock3D(c7, cfg["hidden"], kernel_size=1, bias=True, **kw),
            Swish(),
            nn.Dropout(p=0.2, inplace=True),
            ConvBlock3D(cfg["hidden"], num_classes, kernel_size=1, bias=True, **kw),
        )
        if causal:
            self.cgap = TemporalCGAvgPool3D()
        self.causal = causal

    def avg(self, x):
        if self.causal:
            avg = F.adaptive_avg_pool3d(x, (x.shape[2], 1, 1))
            return self.cgap(avg)[:, :, -1:]
        return F.adaptive_avg_pool3d(x, 1)

    def forward(self, x):
        x = self.conv7(self.blocks(self.conv1(x)))
        return self.classifier(self.avg(x)).flatten(1)

    def clean_activation_buffers(self):
        for m in self.modules():
            if isinstance(m, CausalModule):
                m.reset_activation()


def stream_buffers(model) -> dict:
    """The tensors the port keeps between calls: {module path: elements}."""
    return {name: m.activation.numel() for name, m in model.named_modules()
            if isinstance(m, CausalModule) and m.activation is not None}
