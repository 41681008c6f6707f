"""convpool: fast, exact CNN convolution and pooling kernels with NumPy bindings.

Every kernel function takes and returns NumPy arrays (float32 or float64, NCHW or CHW) and
releases the GIL while it runs. docs/semantics.md has the exact semantics. On top of them:
``convpool.nn`` (layers and losses), ``convpool.optim``, ``convpool.training`` (fit, evaluate,
checkpoints), ``convpool.distributed`` (data-parallel training over MPI), ``convpool.datasets``
(bundled MNIST), ``convpool.inspection`` and ``convpool.plots``.
"""

from ._core import (
    PackedConv2dWeight,
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    batch_norm2d,
    batch_norm2d_backward,
    build_info,
    conv2d,
    conv2d_backward,
    conv_transpose2d,
    conv_transpose2d_backward,
    fractional_max_pool2d_backward,
    get_num_threads,
    lp_pool2d,
    lp_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_unpool2d,
    max_unpool2d_backward,
    relu,
    relu_backward,
    set_num_threads,
    stochastic_pool2d,
    stochastic_pool2d_backward,
)
from ._functions import exported

# The kernels take torch.nn.functional's input= keyword and report argument errors without
# printing the arrays (_functions.py).
adaptive_avg_pool2d = exported(adaptive_avg_pool2d)
adaptive_avg_pool2d_backward = exported(adaptive_avg_pool2d_backward)
adaptive_max_pool2d = exported(adaptive_max_pool2d)
adaptive_max_pool2d_backward = exported(adaptive_max_pool2d_backward)
avg_pool2d = exported(avg_pool2d)
avg_pool2d_backward = exported(avg_pool2d_backward)
batch_norm2d = exported(batch_norm2d)
batch_norm2d_backward = exported(batch_norm2d_backward)
conv2d = exported(conv2d)
conv2d_backward = exported(conv2d_backward)
conv_transpose2d = exported(conv_transpose2d)
conv_transpose2d_backward = exported(conv_transpose2d_backward)
fractional_max_pool2d_backward = exported(fractional_max_pool2d_backward)
lp_pool2d = exported(lp_pool2d)
lp_pool2d_backward = exported(lp_pool2d_backward)
max_pool2d = exported(max_pool2d)
max_pool2d_backward = exported(max_pool2d_backward)
max_unpool2d = exported(max_unpool2d)
max_unpool2d_backward = exported(max_unpool2d_backward)
relu = exported(relu)
relu_backward = exported(relu_backward)
stochastic_pool2d = exported(stochastic_pool2d)
stochastic_pool2d_backward = exported(stochastic_pool2d_backward)
from ._one_d import (
    avg_pool1d,
    avg_pool1d_backward,
    conv1d,
    conv1d_backward,
    max_pool1d,
    max_pool1d_backward,
)
from ._fractional import fractional_max_pool2d
from ._rng import manual_seed
from . import datasets, distributed, inspection, models, nn, optim, plots, training  # noqa: E402  (need _core first)

__version__ = "0.1.0"

__all__ = [
    "PackedConv2dWeight",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "avg_pool1d",
    "avg_pool1d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "batch_norm2d",
    "batch_norm2d_backward",
    "build_info",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "fractional_max_pool2d",
    "fractional_max_pool2d_backward",
    "get_num_threads",
    "lp_pool2d",
    "lp_pool2d_backward",
    "manual_seed",
    "max_pool1d",
    "max_pool1d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_unpool2d",
    "max_unpool2d_backward",
    "relu",
    "relu_backward",
    "set_num_threads",
    "stochastic_pool2d",
    "stochastic_pool2d_backward",
]
