"""Linear, and Flatten, which turns feature maps into its input."""

import math

import numpy as np

from threadpoolctl import ThreadpoolController

from .._arguments import integer
from .module import Module, uniform_parameter

__all__ = ["Flatten", "Linear"]


_blas_controller = None


def _one_blas_thread():
    """A context in which NumPy's BLAS runs on the calling thread only.

    A threaded BLAS (OpenBLAS) leaves its worker threads spinning for a long while after each
    call; they then take the cores from convpool's OpenMP kernels and make the next convolution
    or pooling several times slower. A CNN's linear layers are too small to gain from threads.
    """
    global _blas_controller
    if _blas_controller is None:
        _blas_controller = ThreadpoolController().select(user_api="blas")
    return _blas_controller.limit(limits=1)


class Linear(Module):
    """y = x @ weight.T + bias over the last axis; weight (out_features, in_features).

    Initialised as PyTorch does: uniform in ±1/sqrt(in_features).

    Args:
        in_features, out_features: sizes of the last axis in and out.
        bias: whether the layer adds a learned bias.

    Shape:
        input: (*, in_features) -> output: (*, out_features).

    Example:
        >>> cp.manual_seed(0)
        >>> cp.nn.Linear(4, 2)(np.ones((3, 4), np.float32)).shape
        (3, 2)
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = integer("Linear", "in_features", in_features)
        self.out_features = integer("Linear", "out_features", out_features)
        bound = 1.0 / math.sqrt(in_features)
        self.weight = uniform_parameter((out_features, in_features), bound)
        self.bias = uniform_parameter((out_features,), bound) if bias else None

    layouts = ("nchw", "nhwc")

    def forward(self, x):
        if self.layout == "nhwc" and x.ndim == 4:
            raise ValueError(f"Linear: a 4-D input of shape {x.shape} in layout 'nhwc' would be transformed over "
                             f"its channels, not its last NCHW axis; flatten it first (nn.Flatten)")
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear: input of shape {x.shape} has {x.shape[-1]} features, "
                f"expected in_features={self.in_features}"
            )
        self.save_for_backward(input=x)
        with _one_blas_thread():
            y = x @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data
        return y

    def backward(self, grad_output, need_input_grad=True):
        saved_input = self.saved_for_backward().input
        rows = grad_output.reshape(-1, self.out_features)
        with _one_blas_thread():
            self.weight.accumulate(rows.T @ saved_input.reshape(-1, self.in_features))
            grad_input = grad_output @ self.weight.data if need_input_grad else None
        if self.bias is not None:
            self.bias.accumulate(rows.sum(axis=0))
        return grad_input

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Flattens axes start_dim..end_dim into one (by default all but the batch axis).

    Args:
        start_dim, end_dim: the first and last axes flattened into one.

    Shape:
        (N, C, H, W) -> (N, C*H*W) by default.

    Example:
        >>> cp.nn.Flatten()(np.ones((2, 3, 4, 5))).shape
        (2, 60)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    layouts = ("nchw", "nhwc")

    def forward(self, x):
        self.save_for_backward(input_shape=x.shape)
        # Channels last, the axes are those of the (N, C, H, W) view, so that the features come in
        # the NCHW order in either layout and a following Linear keeps its weight.
        channels_last = self.layout == "nhwc" and x.ndim == 4
        logical = np.moveaxis(x, 3, 1) if channels_last else x
        start = self.start_dim % x.ndim
        end = self.end_dim % x.ndim
        if channels_last and start == end:
            return x
        # The flattened size spelled out: -1 cannot be inferred for an empty batch.
        shape = logical.shape
        return logical.reshape(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])

    def backward(self, grad_output, need_input_grad=True):
        input_shape = self.saved_for_backward().input_shape
        if not need_input_grad:
            return None
        if self.layout == "nhwc" and len(input_shape) == 4 and grad_output.shape != input_shape:
            n, h, w, c = input_shape
            return np.ascontiguousarray(np.moveaxis(grad_output.reshape(n, c, h, w), 1, 3))
        return grad_output.reshape(input_shape)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
