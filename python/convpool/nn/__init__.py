"""Layers, losses and the Module protocol, named and initialised as in ``torch.nn``.

Each module's ``forward`` keeps what its ``backward(grad_output)`` needs; ``backward`` adds the
parameter gradients into ``param.grad`` and returns the gradient of the input.
"""

from . import activation, convolution, dropout, linear, normalization, pooling
from .activation import *  # noqa: F401,F403
from .convolution import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .fusion import freeze, fuse_conv_bn, fuse_conv_bn_eval
from .linear import *  # noqa: F401,F403
from .losses import CrossEntropyLoss, MSELoss, log_softmax, softmax
from .module import Module, Parameter, Residual, Sequential
from .normalization import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .to_torch import to_torch

# The layers by family (each module's __all__), then the protocol, losses and conversions.
__all__ = sorted([name for family in (activation, convolution, dropout, linear, normalization, pooling)
                  for name in family.__all__]
                 + ["Module", "Parameter", "Residual", "Sequential", "CrossEntropyLoss", "MSELoss", "log_softmax",
                    "softmax", "freeze", "fuse_conv_bn", "fuse_conv_bn_eval", "to_torch"])
