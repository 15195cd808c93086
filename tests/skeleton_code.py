"""The constructs of LukasHedegaard/continual-skeletons (not on PyPI) as its
code writes them, for the importer's tests: ``models/base.py``
(GraphConvolution — a ``torch.matmul`` of the data against the adjacency
``A[i]`` per subset —, TemporalConvolution, SpatioTemporalBlock) and
``models/st_gcn/st_gcn.py`` (StGcn.forward: the data batch norm over the
``M·V·C`` features of a frame, the bodies folded into the batch and back,
``x.view(N, M, C, -1).mean(3).mean(1)``), ``models/utils.py`` (``zero``,
``unity``).  Copied construct for construct, with the adjacency random and
the widths a parameter so the tests run small; ride's mixins left out.
"""
import numpy as np
import torch
import torch.nn as nn


def zero(x):
    return 0


def unity(x):
    return x


class GraphConvolution(nn.Module):
    def __init__(self, in_channels, out_channels, A, bn_momentum=0.1, *args, **kwargs):
        super(GraphConvolution, self).__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.graph_attn = nn.Parameter(torch.from_numpy(A.astype(np.float32)))
        nn.init.constant_(self.graph_attn, 1)
        self.A = nn.Parameter(torch.from_numpy(A.astype(np.float32)), requires_grad=False)
        self.num_subset = 3
        self.g_conv = nn.ModuleList()
        for i in range(self.num_subset):
            self.g_conv.append(nn.Conv2d(in_channels, out_channels, 1))

        if in_channels != out_channels:
            self.gcn_residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1),
                nn.BatchNorm2d(out_channels, momentum=bn_momentum),
            )
        else:
            self.gcn_residual = lambda x: x

        self.bn = nn.BatchNorm2d(out_channels, momentum=bn_momentum)
        self.relu = nn.ReLU()

    def forward(self, x):
        N, C, T, V = x.size()
        A = self.A * self.graph_attn
        sum_ = None
        for i in range(self.num_subset):
            x_a = x.view(N, C * T, V)
            z = self.g_conv[i](torch.matmul(x_a, A[i]).view(N, C, T, V))
            sum_ = z + sum_ if sum_ is not None else z
        sum_ = self.bn(sum_)
        sum_ += self.gcn_residual(x)
        return self.relu(sum_)


class TemporalConvolution(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=9, stride=1, padding=4):
        super(TemporalConvolution, self).__init__()
        self.padding = padding
        self.t_conv = nn.Conv2d(in_channels, out_channels, kernel_size=(kernel_size, 1), padding=(self.padding, 0),
                                stride=(stride, 1))
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        x = self.bn(self.t_conv(x))
        return x


class SpatioTemporalBlock(nn.Module):
    def __init__(self, in_channels, out_channels, A, stride=1, residual=True, temporal_kernel_size=9):
        super(SpatioTemporalBlock, self).__init__()
        equal_padding = int((temporal_kernel_size - 1) / 2)
        self.gcn = GraphConvolution(in_channels, out_channels, A)
        self.tcn = TemporalConvolution(out_channels, out_channels, stride=stride, kernel_size=temporal_kernel_size,
                                       padding=equal_padding)
        self.relu = nn.ReLU()
        if not residual:
            self.residual = zero
        elif (in_channels == out_channels) and (stride == 1):
            self.residual = unity
        else:
            self.residual = TemporalConvolution(in_channels, out_channels, kernel_size=1, stride=stride, padding=0)

    def forward(self, x):
        z = self.tcn(self.gcn(x))
        r = self.residual(x)
        return self.relu(z + r)


