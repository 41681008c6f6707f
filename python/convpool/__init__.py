"""convpool: fast, exact CNN convolution and pooling kernels with NumPy bindings.

Every kernel function takes and returns NumPy arrays (float32 or float64, NCHW or CHW) and
releases the GIL while it runs. docs/semantics.md has the exact semantics. On top of them:
``convpool.nn`` (layers and losses), ``convpool.optim``, ``convpool.training`` (fit, evaluate,
checkpoints), ``convpool.distributed`` (data-parallel training over MPI), ``convpool.datasets``
(bundled MNIST), ``convpool.inspection`` and ``convpool.plots``.
"""

from . import _core, _functions, _ops
from ._core import *  # noqa: F401,F403  the compiled kernels and utilities; their signatures: _core.pyi

# The kernels take torch.nn.functional's input= keyword and report argument errors without
# printing the arrays (_functions.py).
for _name in _ops.compiled_functions():
    globals()[_name] = _functions.exported(getattr(_core, _name))
del _name

from ._one_d import *  # noqa: E402,F401,F403  the 1-D functions
from ._fractional import fractional_max_pool2d  # noqa: E402
from ._rng import manual_seed  # noqa: E402
from . import datasets, distributed, inspection, models, nn, optim, plots, training  # noqa: E402  (need _core first)

__version__ = "0.1.0"

__all__ = sorted(_ops.functions() + _ops.classes() + list(_ops.UTILITIES))
