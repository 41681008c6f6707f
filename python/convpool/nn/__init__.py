"""Layers, losses and the Module protocol, named and initialised as in ``torch.nn``.

Each module's ``forward`` keeps what its ``backward(grad_output)`` needs; ``backward`` adds the
parameter gradients into ``param.grad`` and returns the gradient of the input.
"""

from .activation import LeakyReLU, ReLU
from .convolution import Conv1d, Conv2d, ConvTranspose2d
from .dropout import Dropout
from .fusion import freeze, fuse_conv_bn, fuse_conv_bn_eval
from .linear import Flatten, Linear
from .losses import CrossEntropyLoss, MSELoss, log_softmax, softmax
from .module import Module, Parameter, Residual, Sequential
from .normalization import BatchNorm2d
from .pooling import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    FractionalMaxPool2d,
    LPPool2d,
    MaxPool1d,
    MaxPool2d,
    MaxUnpool2d,
    StochasticPool2d,
)
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
