"""Layer kinds: one module per kind, each stating its formulas.

=====================  ==================================================
kind                   module
=====================  ==================================================
``conv``               :mod:`comem.layers.conv`
``batchnorm``          :mod:`comem.layers.norm`
``relu`` ``swish`` …   :mod:`comem.layers.activation`
``avgpool`` ``maxpool``:mod:`comem.layers.pool`
``linear``             :mod:`comem.layers.linear`
``delay``              :mod:`comem.layers.delay`
``residual`` ``se``    :mod:`comem.layers.composite`
``temporal_subsample`` :mod:`comem.layers.subsample`
=====================  ==================================================

Merging branches (residual sums, SE products, concatenation) and the delay
that aligns them are evaluated by :mod:`comem.walker`.
"""
from .activation import DROPOUT, IDENTITY, RELU, SIGMOID, SOFTMAX, SWISH
from .composite import Residual, SqueezeExcite
from .conv import Conv
from .delay import Delay
from .linear import Linear
from .norm import BatchNorm
from .pool import AVGPOOL, MAXPOOL
from .subsample import TemporalSubsample

KINDS = {k.name: k for k in (
    Conv(), BatchNorm(), RELU, SWISH, SIGMOID, SOFTMAX, DROPOUT, IDENTITY, AVGPOOL, MAXPOOL, Linear(), Delay(),
    Residual(), SqueezeExcite(), TemporalSubsample(),
)}
