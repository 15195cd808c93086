"""A small model file for CI's wheel check: `comem import .ci/wheel-model.py:make`."""
import torch
from torch import nn


def make():
    return nn.Sequential(
        nn.Conv3d(3, 8, (3, 3, 3), padding=(0, 1, 1), bias=False),
        nn.BatchNorm3d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )
