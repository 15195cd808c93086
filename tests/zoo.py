"""A zoo of video models written the way their authors' code writes them,
for the import tests: plain ``torch.nn`` models with functional glue
(residual ``+``, SE ``*``, ``torch.cat`` of pathways, means, reshapes) and
continual-inference compositions.  Small widths keep the tests fast; the
structure is the architecture's."""
import torch
from torch import nn


class Swish(nn.Module):
    """X3D's Swish, written out."""

    def forward(self, x):
        return x * torch.sigmoid(x)


class SE(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc1 = nn.Conv3d(c, hidden, 1, bias=True)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv3d(hidden, c, 1, bias=True)
        self.sig = nn.Sigmoid()

    def forward(self, x):
        return x * self.sig(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class X3DBottleneck(nn.Module):
    def __init__(self, cin, inner, cout, stride, se):
        super().__init__()
        self.a = nn.Conv3d(cin, inner, 1, bias=False)
        self.a_bn = nn.BatchNorm3d(inner)
        self.a_relu = nn.ReLU(inplace=True)
        self.b = nn.Conv3d(inner, inner, 3, (1, stride, stride), 1, groups=inner, bias=False)
        self.b_bn = nn.BatchNorm3d(inner)
        self.se = SE(inner, 8) if se else None
        self.b_swish = Swish()
        self.c = nn.Conv3d(inner, cout, 1, bias=False)
        self.c_bn = nn.BatchNorm3d(cout)
        self.branch1 = None
        if cin != cout or stride != 1:
            self.branch1 = nn.Conv3d(cin, cout, 1, (1, stride, stride), bias=False)
            self.branch1_bn = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.b_bn(self.b(self.a_relu(self.a_bn(self.a(x)))))
        if self.se is not None:
            y = self.se(y)
        y = self.c_bn(self.c(self.b_swish(y)))
        shortcut = x if self.branch1 is None else self.branch1_bn(self.branch1(x))
        return self.relu(shortcut + y)


class X3DLike(nn.Module):
    """X3D: 1x3x3 + depthwise 5x1x1 stem, bottlenecks with depthwise 3x3x3,
    SE every other block, Swish, 1x1x1 conv_5, global pool, fc."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem_xy = nn.Conv3d(3, 12, (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False)
        self.stem_t = nn.Conv3d(12, 12, (5, 1, 1), padding=(2, 0, 0), groups=12, bias=False)
        self.stem_bn = nn.BatchNorm3d(12)
        self.stem_relu = nn.ReLU(inplace=True)
        self.res2 = nn.Sequential(X3DBottleneck(12, 27, 12, 2, True), X3DBottleneck(12, 27, 12, 1, False),
                                  X3DBottleneck(12, 27, 12, 1, True))
        self.res3 = nn.Sequential(X3DBottleneck(12, 54, 24, 2, True), X3DBottleneck(24, 54, 24, 1, False))
        self.conv_5 = nn.Conv3d(24, 54, 1, bias=False)
        self.conv_5_bn = nn.BatchNorm3d(54)
        self.conv_5_relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.lin_5 = nn.Conv3d(54, 64, 1, bias=False)
        self.lin_5_relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(0.5)
        self.proj = nn.Linear(64, classes)

    def forward(self, x):
        x = self.stem_relu(self.stem_bn(self.stem_t(self.stem_xy(x))))
        x = self.res3(self.res2(x))
        x = self.conv_5_relu(self.conv_5_bn(self.conv_5(x)))
        x = self.lin_5_relu(self.lin_5(self.pool(x)))
        x = x.permute(0, 2, 3, 4, 1)
        x = self.proj(self.dropout(x))
        return x.view(x.shape[0], -1)


class Bottleneck(nn.Module):
    """ResNet-50 bottleneck, temporal kernel on the first conv (I3D)."""

    def __init__(self, cin, inner, cout, stride, kt):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, inner, (kt, 1, 1), padding=(kt // 2, 0, 0), bias=False)
        self.bn1 = nn.BatchNorm3d(inner)
        self.conv2 = nn.Conv3d(inner, inner, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(inner)
        self.conv3 = nn.Conv3d(inner, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv3d(cin, cout, 1, (1, stride, stride), bias=False),
                                            nn.BatchNorm3d(cout))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class I3DLike(nn.Module):
    """I3D-R50 layout: 5x7x7 stem + 1x3x3 max pool, bottlenecks 3/4/6/3 (here
    fewer and narrower), temporal kernels 3 / 3,1, a 2x1x1 temporal max pool
    after res2, global average pool, fc."""

    def __init__(self, width=8, classes=10):
        super().__init__()
        self.conv1 = nn.Conv3d(3, width, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        self.layer1 = nn.Sequential(*[Bottleneck(width if i == 0 else 4 * width, width, 4 * width, 1, 3)
                                      for i in range(3)])
        self.pool2 = nn.MaxPool3d((2, 1, 1), (2, 1, 1))
        self.layer2 = nn.Sequential(*[Bottleneck(4 * width if i == 0 else 8 * width, 2 * width, 8 * width,
                                                 2 if i == 0 else 1, 3 if i % 2 == 0 else 1) for i in range(2)])
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(8 * width, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.pool2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class Conv2Plus1D(nn.Sequential):
    def __init__(self, cin, cout, mid, stride=1):
        super().__init__(nn.Conv3d(cin, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
                         nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
                         nn.Conv3d(mid, cout, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        mid = (cin * cout * 27) // (cin * 9 + 3 * cout)
        self.conv1 = nn.Sequential(Conv2Plus1D(cin, cout, mid, stride), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(Conv2Plus1D(cout, cout, mid), nn.BatchNorm3d(cout))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv3d(cin, cout, 1, stride, bias=False), nn.BatchNorm3d(cout))

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


class R2Plus1DLike(nn.Module):
    """torchvision's r2plus1d_18 layout: (2+1)D stem and blocks that stride in
    space and time."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(3, 12, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False), nn.BatchNorm3d(12),
                                  nn.ReLU(inplace=True), nn.Conv3d(12, 16, (3, 1, 1), padding=(1, 0, 0), bias=False),
                                  nn.BatchNorm3d(16), nn.ReLU(inplace=True))
        self.layer1 = nn.Sequential(BasicBlock(16, 16), BasicBlock(16, 16))
        self.layer2 = nn.Sequential(BasicBlock(16, 32, 2), BasicBlock(32, 32))
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(self.avgpool(x).flatten(1))


class C3DLike(nn.Module):
    """C3D: 3x3x3 convs and max pools (1x2x2 first, then 2x2x2), fc layers."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv3d(3, 8, 3, padding=1)
        self.pool1 = nn.MaxPool3d((1, 2, 2), (1, 2, 2))
        self.conv2 = nn.Conv3d(8, 16, 3, padding=1)
        self.pool2 = nn.MaxPool3d(2, 2)
        self.conv3a = nn.Conv3d(16, 32, 3, padding=1)
        self.conv3b = nn.Conv3d(32, 32, 3, padding=1)
        self.pool3 = nn.MaxPool3d(2, 2)
        self.relu = nn.ReLU()
        self.pool5 = nn.AdaptiveAvgPool3d(1)
        self.fc6 = nn.Linear(32, 64)
        self.dropout = nn.Dropout(0.5)
        self.fc8 = nn.Linear(64, classes)

    def forward(self, x):
        x = self.pool1(self.relu(self.conv1(x)))
        x = self.pool2(self.relu(self.conv2(x)))
        x = self.pool3(self.relu(self.conv3b(self.relu(self.conv3a(x)))))
        x = self.pool5(x).view(-1, 32)
        x = self.dropout(self.relu(self.fc6(x)))
        return self.fc8(x)


class FuseFastToSlow(nn.Module):
    def __init__(self, c, alpha, kernel=5):
        super().__init__()
        self.conv_f2s = nn.Conv3d(c, 2 * c, (kernel, 1, 1), (alpha, 1, 1), (kernel // 2, 0, 0), bias=False)
        self.bn = nn.BatchNorm3d(2 * c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        slow, fast = x
        fuse = self.relu(self.bn(self.conv_f2s(fast)))
        return [torch.cat([slow, fuse], 1), fast]


class PathwayStem(nn.Module):
    def __init__(self, c_slow, c_fast):
        super().__init__()
        self.slow = nn.Sequential(nn.Conv3d(3, c_slow, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
                                  nn.BatchNorm3d(c_slow), nn.ReLU(inplace=True),
                                  nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
        self.fast = nn.Sequential(nn.Conv3d(3, c_fast, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False),
                                  nn.BatchNorm3d(c_fast), nn.ReLU(inplace=True),
                                  nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))

    def forward(self, x):
        return [self.slow(x[0]), self.fast(x[1])]


class SlowFastLike(nn.Module):
    """SlowFast: a pack-pathway that takes every alpha-th frame for the slow
    pathway, per-pathway stems and blocks, lateral fusion (time-strided
    conv, concatenated onto the slow pathway), per-pathway pools, concat, fc."""

    def __init__(self, alpha=4, classes=10):
        super().__init__()
        self.alpha = alpha
        self.s1 = PathwayStem(16, 2)
        self.s1_fuse = FuseFastToSlow(2, alpha)
        self.s2_slow = Bottleneck(20, 8, 32, 1, 1)
        self.s2_fast = Bottleneck(2, 2, 4, 1, 3)
        self.s2_fuse = FuseFastToSlow(4, alpha)
        self.slow_pool = nn.AdaptiveAvgPool3d(1)
        self.fast_pool = nn.AdaptiveAvgPool3d(1)
        self.projection = nn.Linear(40 + 4, classes)

    def forward(self, frames):
        t = frames.shape[2]
        idx = torch.linspace(0, t - 1, t // self.alpha).long()
        x = [torch.index_select(frames, 2, idx), frames]
        x = self.s1_fuse(self.s1(x))
        x = self.s2_fuse([self.s2_slow(x[0]), self.s2_fast(x[1])])
        pooled = torch.cat([self.slow_pool(x[0]), self.fast_pool(x[1])], 1)
        return self.projection(pooled.permute(0, 2, 3, 4, 1)).flatten(1)


def stgcn_like(classes=10, joints_hidden=16):
    """An ST-GCN-like network of continual 2D convolutions over (time, joints):
    temporal 9x1 convolutions, residuals, a continual global pool, fc."""
    import continual as co

    def unit(cin, cout, stride=1):
        main = co.Sequential(co.Conv2d(cin, cout, (9, 1), padding=(4, 0)), nn.BatchNorm2d(cout))
        return co.Sequential(co.Residual(main) if cin == cout else main, nn.ReLU())

    return co.Sequential(
        co.Conv2d(3, joints_hidden, (1, 1)), nn.BatchNorm2d(joints_hidden), nn.ReLU(),
        unit(joints_hidden, joints_hidden), unit(joints_hidden, 2 * joints_hidden), unit(2 * joints_hidden,
                                                                                        2 * joints_hidden),
        co.AdaptiveAvgPool2d((1, 1), kernel_size=8),
        co.Linear(2 * joints_hidden, classes, channel_dim=1),
    )


def continual_composition(classes=10):
    """continual-inference building blocks: co.Residual, an Inception-like
    co.BroadcastReduce concat, explicit Broadcast/Parallel/Reduce, pools, a
    co.Delay, co.Lambda functions applied frame by frame."""
    import continual as co

    inception = co.BroadcastReduce(
        co.Conv3d(8, 4, 1),
        co.Sequential(co.Conv3d(8, 4, 1), nn.BatchNorm3d(4), nn.ReLU(), co.Conv3d(4, 6, 3, padding=1)),
        co.Sequential(co.MaxPool3d((1, 3, 3), stride=1, padding=(0, 1, 1)), co.Conv3d(8, 2, 1)),
        reduce="concat",
    )
    explicit = co.Sequential(co.Broadcast(2), co.Parallel(co.Conv3d(12, 12, (3, 1, 1), padding=(1, 0, 0)),
                                                         co.Delay(1)), co.Reduce("sum"))
    return co.Sequential(
        co.Conv3d(3, 8, (3, 5, 5), (1, 2, 2), (0, 2, 2)), nn.BatchNorm3d(8), nn.ReLU(),
        co.Residual(co.Sequential(co.Conv3d(8, 8, 3, padding=1), nn.BatchNorm3d(8))),
        co.MaxPool3d((2, 2, 2), stride=(1, 2, 2)),
        inception, nn.ReLU(),
        co.Lambda(lambda x: torch.nn.functional.hardtanh(x, 0.0, 6.0)),   # ReLU6, frame by frame
        explicit,
        co.Delay(2),
        co.AvgPool3d((1, 2, 2)),
        co.AdaptiveAvgPool3d((1, 1, 1), kernel_size=4),
        co.Linear(12, classes, channel_dim=1),
    )


def continual_tcn(features=6, classes=4):
    """A 1D temporal convolutional network over feature vectors (C, T):
    co.Conv1d with dilation-free kernels, BatchNorm1d, residuals, a temporal
    max pool, a temporal average pool, fc."""
    import continual as co

    def block(c):
        return co.Sequential(co.Residual(co.Sequential(co.Conv1d(c, c, 3, padding=1), nn.BatchNorm1d(c), nn.ReLU(),
                                                       co.Conv1d(c, c, 5, padding=2), nn.BatchNorm1d(c))),
                             nn.ReLU())

    return co.Sequential(
        co.Conv1d(features, 16, 1), nn.BatchNorm1d(16), nn.ReLU(),
        block(16),
        co.MaxPool1d(2, stride=1),
        co.Conv1d(16, 24, 3), nn.ReLU(),
        block(24),
        co.AvgPool1d(6),
        co.Linear(24, classes, channel_dim=1),
    )
