"""The activation layers: ReLU and LeakyReLU."""

from .. import _core
from .module import Module

__all__ = ["LeakyReLU", "ReLU"]


class ReLU(Module):
    """

    Shape:
        any shape, kept.

    Example:
        >>> relu = cp.nn.ReLU()
        >>> relu(np.array([[-1.0, 2.0]]))
        array([[0., 2.]])
        >>> relu.backward(np.array([[5.0, 5.0]]))
        array([[0., 5.]])
    """
    # A Sequential folds this ReLU into a layer before it that can apply it in the same pass
    # (Module.fuses_activation).
    activation = "relu"
    layouts = ("nchw", "nhwc")

    def forward(self, x):
        output = _core.relu(x)
        self.save_for_backward(output=output)
        return output

    def backward(self, grad_output, need_input_grad=True):
        output = self.saved_for_backward().output
        return _core.relu_backward(grad_output, output) if need_input_grad else None


# An arithmetic mask, not np.where: a masked select branches on every element, and the signs of
# a convolution's output are close to random, so it runs ~20x slower.
class LeakyReLU(Module):
    """

    Args:
        negative_slope: the slope for negative inputs.

    Shape:
        any shape, kept.

    Example:
        >>> cp.nn.LeakyReLU(0.1)(np.array([-10.0, 2.0]))
        array([-1.,  2.])
    """
    layouts = ("nchw", "nhwc")

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        slope = x.dtype.type(self.negative_slope)
        positive = (x > 0).astype(x.dtype)
        slopes = positive * (1 - slope) + slope
        self.save_for_backward(slopes=slopes)
        return x * slopes

    def backward(self, grad_output, need_input_grad=True):
        slopes = self.saved_for_backward().slopes
        return grad_output * slopes if need_input_grad else None

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"
