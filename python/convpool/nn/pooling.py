"""The pooling layers: max (2-D and 1-D, adaptive, fractional), max unpooling, average (2-D and
1-D, adaptive), Lp and stochastic pooling, with PyTorch's arguments plus convpool's tie and NaN
rules."""

from .. import _core
from .. import _one_d
from .._arguments import pair, single, stride_pair, stride_single
from .._fractional import fractional_max_pool2d
from .._rng import layer_generator
from .module import Module

__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool1d", "AvgPool2d", "FractionalMaxPool2d", "LPPool2d",
           "MaxPool1d", "MaxPool2d", "MaxUnpool2d", "StochasticPool2d"]


class _Pool(Module):
    """Shared argument handling of the window pooling layers: the 2-D layers read each window
    argument as a pair, the 1-D ones (``_dimensions = 1``) as an int."""

    _dimensions = 2

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = self._window("kernel_size", kernel_size, 1)
        stride_of = stride_pair if self._dimensions == 2 else stride_single
        self.stride = stride_of(type(self).__name__, stride, self.kernel_size)

    def _window(self, name, value, minimum):
        return (pair if self._dimensions == 2 else single)(type(self).__name__, name, value, minimum)


class _RoutedByIndices(Module):
    """A pooling whose backward routes the gradient by the forward's indices: ``_pool(x,
    return_indices=True, **_arguments())`` and ``_pool_backward(grad, x, indices, **_arguments())``."""

    def forward(self, x):
        y, indices = self._pool(x, return_indices=True, **self._arguments())
        self.save_for_backward(input=x, indices=indices)
        return y

    def backward(self, grad_output, need_input_grad=True):
        saved = self.saved_for_backward()
        if not need_input_grad:
            return None
        return self._pool_backward(grad_output, saved.input, saved.indices, **self._arguments())


class _MaxPooling(_Pool, _RoutedByIndices):
    """Max pooling through ``_pool`` and ``_pool_backward`` (max_pool2d's or max_pool1d's)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, tie_break="first",
                 nan="propagate"):
        super().__init__(kernel_size, stride)
        self.padding = self._window("padding", padding, 0)
        self.dilation = self._window("dilation", dilation, 1)
        self.ceil_mode, self.tie_break, self.nan = ceil_mode, tie_break, nan

    def _arguments(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, ceil_mode=self.ceil_mode, tie_break=self.tie_break,
                    nan=self.nan)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}, tie_break={self.tie_break!r}")


class _AveragePooling(_Pool):
    """Average pooling through ``_pool`` and ``_pool_backward`` (avg_pool2d's or avg_pool1d's)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__(kernel_size, stride)
        self.padding, self.ceil_mode = self._window("padding", padding, 0), ceil_mode
        self.count_include_pad = count_include_pad

    def _arguments(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad)

    def forward(self, x):
        self.save_for_backward(input_shape=x.shape)
        return self._pool(x, **self._arguments())

    def backward(self, grad_output, need_input_grad=True):
        input_shape = self.saved_for_backward().input_shape
        if not need_input_grad:
            return None
        return self._pool_backward(grad_output, input_shape, **self._arguments())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_MaxPooling):
    """Max pooling; ``tie_break`` ("first", "last" or "split") picks who gets a tied window's gradient.

    Args:
        kernel_size, stride, padding, dilation, ceil_mode: as max_pool2d's.
        tie_break: "first", "last" or "split".
        nan: "propagate" or "ignore".

    Shape:
        input: (N, C, H, W) -> output: (N, C, H_out, W_out), max_pool2d's formula; channels last
        ((N, H, W, C) -> (N, H_out, W_out, C)) after ``to_layout("nhwc")``.

    Example:
        >>> pool = cp.nn.MaxPool2d((1, 2), stride=1, tie_break="split")
        >>> x = np.array([[[[0.0, 5.0, 5.0, 0.0]]]])
        >>> pool(x)
        array([[[[5., 5., 5.]]]])
        >>> pool.backward(np.ones((1, 1, 1, 3)))
        array([[[[0. , 1.5, 1.5, 0. ]]]])
    """

    _pool = staticmethod(_core.max_pool2d)
    _pool_backward = staticmethod(_core.max_pool2d_backward)
    layouts = ("nchw", "nhwc")

    def _arguments(self):
        return dict(super()._arguments(), layout=self.layout)


