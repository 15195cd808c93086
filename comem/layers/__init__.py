"""Layer kinds: one module per kind, each stating its formulas.

=====================  ==================================================
kind                   module
=====================  ==================================================
``conv``               :mod:`comem.layers.conv`
``batchnorm``          :mod:`comem.layers.norm`
``relu`` ``swish`` …   :mod:`comem.layers.activation`
``avgpool`` ``maxpool``:mod:`comem.layers.pool`
``linear``             :mod:`comem.layers.linear`
``mean``               :mod:`comem.layers.mean`
``delay``              :mod:`comem.layers.delay`
``residual`` ``se``    :mod:`comem.layers.composite`
``temporal_subsample`` :mod:`comem.layers.subsample`
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
from .activation import DROPOUT, IDENTITY, RELU, SIGMOID, SOFTMAX, SWISH
from .composite import RESIDUAL, SQUEEZE_EXCITE
from .conv import CONV
from .delay import DELAY
from .linear import LINEAR
from .mean import MEAN
from .norm import BATCHNORM
from .pool import AVGPOOL, MAXPOOL
from .subsample import TEMPORAL_SUBSAMPLE

#: every layer kind, by the name a spec uses
KINDS: dict = {}


def register(kind):
    """Make a layer kind available to specs, with the weights of any op of
    its own under every counting convention (``kind.op_weights``)."""
    from ..conventions import add_ops

    add_ops(kind.op_weights, kind.name)
    KINDS[kind.name] = kind
    return kind


for _kind in (CONV, BATCHNORM, RELU, SWISH, SIGMOID, SOFTMAX, DROPOUT, IDENTITY, AVGPOOL, MAXPOOL, LINEAR, DELAY,
              RESIDUAL, SQUEEZE_EXCITE, TEMPORAL_SUBSAMPLE, MEAN):
    register(_kind)
