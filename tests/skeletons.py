"""Reference PyTorch models of ST-GCN, AGCN and S-TR and their continual
forms, written for the tests after LukasHedegaard/continual-skeletons
(models/base.py, a_gcn/a_gcn.py, s_tr/s_tr.py, the Co* models) — module for
module, so ptflops, ``get_state()`` and the library's ``delay`` can be read
off them.  Independent of comem's specs and formulas.

The bodies of a sample are folded into the batch (``N·M``), as the
authors' models do after their ``data_bn``.
"""
import math

import continual as co
import torch
from torch import nn


class GraphConvolution(nn.Module):
    """``models/base.py`` GraphConvolution, or ``a_gcn.py``
    AdaptiveGraphConvolution when ``adaptive``."""

    def __init__(self, cin, cout, V, K=3, adaptive=False, coff_embedding=4):
        super().__init__()
        A = torch.rand(K, V, V)
        self.graph_attn = nn.Parameter(A.clone())
        self.A = nn.Parameter(A.clone(), requires_grad=False)
        self.K, self.adaptive = K, adaptive
        self.inter_c = cout // coff_embedding
        self.g_conv = nn.ModuleList(nn.Conv2d(cin, cout, 1) for _ in range(K))
        if adaptive:
            self.a_conv = nn.ModuleList(nn.Conv2d(cin, self.inter_c, 1) for _ in range(K))
            self.b_conv = nn.ModuleList(nn.Conv2d(cin, self.inter_c, 1) for _ in range(K))
            self.soft = nn.Softmax(-2)
        self.gcn_residual = (nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout)) if cin != cout
                             else (lambda x: x))
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()

    def forward(self, x):
        N, C, T, V = x.size()
        A = self.A + self.graph_attn if self.adaptive else self.A * self.graph_attn
        out = None
        for i in range(self.K):
            a = A[i]
            if self.adaptive:
                A1 = self.a_conv[i](x).permute(0, 3, 1, 2).contiguous().view(N, V, self.inter_c * T)
                A2 = self.b_conv[i](x).view(N, self.inter_c * T, V)
                a = self.soft(torch.matmul(A1, A2) / A1.size(-1)) + a
            z = self.g_conv[i](torch.matmul(x.view(N, C * T, V), a).view(N, C, T, V))
            out = z if out is None else z + out
        out = self.bn(out)
        out += self.gcn_residual(x)
        return self.relu(out)


