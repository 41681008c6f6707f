"""Layers, losses and the Module protocol, named and initialised as in ``torch.nn``.

Each module's ``forward`` keeps what its ``backward(grad_output)`` needs; ``backward`` adds the
parameter gradients into ``param.grad`` and returns the gradient of the input.
"""

from .layers import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Flatten,
    FractionalMaxPool2d,
    LeakyReLU,
    Linear,
    LPPool2d,
    MaxPool2d,
    MaxUnpool2d,
    ReLU,
    StochasticPool2d,
)
from .fusion import freeze, fuse_conv_bn, fuse_conv_bn_eval
from .losses import CrossEntropyLoss, MSELoss, log_softmax, softmax
from .module import Module, Parameter, Residual, Sequential
from .one_d import AvgPool1d, Conv1d, MaxPool1d
from .to_torch import to_torch

__all__ = [
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "FractionalMaxPool2d",
    "LPPool2d",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "MaxPool1d",
    "MaxPool2d",
    "MaxUnpool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Residual",
    "Sequential",
    "StochasticPool2d",
    "freeze",
    "fuse_conv_bn",
    "fuse_conv_bn_eval",
    "log_softmax",
    "softmax",
    "to_torch",
]
