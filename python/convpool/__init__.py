"""convpool: fast, exact CNN convolution and pooling kernels with NumPy bindings.

Every kernel function takes and returns NumPy arrays (float32 or float64, NCHW or CHW) and
releases the GIL while it runs. See README.md for the exact semantics. On top of them:
``convpool.nn`` (layers and losses), ``convpool.optim``, ``convpool.training`` (fit, evaluate,
checkpoints), ``convpool.datasets`` (bundled MNIST), ``convpool.inspection`` and ``convpool.plots``.
"""

from ._core import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    batch_norm2d,
    batch_norm2d_backward,
    build_info,
    conv2d,
    conv2d_backward,
    get_num_threads,
    lp_pool2d,
    lp_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    relu,
    relu_backward,
    set_num_threads,
    stochastic_pool2d,
    stochastic_pool2d_backward,
)
from ._rng import manual_seed
from . import datasets, inspection, models, nn, optim, plots, training  # noqa: E402  (need _core first)

__version__ = "0.1.0"

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "batch_norm2d",
    "batch_norm2d_backward",
    "build_info",
    "conv2d",
    "conv2d_backward",
    "get_num_threads",
    "lp_pool2d",
    "lp_pool2d_backward",
    "manual_seed",
    "max_pool2d",
    "max_pool2d_backward",
    "relu",
    "relu_backward",
    "set_num_threads",
    "stochastic_pool2d",
    "stochastic_pool2d_backward",
]