class SpatialAttention(nn.Module):
    """``s_tr.py`` SpatialAttention (Nh heads, no relative or adjacency
    terms), with its forward's steps and locals kept (they decide what is
    alive when)."""

    def __init__(self, cin, dk, dv, Nh):
        super().__init__()
        self.dk, self.dv, self.Nh = dk, dv, Nh
        self.qkv_conv = nn.Conv2d(cin, 2 * dk + dv, 1)
        self.attn_out = nn.Conv2d(dv, dv, 1)

    def forward(self, x):
        B, _, T, V = x.size()
        flat_q, flat_k, flat_v, q, k, v = self.compute_flat_qkv(x)
        logits = torch.matmul(flat_q.transpose(2, 3), flat_k)
        weights = torch.softmax(logits, dim=-1)
        attn_out = torch.matmul(weights, flat_v.transpose(2, 3))
        attn_out = torch.reshape(attn_out, (B, self.Nh, T, V, self.dv // self.Nh))
        attn_out = attn_out.permute(0, 1, 4, 2, 3)
        batch, Nh, dv, T, V = attn_out.size()
        attn_out = torch.reshape(attn_out, (batch, Nh * dv, T, V))
        return self.attn_out(attn_out)

    def compute_flat_qkv(self, x):
        qkv = self.qkv_conv(x)
        N, _, T, V = qkv.size()
        q, k, v = torch.split(qkv, [self.dk, self.dk, self.dv], dim=1)
        q, k, v = (torch.reshape(t, (N, self.Nh, t.shape[1] // self.Nh, T, V)) for t in (q, k, v))
        dkh = self.dk // self.Nh
        q = q * (dkh ** -0.5)
        flat_q = torch.reshape(q, (N, self.Nh, dkh, T * V))
        flat_k = torch.reshape(k, (N, self.Nh, dkh, T * V))
        flat_v = torch.reshape(v, (N, self.Nh, self.dv // self.Nh, T * V))
        return flat_q, flat_k, flat_v, q, k, v


class GcnUnitAttention(nn.Module):
    """``s_tr.py`` GcnUnitAttention (only_attention, data normalisation and
    skip connection on), its forward's steps and locals kept."""

    def __init__(self, cin, cout, V, K=3, Nh=8, dk_factor=0.25):
        super().__init__()
        self.A = nn.Parameter(torch.rand(K, V, V))
        self.data_bn = nn.BatchNorm1d(cin * V)
        self.attention_conv = SpatialAttention(cin, int(cout * dk_factor), cout, Nh)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.cin, self.cout = cin, cout

    def forward(self, x):
        N, C, T, V = x.size()
        x_sum = x
        x = x.permute(0, 1, 3, 2).reshape(N, C * V, T)
        x = self.data_bn(x)
        x = x.reshape(N, C, V, T).permute(0, 1, 3, 2)
        xa = x.permute(0, 2, 1, 3).reshape(-1, C, 1, V)
        attn_out = self.attention_conv(xa)
        attn_out = attn_out.reshape(N, T, -1, V).permute(0, 2, 1, 3)
        y = attn_out + x_sum if self.cin == self.cout else attn_out
        y = self.bn(y)
        return self.relu(y)


LAYERS = [(64, 1, False), (64, 1, True), (64, 1, True), (64, 1, True), (128, 2, True), (128, 1, True),
          (128, 1, True), (256, 2, True), (256, 1, True), (256, 1, True)]


def unit(kind, cin, cout, V, i):
    if kind == "s-tr" and i >= 3:
        return GcnUnitAttention(cin, cout, V)
    return GraphConvolution(cin, cout, V, adaptive=(kind == "agcn"))


class TemporalConvolution(nn.Module):
    def __init__(self, cin, cout, kernel_size=9, stride=1, padding=4):
        super().__init__()
        self.t_conv = nn.Conv2d(cin, cout, (kernel_size, 1), padding=(padding, 0), stride=(stride, 1))
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.t_conv(x))


class SpatioTemporalBlock(nn.Module):
    """``models/base.py`` SpatioTemporalBlock (the regular models)."""

    def __init__(self, gcn, cin, cout, stride=1, residual=True, padding=4):
        super().__init__()
        self.gcn = gcn
        self.tcn = TemporalConvolution(cout, cout, stride=stride, padding=padding)
        self.relu = nn.ReLU()
        self.shrink = 4 - padding
        if not residual:
            self.residual = lambda x: 0
        elif cin == cout and stride == 1:
            self.residual = lambda x: x
        else:
            self.residual = TemporalConvolution(cin, cout, kernel_size=1, stride=stride, padding=0)

    def forward(self, x):
        z = self.tcn(self.gcn(x))
        r = self.residual(x[:, :, self.shrink:-self.shrink] if self.shrink else x)
        return self.relu(z + r)


class Regular(nn.Module):
    """ST-GCN / AGCN / S-TR (``star``: stride one, no padding)."""

    def __init__(self, kind, V=25, M=2, C=3, classes=60, star=False):
        super().__init__()
        self.M, self.V, self.C = M, V, C
        self.data_bn = nn.BatchNorm1d(M * V * C)
        blocks, cin = [], C
        for i, (cout, s, res) in enumerate(LAYERS):
            blocks.append(SpatioTemporalBlock(unit(kind, cin, cout, V, i), cin, cout, 1 if star else s, res,
                                              0 if star else 4))
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(256, classes)

    def forward(self, x):  # (N, C, T, V, M)
        N, C, T, V, M = x.size()
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).contiguous().view(N, M * V * C, T))
        x = x.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).contiguous().view(N * M, C, T, V)
        x = self.layers(x)
        x = x.view(N, M, x.size(1), -1).mean(3).mean(1)
        return self.fc(x)


def co_block(gcn, cin, cout, stride=1, residual=True, padding=4):
    """``models/base.py`` CoSpatioTemporalBlock."""
    gcn = co.forward_stepping(gcn)
    tcn = co.Sequential(co.Conv2d(cout, cout, (9, 1), padding=(padding, 0), stride=(stride, 1)),
                        nn.BatchNorm2d(cout))
    relu = nn.ReLU()
    if not residual:
        return co.Sequential(gcn, tcn, relu)
    if cin == cout and stride == 1:
        return co.Sequential(co.Residual(co.Sequential(gcn, tcn), residual_shrink=True), relu)
    res = co.Sequential(co.Conv2d(cin, cout, (1, 1), stride=(stride, 1)), nn.BatchNorm2d(cout))
    shrink = tcn.receptive_field - 2 * tcn.padding[0] != 1
    delay = tcn.delay // stride
    if shrink:
        delay = delay // 2
    return co.Sequential(co.BroadcastReduce(co.Sequential(res, co.Delay(delay, auto_shrink=shrink)),
                                            co.Sequential(gcn, tcn), auto_delay=False), relu)


def head_pool(layers, T):
    """``models/base.py`` CoModelBase.on_init_end's temporal head pool for a
    clip of ``T`` frames (``pool_size = pool_padding = -1``, the defaults):
    sized and padded from the blocks' receptive field, padding and stride."""
    rf, pad, stride = (v[0] if isinstance(v, tuple) else v for v in (layers.receptive_field, layers.padding,
                                                                      layers.stride))
    pool_size = math.ceil((T - rf + 2 * pad + 1) / stride)
    pool_padding = pool_size - math.ceil((T - rf + pad + 1) / stride)
    return co.AvgPool1d(pool_size, stride=1, padding=max(0, pool_padding))


def continual(kind, V=25, C=3, classes=60, star=False, T=300):
    """CoST-GCN / CoAGCN / CoS-TR on (N·M, C, T, V) frames, from the first
    block to the classifier (the data_bn and the body mean are frame-wise),
    its head pool built for clips of ``T`` frames as CoModelBase builds it."""
    blocks, cin = [], C
    for i, (cout, s, res) in enumerate(LAYERS):
        blocks.append(co_block(unit(kind, cin, cout, V, i), cin, cout, 1 if star else s, res, 0 if star else 4))
        cin = cout
    layers = co.Sequential(*blocks)
    spatial = co.Lambda(lambda x: x.view(-1, 2, 256, x.shape[-1]).mean(3).mean(1))
    return co.Sequential(layers, spatial, head_pool(layers, T), co.Linear(256, classes, channel_dim=1))
