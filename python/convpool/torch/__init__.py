"""convpool's kernels inside PyTorch: custom operators (``torch.ops.convpool.*``) with fake-tensor
shape rules and autograd formulas that call convpool's backward kernels, functions taking and
returning tensors, and ``torch.nn`` drop-in modules.

Needs PyTorch (``pip install "convpool[torch]"``); importing convpool itself never imports torch.
"""

try:
    import torch  # noqa: F401
except ImportError as error:
    raise ImportError("convpool.torch needs PyTorch: pip install 'convpool[torch]'") from error

from ._activation import relu
from ._average_pooling import adaptive_avg_pool2d, avg_pool1d, avg_pool2d, lp_pool2d, stochastic_pool2d
from ._convolution import conv1d, conv2d, conv_transpose2d
from ._max_pooling import adaptive_max_pool2d, fractional_max_pool2d, max_pool1d, max_pool2d, max_unpool2d
from ._normalization import batch_norm
from .nn import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    FractionalMaxPool2d,
    LPPool2d,
    MaxPool1d,
    MaxPool2d,
    MaxUnpool2d,
    ReLU,
    StochasticPool2d,
    convert,
)

__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool1d", "AvgPool2d", "BatchNorm2d", "Conv1d", "Conv2d",
           "ConvTranspose2d", "FractionalMaxPool2d", "LPPool2d", "MaxPool1d", "MaxPool2d", "MaxUnpool2d", "ReLU",
           "StochasticPool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool1d", "avg_pool2d", "batch_norm",
           "conv1d", "conv2d", "conv_transpose2d", "convert", "fractional_max_pool2d", "lp_pool2d", "max_pool1d",
           "max_pool2d", "max_unpool2d", "relu", "stochastic_pool2d"]
