"""convpool's kernels inside PyTorch: custom operators (``torch.ops.convpool.*``) with fake-tensor
shape rules and autograd formulas that call convpool's backward kernels, functions taking and
returning tensors, and ``torch.nn`` drop-in modules.

Needs PyTorch (``pip install "convpool[torch]"``); importing convpool itself never imports torch.
"""

try:
    import torch  # noqa: F401
except ImportError as error:
    raise ImportError("convpool.torch needs PyTorch: pip install 'convpool[torch]'") from error

from . import _activation, _average_pooling, _convolution, _max_pooling, _normalization, nn  # noqa: E402
from ._activation import *  # noqa: E402,F401,F403
from ._average_pooling import *  # noqa: E402,F401,F403
from ._convolution import *  # noqa: E402,F401,F403
from ._max_pooling import *  # noqa: E402,F401,F403
from ._normalization import *  # noqa: E402,F401,F403
from .nn import *  # noqa: E402,F401,F403

# The operators by family (each module's __all__) and the drop-in modules.
__all__ = sorted(name for family in (_activation, _average_pooling, _convolution, _max_pooling, _normalization, nn)
                 for name in family.__all__)
