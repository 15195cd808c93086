"""Layer kinds: one module per kind, each stating its formulas.

=====================  ==================================================
kind                   module
=====================  ==================================================
``conv``               :mod:`comem.layers.conv`
``batchnorm`` …        :mod:`comem.layers.norm` (also group/layer/instance norm)
``relu`` ``swish`` …   :mod:`comem.layers.activation`
``flatten``            :mod:`comem.layers.flatten`
``parallel``           :mod:`comem.layers.parallel`
``avgpool`` ``maxpool``:mod:`comem.layers.pool`
``linear``             :mod:`comem.layers.linear`
``mean``               :mod:`comem.layers.mean`
``delay``              :mod:`comem.layers.delay`
``residual`` ``se``    :mod:`comem.layers.composite`
``temporal_subsample`` :mod:`comem.layers.subsample`
``attention``          :mod:`comem.layers.attention`
``transformer_encoder``:mod:`comem.layers.transformer`
``positional_encoding``:mod:`comem.layers.positional`
``rnn`` ``gru`` ``lstm``:mod:`comem.layers.rnn`
``graph_conv``         :mod:`comem.layers.graph` (also ``spatial_attention``)
``transformer_decoder``:mod:`comem.layers.decoder` (also ``class_token``)
=====================  ==================================================

Each module states everything about its kind: output shape, params, work
per clip and per step, the state formula (once, as text over named symbols),
delay and receptive field, the library's transient, and the PyTorch modules
that implement it for ``comem validate``.  Composite kinds (``residual``,
``se``) expand into parallel branches whose alignment delays use the
``delay`` kind's formula.  A new kind is a module here plus one
:func:`register` line (its new ops carry their weight under every counting
convention in ``op_weights``).
"""
from comem.layers.attention import ATTENTION
from comem.layers.activation import DROPOUT, ELU, GELU, HARDSIGMOID, HARDSWISH, IDENTITY, LEAKY_RELU, RELU, RELU6, SIGMOID, SILU, SOFTMAX, SWISH, TANH
from comem.layers.composite import RESIDUAL, SQUEEZE_EXCITE
from comem.layers.conv import CONV
from comem.layers.decoder import CLASS_TOKEN, TRANSFORMER_DECODER
from comem.layers.delay import DELAY
from comem.layers.flatten import FLATTEN
from comem.layers.graph import GRAPH_CONV, SPATIAL_ATTENTION
from comem.layers.linear import LINEAR
from comem.layers.mean import MEAN
from comem.layers.norm import BATCHNORM, GROUPNORM, INSTANCENORM, LAYERNORM
from comem.layers.parallel import PARALLEL
from comem.layers.pool import AVGPOOL, MAXPOOL
from comem.layers.positional import POSITIONAL_ENCODING
from comem.layers.rnn import GRU, LSTM, RNN
from comem.layers.subsample import TEMPORAL_SUBSAMPLE
from comem.layers.transformer import TRANSFORMER_ENCODER
from comem.layers.multiscale_block import MULTISCALE_BLOCK
from comem.layers.patch_embed import PATCH_EMBED
from comem.layers.sequence_pool import SEQUENCE_POOL
from comem.layers.spacetime_position import SPACETIME_POSITION

#: every layer kind, by the name a spec uses
KINDS: dict = {}


def register(kind):
    """Make a layer kind available to specs, with the weights of any op of
    its own under every counting convention (``kind.op_weights``).  A name
    already taken is refused (never silently replaced); :func:`unregister`
    first to replace a kind."""
    from comem.accounting.conventions import add_ops
    from comem.errors import ComemError

    if kind.name in KINDS:
        raise ComemError(f"layer kind {kind.name!r} is already registered; choose another name "
                         "or unregister the old kind first")
    add_ops(kind.op_weights, kind.name)
    KINDS[kind.name] = kind
    return kind


def unregister(name: str):
    """Remove a layer kind and the weights of the ops only it declared."""
    from comem.accounting.conventions import remove_ops

    kind = KINDS.pop(name)
    others = {op for k in KINDS.values() for op in k.op_weights}
    remove_ops([op for op in kind.op_weights if op not in others])
    return kind


for _kind in (CONV, BATCHNORM, LAYERNORM, GROUPNORM, INSTANCENORM,
              RELU, RELU6, LEAKY_RELU, ELU, GELU, SWISH, SILU, HARDSWISH, SIGMOID, HARDSIGMOID, TANH, SOFTMAX, DROPOUT,
              IDENTITY, AVGPOOL, MAXPOOL, LINEAR, FLATTEN, MEAN, DELAY, RESIDUAL, SQUEEZE_EXCITE, PARALLEL,
              TEMPORAL_SUBSAMPLE, ATTENTION, TRANSFORMER_ENCODER, POSITIONAL_ENCODING, RNN, GRU, LSTM,
              GRAPH_CONV, SPATIAL_ATTENTION, TRANSFORMER_DECODER, CLASS_TOKEN):
    register(_kind)
for _kind in (PATCH_EMBED, SPACETIME_POSITION, MULTISCALE_BLOCK, SEQUENCE_POOL):  # video transformers (MViT)
    register(_kind)