class StGcn(nn.Module):
    """``models/st_gcn/st_gcn.py`` with ``widths`` for its ten blocks' (64,
    64, 64, 64, 128, 128, 128, 256, 256, 256) and any number of them."""

    def __init__(self, input_shape=(3, 20, 5, 2), num_classes=4, widths=(8, 8, 16, 16), strides=(1, 1, 2, 1),
                 seed=0):
        super().__init__()
        (num_channels, num_frames, num_vertices, num_skeletons) = input_shape
        A = np.random.default_rng(seed).random((3, num_vertices, num_vertices))
        self.data_bn = nn.BatchNorm1d(num_skeletons * num_channels * num_vertices)
        layers, cin = {}, num_channels
        for i, (w, s) in enumerate(zip(widths, strides)):
            layers[f"layer{i + 1}"] = SpatioTemporalBlock(cin, w, A, stride=s, residual=i > 0)
            cin = w
        self.layers = nn.ModuleDict(layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        N, C, T, V, M = x.size()
        x = x.permute(0, 4, 3, 1, 2).contiguous().view(N, M * V * C, T)
        x = self.data_bn(x)
        x = (
            x.view(N, M, V, C, T)
            .permute(0, 1, 3, 4, 2)
            .contiguous()
            .view(N * M, C, T, V)
        )
        for i in range(len(self.layers)):
            x = self.layers[f"layer{i + 1}"](x)
        c_new = x.size(1)
        x = x.view(N, M, c_new, -1)
        x = x.mean(3).mean(1)
        x = self.fc(x)
        return x


# -- the continual models: models/base.py CoModelBase, CoSpatioTemporalBlock, CoTemporalConvolution ----------------

def CoGraphConvolution(in_channels, out_channels, A, bn_momentum=0.1):
    import continual as co

    return co.forward_stepping(GraphConvolution(in_channels, out_channels, A, bn_momentum))


def CoTemporalConvolution(in_channels, out_channels, kernel_size=9, padding=0, stride=1):
    from collections import OrderedDict

    import continual as co

    if padding == "equal":
        padding = int((kernel_size - 1) / 2)
    t_conv = co.Conv2d(in_channels, out_channels, kernel_size=(kernel_size, 1), padding=(padding, 0),
                       stride=(stride, 1))
    bn = nn.BatchNorm2d(out_channels)
    return co.Sequential(OrderedDict([("t_conv", t_conv), ("bn", bn)]))


def CoSpatioTemporalBlock(in_channels, out_channels, A, stride=1, residual=True, padding=0):
    from collections import OrderedDict

    import continual as co

    gcn = CoGraphConvolution(in_channels, out_channels, A, bn_momentum=0.1)
    tcn = CoTemporalConvolution(out_channels, out_channels, stride=stride, padding=padding)
    relu = torch.nn.ReLU()
    if not residual:
        return co.Sequential(OrderedDict([("gcn", gcn), ("tcn", tcn), ("relu", relu)]))
    if (in_channels == out_channels) and (stride == 1):
        return co.Sequential(co.Residual(co.Sequential(OrderedDict([("gcn", gcn), ("tcn", tcn)])),
                                         residual_shrink=True), relu)
    residual = CoTemporalConvolution(in_channels, out_channels, kernel_size=1, stride=stride)
    pad = tcn.padding[0] if isinstance(tcn.padding, tuple) else tcn.padding  # a tuple in continual-inference 1.2
    residual_shrink = tcn.receptive_field - 2 * pad != 1
    delay = tcn.delay // stride
    if residual_shrink:
        delay = delay // 2
    return co.Sequential(
        co.BroadcastReduce(
            co.Sequential(OrderedDict([("residual", residual),
                                       ("align", co.Delay(delay, auto_shrink=residual_shrink))])),
            co.Sequential(OrderedDict([("gcn", gcn), ("tcn", tcn)])),
            auto_delay=False,
        ),
        relu,
    )


def co_st_gcn(input_shape=(3, 20, 5, 2), num_classes=4, widths=(8, 8, 16), strides=(1, 1, 1), pool_size=4, seed=0):
    """CoStGcn (models/cost_gcn) with padding "equal", CoModelBase.on_init_end's head and reshapes."""
    from collections import OrderedDict

    import continual as co

    (C_in, T, V, S) = input_shape
    A = np.random.default_rng(seed).random((3, V, V))
    blocks, cin = [], C_in
    for i, (w, s) in enumerate(zip(widths, strides)):
        blocks.append((f"layer{i + 1}", CoSpatioTemporalBlock(cin, w, A, stride=s, residual=i > 0, padding="equal")))
        cin = w
    reshape1 = co.Lambda(lambda x: x.permute(0, 3, 2, 1).contiguous().view(-1, S * V * C_in))
    data_bn = nn.BatchNorm1d(S * C_in * V)
    reshape2 = co.Lambda(lambda x: x.view(-1, S, V, C_in).permute(0, 1, 3, 2).contiguous().view(-1, C_in, V))
    spatial_pool = co.Lambda(lambda x: x.view(-1, S, cin, V).mean(3).mean(1))
    pool = co.AvgPool1d(pool_size, stride=1)
    fc = co.Linear(cin, num_classes, channel_dim=1)
    # (the authors' final co.Lambda(lambda x: x.squeeze(-1), takes_time=True) fails forward_step under
    # continual-inference 1.2.4, which re-squeezes its output: left out)
    return co.Sequential(OrderedDict([("reshape1", reshape1), ("data_bn", data_bn), ("reshape2", reshape2),
                                      ("layers", co.Sequential(OrderedDict(blocks))),
                                      ("spatial_pool", spatial_pool), ("pool", pool), ("fc", fc)]))
