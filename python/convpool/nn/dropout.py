"""Dropout."""

import numpy as np

from .._rng import layer_generator
from .module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Zeroes each element with probability p in training and scales the rest by 1/(1-p).

    Args:
        p: the probability of zeroing each element, in [0, 1).
        seed: None (the package generator) or an int.

    Shape:
        any shape, kept.

    Example:
        >>> drop = cp.nn.Dropout(0.5, seed=0)
        >>> y = drop(np.ones(8))
        >>> sorted(set(y.tolist()))
        [0.0, 2.0]
        >>> drop.eval()(np.ones(3))  # the identity in evaluation
        array([1., 1., 1.])
    """

    layouts = ("nchw", "nhwc")

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p={p} must be between 0 and 1")
        self.p = p
        self._generator = layer_generator(seed)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self.save_for_backward(scale=None)
            return x
        if self.p == 1.0:
            scale = np.zeros_like(x)
        else:
            keep = self._generator.random(self._logical_shape(x), dtype=np.float32) >= self.p
            if self.layout == "nhwc" and x.ndim == 4:  # the NCHW draws, so the layouts drop the same values
                keep = keep.transpose(0, 2, 3, 1)
            scale = keep * x.dtype.type(1.0 / (1.0 - self.p))
        self.save_for_backward(scale=scale)
        return x * scale

    def _logical_shape(self, x):
        return (x.shape[0], x.shape[3], x.shape[1], x.shape[2]) if self.layout == "nhwc" and x.ndim == 4 else x.shape

    def backward(self, grad_output, need_input_grad=True):
        scale = self.saved_for_backward().scale
        if not need_input_grad:
            return None
        return grad_output if scale is None else grad_output * scale

    def extra_repr(self):
        return f"p={self.p}"