class MaxUnpool2d(_Pool):
    """The partial inverse of MaxPool2d: ``forward(x, indices, output_size=None)`` puts each value
    of x where its index (from ``MaxPool2d(..., return_indices)``, or max_pool2d) points, zeros
    elsewhere; ``backward`` returns the gradient with respect to x.

    Args:
        kernel_size, stride, padding: those of the pooling it inverts.

    Shape:
        input: (N, C, H, W) and its indices -> output: (N, C, H_out, W_out) with
        H_out = (H - 1)*sH - 2*pH + kH unless output_size is given.

    Example:
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> y, indices = cp.max_pool2d(x, 2, return_indices=True)
        >>> cp.nn.MaxUnpool2d(2)(y, indices)[0, 0]
        array([[ 0.,  0.,  0.,  0.],
               [ 0.,  5.,  0.,  7.],
               [ 0.,  0.,  0.,  0.],
               [ 0., 13.,  0., 15.]])
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride)
        self.padding = self._window("padding", padding, 0)

    def _arguments(self, output_size):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    output_size=output_size)

    def forward(self, x, indices, output_size=None):
        self.save_for_backward(indices=indices, output_size=output_size)
        return _core.max_unpool2d(x, indices, **self._arguments(output_size))

    def backward(self, grad_output, need_input_grad=True):
        saved = self.saved_for_backward()
        if not need_input_grad:
            return None
        return _core.max_unpool2d_backward(grad_output, saved.indices, **self._arguments(saved.output_size))

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveMaxPool2d(_RoutedByIndices):
    """Adaptive max pooling to ``output_size`` (an int, or a pair whose entries may be None to keep
    that size), with MaxPool2d's ``tie_break`` and ``nan``.

    Args:
        output_size: an int or an (h, w) pair, None keeping that input size.
        tie_break, nan: as MaxPool2d's.

    Shape:
        input: (N, C, H, W) -> output: (N, C, h, w).

    Example:
        >>> cp.nn.AdaptiveMaxPool2d((2, None))(np.arange(24.0).reshape(1, 1, 4, 6)).shape
        (1, 1, 2, 6)
    """

    def __init__(self, output_size, tie_break="first", nan="propagate"):
        super().__init__()
        self.output_size, self.tie_break, self.nan = output_size, tie_break, nan

    _pool = staticmethod(_core.adaptive_max_pool2d)
    _pool_backward = staticmethod(_core.adaptive_max_pool2d_backward)

    def _arguments(self):
        return dict(output_size=self.output_size, tie_break=self.tie_break, nan=self.nan)

    def extra_repr(self):
        return f"output_size={self.output_size!r}, tie_break={self.tie_break!r}"


class FractionalMaxPool2d(Module):
    """Fractional max pooling (Graham 2014) to ``output_size`` or ``output_ratio``, with
    PyTorch's windows: each call draws fresh window offsets from the layer's generator (seeded by
    ``seed``, or from ``convpool.manual_seed``'s generator), in training and eval mode alike, as
    torch.nn.FractionalMaxPool2d does.

    Args:
        kernel_size: an int or a pair.
        output_size: an int or a pair; or else output_ratio, a number or a pair in (0, 1).
        seed: None (the package generator) or an int, for the windows' samples.

    Shape:
        input: (N, C, H, W) -> output: (N, C, oH, oW).

    Example:
        >>> cp.nn.FractionalMaxPool2d(2, output_ratio=0.5, seed=0)(np.ones((1, 1, 8, 8))).shape
        (1, 1, 4, 4)
    """

    def __init__(self, kernel_size, output_size=None, output_ratio=None, seed=None):
        super().__init__()
        if output_size is None and output_ratio is None:
            raise ValueError("FractionalMaxPool2d: give output_size or output_ratio")
        self.kernel_size, self.output_size, self.output_ratio = kernel_size, output_size, output_ratio
        self._generator = layer_generator(seed)

    def forward(self, x):
        y, indices = fractional_max_pool2d(x, self.kernel_size, self.output_size, self.output_ratio,
                                           return_indices=True, seed=int(self._generator.integers(0, 2**63)))
        self.save_for_backward(input=x, indices=indices)
        return y

    def backward(self, grad_output, need_input_grad=True):
        saved = self.saved_for_backward()
        if not need_input_grad:
            return None
        return _core.fractional_max_pool2d_backward(grad_output, saved.input, saved.indices)

    def extra_repr(self):
        size = f"output_size={self.output_size!r}" if self.output_size is not None else \
            f"output_ratio={self.output_ratio!r}"
        return f"kernel_size={self.kernel_size!r}, {size}"


class AvgPool2d(_AveragePooling):
    """

    Args:
        kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override: as avg_pool2d's.

    Shape:
        input: (N, C, H, W) -> output: (N, C, H_out, W_out), avg_pool2d's formula; channels last
        ((N, H, W, C) -> (N, H_out, W_out, C)) after ``to_layout("nhwc")``.

    Example:
        >>> cp.nn.AvgPool2d(2)(np.arange(16.0).reshape(1, 1, 4, 4))
        array([[[[ 2.5,  4.5],
                 [10.5, 12.5]]]])
    """
    _pool = staticmethod(_core.avg_pool2d)
    _pool_backward = staticmethod(_core.avg_pool2d_backward)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        self.divisor_override = divisor_override

    layouts = ("nchw", "nhwc")

    def _arguments(self):
        return dict(super()._arguments(), divisor_override=self.divisor_override, layout=self.layout)


class LPPool2d(_Pool):
    """``(sum over the window of |x|^p)^(1/p)``; norm_type=2 is L2 pooling.

    Args:
        norm_type: p, a positive number (inf is the max norm).
        kernel_size, stride, ceil_mode: as lp_pool2d's.

    Shape:
        input: (N, C, H, W) -> output: (N, C, H_out, W_out).

    Example:
        >>> cp.nn.LPPool2d(2, 2)(np.array([[[[3.0, -4.0], [0.0, 0.0]]]]))
        array([[[[5.]]]])
    """

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__(kernel_size, stride)
        self.norm_type, self.ceil_mode = float(norm_type), ceil_mode

    def forward(self, x):
        self.save_for_backward(input=x)
        return _core.lp_pool2d(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def backward(self, grad_output, need_input_grad=True):
        saved_input = self.saved_for_backward().input
        if not need_input_grad:
            return None
        return _core.lp_pool2d_backward(grad_output, saved_input, self.norm_type, self.kernel_size,
                                        self.stride, self.ceil_mode)

    def extra_repr(self):
        return f"norm_type={self.norm_type:g}, kernel_size={self.kernel_size}, stride={self.stride}"


class StochasticPool2d(_Pool):
    """Stochastic pooling (Zeiler & Fergus, 2013) of non-negative input (put it after a ReLU).

    In training each call samples with a fresh seed drawn from the layer's generator (seeded by
    ``seed``, or from ``convpool.manual_seed``'s generator); in eval mode it takes the
    probability-weighted average.

    Args:
        kernel_size, stride: an int or a pair (no padding).
        seed: None (a seed drawn from the package generator per call) or an int.

    Shape:
        input: (N, C, H, W), non-negative -> output: (N, C, H_out, W_out).

    Example:
        >>> pool = cp.nn.StochasticPool2d(2, seed=0)
        >>> x = np.array([[[[1.0, 3.0], [0.0, 0.0]]]])
        >>> pool(x).item() in (1.0, 3.0)
        True
        >>> pool.eval()(x).item()  # evaluation: the probability-weighted average
        2.5
    """

    def __init__(self, kernel_size, stride=None, seed=None):
        super().__init__(kernel_size, stride)
        self._generator = layer_generator(seed)

    def forward(self, x):
        if self.training:
            seed = int(self._generator.integers(0, 2**63))
            y, indices = _core.stochastic_pool2d(x, self.kernel_size, self.stride, training=True, seed=seed,
                                                 return_indices=True)
        else:
            y, indices = _core.stochastic_pool2d(x, self.kernel_size, self.stride, training=False), None
        self.save_for_backward(input=x, indices=indices, training=self.training)
        return y

    def backward(self, grad_output, need_input_grad=True):
        saved = self.saved_for_backward()
        if not need_input_grad:
            return None
        return _core.stochastic_pool2d_backward(grad_output, saved.input, saved.indices, self.kernel_size,
                                                self.stride, training=saved.training)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (None keeps that input size); 1 is global pooling.

    PyTorch's windows, on the adaptive_avg_pool2d kernels.

    Args:
        output_size: an int or an (h, w) pair, None keeping that input size.

    Shape:
        input: (N, C, H, W) -> output: (N, C, h, w); (N, H, W, C) -> (N, h, w, C) after
        ``to_layout("nhwc")``.

    Example:
        >>> cp.nn.AdaptiveAvgPool2d(1)(np.arange(16.0).reshape(1, 1, 4, 4))
        array([[[[7.5]]]])
    """

    layouts = ("nchw", "nhwc")

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        self.save_for_backward(input_shape=x.shape)
        return _core.adaptive_avg_pool2d(x, self.output_size, layout=self.layout)

    def backward(self, grad_output, need_input_grad=True):
        input_shape = self.saved_for_backward().input_shape
        if not need_input_grad:
            return None
        return _core.adaptive_avg_pool2d_backward(grad_output, input_shape, layout=self.layout)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class MaxPool1d(_MaxPooling):
    """Max pooling over the last axis; ``tie_break`` and ``nan`` as in MaxPool2d.

    Args:
        kernel_size, stride, padding, dilation, ceil_mode, tie_break, nan: as max_pool1d's.

    Shape:
        input: (N, C, L) -> output: (N, C, L_out).

    Example:
        >>> cp.nn.MaxPool1d(2)(np.array([[[1.0, 3.0, 2.0, 0.0]]]))
        array([[[3., 2.]]])
    """

    _dimensions = 1
    _pool = staticmethod(_one_d.max_pool1d)
    _pool_backward = staticmethod(_one_d.max_pool1d_backward)


class AvgPool1d(_AveragePooling):
    """

    Args:
        kernel_size, stride, padding, ceil_mode, count_include_pad: as avg_pool1d's.

    Shape:
        input: (N, C, L) -> output: (N, C, L_out).

    Example:
        >>> cp.nn.AvgPool1d(2)(np.array([[[1.0, 3.0, 2.0, 0.0]]]))
        array([[[2., 1.]]])
    """

    _dimensions = 1
    _pool = staticmethod(_one_d.avg_pool1d)
    _pool_backward = staticmethod(_one_d.avg_pool1d_backward)
