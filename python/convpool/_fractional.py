"""Fractional max pooling, PyTorch's fractional_max_pool2d: the compiled kernel takes each plane's
pair of samples; this function draws them (from ``seed``, or from the package generator) and
turns an ``output_ratio`` into an ``output_size`` as torch.nn.functional does."""

import operator

import numpy as np

from . import _core
from ._arguments import ratio_pair
from ._functions import numpy_facing
from ._rng import generator


def _seed(seed):
    """A seed for np.random.default_rng: a non-negative int (NumPy's rule), checked here so that the
    error names this function."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"fractional_max_pool2d: seed must be None or a non-negative int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"fractional_max_pool2d: seed={seed} must be non-negative")
    return operator.index(seed)


@numpy_facing
def fractional_max_pool2d(x, kernel_size, output_size=None, output_ratio=None, return_indices=False, seed=None,
                          _random_samples=None, out=None):
    """Fractional max pooling (Graham 2014) with PyTorch's pseudo-random windows.

    ``output_size`` (an int or a pair) or else ``output_ratio`` (a number or a pair in (0, 1):
    each output size is int(input size * ratio)) sets the output. Each (image, channel) plane draws
    two samples in [0, 1), the width's then the height's: from ``np.random.default_rng(seed)`` when
    ``seed`` is given (the same windows for any thread count), else from the package generator
    (``convpool.manual_seed``). ``_random_samples``, an (N, C, 2) array of x's dtype, gives them
    instead: with PyTorch's samples the outputs and indices are PyTorch's. Returns the output, and
    with ``return_indices`` the int64 flat index of each maximum in its H x W plane; ``out`` (an
    array, or with ``return_indices`` a pair) receives them.

    Shape:
        out: (N, C, oH, oW), the output_size (or int(H * ratio), int(W * ratio)); each window
        kernel_size, with oH + kH - 1 <= H and likewise for W.

    Example:
        >>> x = np.arange(25.0).reshape(1, 1, 5, 5)
        >>> y = cp.fractional_max_pool2d(x, 2, output_size=3, seed=0)
        >>> y.shape, bool(np.all(np.isin(y, x)))
        ((1, 1, 3, 3), True)
    """
    x = x if isinstance(x, np.ndarray) else np.asarray(x)
    if x.ndim not in (3, 4):
        raise ValueError(f"fractional_max_pool2d: x must be (C, H, W) or (N, C, H, W), got shape {x.shape}")
    if output_size is None:
        if output_ratio is None:
            raise ValueError("fractional_max_pool2d: give output_size or output_ratio")
        ratio = ratio_pair("fractional_max_pool2d", output_ratio)
        output_size = (int(x.shape[-2] * ratio[0]), int(x.shape[-1] * ratio[1]))
    if _random_samples is None:
        planes = (x.shape[0] if x.ndim == 4 else 1, x.shape[-3])
        draws = np.random.default_rng(_seed(seed)) if seed is not None else generator()
        dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        _random_samples = draws.random(planes + (2,), dtype=dtype)  # [0, 1) in x's own precision
    if out is not None and not return_indices:
        out = (out, None)
    values, indices = _core.fractional_max_pool2d(x, kernel_size, output_size, _random_samples, out)
    return (values, indices) if return_indices else values
