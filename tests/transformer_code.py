"""The construct of LukasHedegaard/continual-transformers (not on PyPI) that
CoOadTR builds its encoder from (``continual_transformers/co_si_trans_enc.py``):
``SelectOrDelay``, a subclass of ``co.Delay`` whose ``forward`` selects the
token the single-output attention answers for (the last) while its
``forward_step`` delays as ``co.Delay`` does, in a ``co.BroadcastReduce``
with the attention and a ``reduce`` function of its own; then the layer
norms (``co.Lambda``, frame by frame) and the feed-forward residual.  Copied
construct for construct; the attention is continual-inference's
``co.SingleOutputMultiheadAttention`` (the repository's CoSiMultiheadAttention
became it).
"""
from functools import reduce
from typing import Sequence

import continual as co
import torch
from torch import Tensor, nn


class SelectOrDelay(co.Delay):
    """Select a temporal index during forward, or delay correspondingly during forward_step(s)"""

    def forward(self, x: Tensor) -> Tensor:
        assert len(x.shape) >= 3  # N, C, T
        return x[:, :, -1 - self._delay].unsqueeze(2)


def CoSiTransformerEncoder(sequence_len, embed_dim, num_heads, dropout=0.0, in_proj_bias=True, ff_hidden_dim=None,
                           ff_activation=nn.GELU()):
    mha = co.SingleOutputMultiheadAttention(embed_dim=embed_dim, num_heads=num_heads, dropout=dropout,
                                            bias=in_proj_bias, batch_first=True, embed_dim_second=True,
                                            sequence_len=sequence_len, forward_returns_attn_mask=False)
    ff_hidden_dim = ff_hidden_dim or embed_dim
    ff = co.Sequential(co.Linear(embed_dim, ff_hidden_dim, channel_dim=1), ff_activation, nn.Dropout(p=dropout),
                       co.Linear(ff_hidden_dim, embed_dim, channel_dim=1), nn.Dropout(p=dropout))

    def sum_last_pairs(inputs: Sequence[Tensor]) -> Tensor:
        if inputs[0].shape != inputs[1].shape:
            T_min = min(inputs[i].shape[2] for i in range(len(inputs)))
            inputs = [inp[:, :, -T_min:] for inp in inputs]
        return reduce(torch.Tensor.add, inputs[1:], inputs[0])

    return co.Sequential(
        co.BroadcastReduce(SelectOrDelay(mha.delay), mha, reduce=sum_last_pairs, auto_delay=False),
        co.Lambda(nn.LayerNorm(embed_dim), takes_time=False),
        co.Residual(ff),
        co.Lambda(nn.LayerNorm(embed_dim), takes_time=False),
    )


def co_oadtr_like(features=12, embed=16, heads=4, seq=6, ff=24, classes=5):
    """A CoOadTR-b1-like model: linear encoding, one single-output layer, a head."""
    return co.Sequential(co.Linear(features, embed, channel_dim=1),
                         CoSiTransformerEncoder(seq, embed, heads, ff_hidden_dim=ff),
                         co.Linear(embed, classes, channel_dim=1))
