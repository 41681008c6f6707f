"""Layers with PyTorch's names, arguments and default initialisations, on convpool's kernels."""

import math

import numpy as np
from threadpoolctl import ThreadpoolController

from .. import _core
from .._arguments import integer, pair, stride_pair
from .._fractional import fractional_max_pool2d
from .._rng import generator, layer_generator
from .module import Module, Parameter


def _uniform(shape, bound):
    return generator().uniform(-bound, bound, size=shape).astype(np.float32)


class _Convolution(Module):
    """What the convolution layers share: the channel and group checks, PyTorch's initialisation
    (weight and bias uniform in ±1/sqrt(fan_in)), and a backward through a kernel's backward
    function with the layer's _geometry()."""

    def __init__(self, owner, in_channels, out_channels, groups):
        super().__init__()
        in_channels = integer(owner, "in_channels", in_channels)
        out_channels = integer(owner, "out_channels", out_channels)
        groups = integer(owner, "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{owner}: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups

    @staticmethod
    def _padding(owner, padding, numbers, forms):
        """"valid", "same", or what `numbers` parses (the `forms` of a message)."""
        if not isinstance(padding, str):
            return numbers(owner, "padding", padding, 0)
        if padding not in ("same", "valid"):
            raise ValueError(f"{owner}: padding must be {forms}, 'valid' or 'same', got {padding!r}")
        return padding

    def _initialise(self, weight_shape, fan_in, bias):
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = Parameter(_uniform(weight_shape, bound))
        self.bias = Parameter(_uniform((self.out_channels,), bound)) if bias else None

    def _backward_through(self, backward_function, grad_output, saved_input, need_input_grad):
        needs = (("input",) if need_input_grad else ()) + ("weight",) + (("bias",) if self.bias is not None else ())
        grad_input, grad_weight, grad_bias = backward_function(grad_output, saved_input, self.weight.data,
                                                               needs=needs, **self._geometry())
        self.weight.accumulate(grad_weight)
        if self.bias is not None:
            self.bias.accumulate(grad_bias)
        return grad_input


class Conv2d(_Convolution):
    """2-D convolution; weight (out_channels, in_channels / groups, kH, kW).

    Initialised as PyTorch does: weight and bias uniform in ±1/sqrt(fan_in), with
    fan_in = in_channels / groups * kH * kW. ``padding`` is an int, a pair, "valid" or "same".
    ``winograd=True`` (convpool's own): a 3x3 stride-1 layer computes its output and its input
    gradient through Winograd's F(2x2, 3x3) where that saves work, rounded differently
    (``conv2d(winograd=True)``); it may be switched on or off at any time. ``None`` (the
    default) is ``conv2d``'s: a packed weight's own flag (``nn.freeze``), else False.

    Args:
        in_channels, out_channels: channel counts; both divisible by groups.
        kernel_size, stride, dilation: an int or a pair.
        padding: an int, a pair, "valid" or "same" (stride 1).
        groups: channel groups; groups == in_channels is a depthwise convolution.
        bias: whether the layer adds a learned bias.
        winograd: None, True or False, as conv2d's.

    Shape:
        input: (N, C_in, H, W) -> output: (N, C_out, H_out, W_out) with
        H_out = floor((H + 2*pH - dH*(kH-1) - 1) / sH) + 1, likewise W_out.

    Example:
        >>> cp.manual_seed(0)
        >>> layer = cp.nn.Conv2d(3, 8, 3, padding=1)
        >>> x = np.ones((2, 3, 16, 16), np.float32)
        >>> layer(x).shape
        (2, 8, 16, 16)
        >>> layer.backward(np.ones((2, 8, 16, 16), np.float32)).shape, layer.weight.grad.shape
        ((2, 3, 16, 16), (8, 3, 3, 3))
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, winograd=None):
        super().__init__("Conv2d", in_channels, out_channels, groups)
        if winograd is not None and not isinstance(winograd, bool):
            raise TypeError(f"Conv2d: winograd must be None, True or False, got {winograd!r}")
        self.winograd = winograd
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = pair("Conv2d", "stride", stride, 1)
        self.padding = self._padding("Conv2d", padding, pair, "an int, a pair")
        self.dilation = pair("Conv2d", "dilation", dilation, 1)
        self._initialise((self.out_channels, self.in_channels // self.groups, *self.kernel_size),
                         self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1], bias)

    def _geometry(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups,
                    winograd=self.winograd)

    fused_activations = ("relu",)

    def forward(self, x, activation=None):
        """``activation="relu"``: the following ReLU applied to each output tile while it is in the
        cache (a Sequential asks for it); the backward then takes the ReLU's gradient too."""
        bias = None if self.bias is None else self.bias.data
        weight = self.weight.data
        if isinstance(weight.base, _core.PackedConv2dWeight):  # frozen (nn.freeze): its panels are ready
            weight = weight.base
        out = _core.conv2d(x, weight, bias, activation=activation, **self._geometry())
        self.save_for_backward(input=x, relu_output=out if activation else None)
        return out

    def backward(self, grad_output, need_input_grad=True):
        saved = self.saved_for_backward()
        if saved.relu_output is not None:
            grad_output = _core.relu_backward(grad_output, saved.relu_output)
        return self._backward_through(_core.conv2d_backward, grad_output, saved.input, need_input_grad)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.winograd:
            text += ", winograd=True"
        return text


class ConvTranspose2d(_Convolution):
    """2-D transposed convolution; weight (in_channels, out_channels / groups, kH, kW).

    Initialised as PyTorch does: weight and bias uniform in ±1/sqrt(fan_in), with
    fan_in = out_channels / groups * kH * kW (PyTorch's fan of this weight layout).

    Args:
        in_channels, out_channels: channel counts; both divisible by groups.
        kernel_size, stride, padding, output_padding, dilation: an int or a pair.
        groups, bias: as Conv2d's.

    Shape:
        input: (N, C_in, H, W) -> output: (N, C_out, H_out, W_out) with
        H_out = (H - 1)*sH - 2*pH + dH*(kH-1) + output_padding + 1, likewise W_out.

    Example:
        >>> cp.manual_seed(0)
        >>> cp.nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1)(np.ones((1, 8, 7, 7), np.float32)).shape
        (1, 3, 14, 14)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1):
        owner = "ConvTranspose2d"
        super().__init__(owner, in_channels, out_channels, groups)
        self.kernel_size = pair(owner, "kernel_size", kernel_size, 1)
        self.stride = pair(owner, "stride", stride, 1)
        self.padding = pair(owner, "padding", padding, 0)
        self.output_padding = pair(owner, "output_padding", output_padding, 0)
        self.dilation = pair(owner, "dilation", dilation, 1)
        for extra, step, spread in zip(self.output_padding, self.stride, self.dilation):
            if extra >= step and extra >= spread:
                raise ValueError(f"{owner}: output_padding={self.output_padding} must be smaller than the stride "
                                 f"{self.stride} or the dilation {self.dilation} in each dimension")
        self._initialise((self.in_channels, self.out_channels // self.groups, *self.kernel_size),
                         self.out_channels // self.groups * self.kernel_size[0] * self.kernel_size[1], bias)

    def _geometry(self):
        return dict(stride=self.stride, padding=self.padding, output_padding=self.output_padding,
                    groups=self.groups, dilation=self.dilation)

    def forward(self, x):
        self.save_for_backward(input=x)
        bias = None if self.bias is None else self.bias.data
        return _core.conv_transpose2d(x, self.weight.data, bias, **self._geometry())

    def backward(self, grad_output, need_input_grad=True):
        return self._backward_through(_core.conv_transpose2d_backward, grad_output,
                                      self.saved_for_backward().input, need_input_grad)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        for name, default in (("padding", (0, 0)), ("output_padding", (0, 0)), ("dilation", (1, 1))):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


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
        self.weight = Parameter(_uniform((out_features, in_features), bound))
        self.bias = Parameter(_uniform((out_features,), bound)) if bias else None

    def forward(self, x):
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


class _Pool(Module):
    """Shared argument handling of the pooling layers."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = pair(type(self).__name__, "kernel_size", kernel_size, 1)
        self.stride = stride_pair(type(self).__name__, stride, self.kernel_size)


class MaxPool2d(_Pool):
    """Max pooling; ``tie_break`` ("first", "last" or "split") picks who gets a tied window's gradient.

    Args:
        kernel_size, stride, padding, dilation, ceil_mode: as max_pool2d's.
        tie_break: "first", "last" or "split".
        nan: "propagate" or "ignore".

    Shape:
        input: (N, C, H, W) -> output: (N, C, H_out, W_out), max_pool2d's formula.

    Example:
        >>> pool = cp.nn.MaxPool2d((1, 2), stride=1, tie_break="split")
        >>> x = np.array([[[[0.0, 5.0, 5.0, 0.0]]]])
        >>> pool(x)
        array([[[[5., 5., 5.]]]])
        >>> pool.backward(np.ones((1, 1, 1, 3)))
        array([[[[0. , 1.5, 1.5, 0. ]]]])
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 tie_break="first", nan="propagate"):
        super().__init__(kernel_size, stride)
        self.padding = pair("MaxPool2d", "padding", padding, 0)
        self.dilation = pair("MaxPool2d", "dilation", dilation, 1)
        self.ceil_mode, self.tie_break, self.nan = ceil_mode, tie_break, nan

    def _arguments(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, ceil_mode=self.ceil_mode, tie_break=self.tie_break,
                    nan=self.nan)

    def forward(self, x):
        y, indices = _core.max_pool2d(x, return_indices=True, **self._arguments())
        self.save_for_backward(input=x, indices=indices)
        return y

    def backward(self, grad_output, need_input_grad=True):
        saved = self.saved_for_backward()
        if not need_input_grad:
            return None
        return _core.max_pool2d_backward(grad_output, saved.input, saved.indices, **self._arguments())

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}, tie_break={self.tie_break!r}")


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
        self.padding = pair("MaxUnpool2d", "padding", padding, 0)

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


class AdaptiveMaxPool2d(Module):
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

    def _arguments(self):
        return dict(output_size=self.output_size, tie_break=self.tie_break, nan=self.nan)

    def forward(self, x):
        y, indices = _core.adaptive_max_pool2d(x, return_indices=True, **self._arguments())
        self.save_for_backward(input=x, indices=indices)
        return y

    def backward(self, grad_output, need_input_grad=True):
        saved = self.saved_for_backward()
        if not need_input_grad:
            return None
        return _core.adaptive_max_pool2d_backward(grad_output, saved.input, saved.indices, **self._arguments())

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


class AvgPool2d(_Pool):
    """

    Args:
        kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override: as avg_pool2d's.

    Shape:
        input: (N, C, H, W) -> output: (N, C, H_out, W_out), avg_pool2d's formula.

    Example:
        >>> cp.nn.AvgPool2d(2)(np.arange(16.0).reshape(1, 1, 4, 4))
        array([[[[ 2.5,  4.5],
                 [10.5, 12.5]]]])
    """
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__(kernel_size, stride)
        self.padding, self.ceil_mode = pair("AvgPool2d", "padding", padding, 0), ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def _arguments(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    def forward(self, x):
        self.save_for_backward(input_shape=x.shape)
        return _core.avg_pool2d(x, **self._arguments())

    def backward(self, grad_output, need_input_grad=True):
        input_shape = self.saved_for_backward().input_shape
        if not need_input_grad:
            return None
        return _core.avg_pool2d_backward(grad_output, input_shape, **self._arguments())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


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
        input: (N, C, H, W) -> output: (N, C, h, w).

    Example:
        >>> cp.nn.AdaptiveAvgPool2d(1)(np.arange(16.0).reshape(1, 1, 4, 4))
        array([[[[7.5]]]])
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        self.save_for_backward(input_shape=x.shape)
        return _core.adaptive_avg_pool2d(x, self.output_size)

    def backward(self, grad_output, need_input_grad=True):
        input_shape = self.saved_for_backward().input_shape
        if not need_input_grad:
            return None
        return _core.adaptive_avg_pool2d_backward(grad_output, input_shape)

    def extra_repr(self):
        return f"output_size={self.output_size}"


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

    def forward(self, x):
        self.save_for_backward(input_shape=x.shape)
        start = self.start_dim % x.ndim
        end = self.end_dim % x.ndim
        # The flattened size spelled out: -1 cannot be inferred for an empty batch.
        return x.reshape(x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:])

    def backward(self, grad_output, need_input_grad=True):
        input_shape = self.saved_for_backward().input_shape
        return grad_output.reshape(input_shape) if need_input_grad else None

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


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
            keep = self._generator.random(x.shape, dtype=np.float32) >= self.p
            scale = keep * x.dtype.type(1.0 / (1.0 - self.p))
        self.save_for_backward(scale=scale)
        return x * scale

    def backward(self, grad_output, need_input_grad=True):
        scale = self.saved_for_backward().scale
        if not need_input_grad:
            return None
        return grad_output if scale is None else grad_output * scale

    def extra_repr(self):
        return f"p={self.p}"


class BatchNorm2d(Module):
    """Batch normalisation over (N, H, W) per channel, with PyTorch's running statistics, on the
    batch_norm2d kernels.

    Training normalises with the batch's biased variance and updates running_var with the unbiased
    one; ``momentum=None`` keeps a cumulative average. Eval mode uses the running statistics (the
    batch's when ``track_running_stats=False``). The running statistics are updated in place, so
    they keep the input's dtype (``.double()`` converts them with the parameters).

    Args:
        num_features: C, the channels.
        eps: added to the variance; positive.
        momentum: the running statistics' update, or None for their cumulative average.
        affine: whether the layer has a learned weight and bias.
        track_running_stats: whether it keeps running statistics (used in evaluation).

    Shape:
        input: (N, C, H, W) -> output: the same shape.

    Example:
        >>> bn = cp.nn.BatchNorm2d(2)
        >>> y = bn(np.arange(16, dtype=np.float32).reshape(2, 2, 2, 2))
        >>> y.mean(axis=(0, 2, 3)).round(6), bn.running_mean
        (array([-0., -0.], dtype=float32), array([0.55, 0.95], dtype=float32))
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        num_features = integer("BatchNorm2d", "num_features", num_features)
        if not eps > 0:
            raise ValueError(f"BatchNorm2d: eps={eps} must be positive")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm2d: momentum={momentum} must be None or between 0 and 1")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=np.float32))
            self.bias = Parameter(np.zeros(num_features, dtype=np.float32))
        else:
            self.weight = self.bias = None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
            self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))

    def _check(self, x):
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm2d: input must be (N, {self.num_features}, H, W), got {x.shape}"
            )

    fused_activations = ("relu",)

    def forward(self, x, activation=None):
        """``activation="relu"``: the following ReLU in the same pass (a Sequential asks for it),
        and the backward then takes the ReLU's gradient too."""
        self._check(x)
        use_batch = self.training or not self.track_running_stats
        update = self.training and self.track_running_stats
        momentum = 0.0
        if update:  # momentum=None: the cumulative average, 1 / (batches seen, this one included)
            momentum = 1.0 / float(self.num_batches_tracked + 1) if self.momentum is None else self.momentum
        running = (self.running_mean, self.running_var) if update or not use_batch else (None, None)
        weight, bias = (self.weight.data, self.bias.data) if self.affine else (None, None)
        out, mean, inv_std = _core.batch_norm2d(
            x, weight, bias, *running, training=use_batch, momentum=momentum, eps=self.eps, activation=activation)
        if update:
            self.num_batches_tracked += 1
        self.save_for_backward(input=x, mean=mean, inv_std=inv_std, batch_statistics=use_batch,
                               activation=activation, output=out if activation else None)
        return out

    def backward(self, grad_output, need_input_grad=True):
        saved = self.saved_for_backward()
        needs = (("input",) if need_input_grad else ()) + (("weight", "bias") if self.affine else ())
        grad_input, grad_weight, grad_bias = _core.batch_norm2d_backward(
            grad_output, saved.input, self.weight.data if self.affine else None, saved.mean, saved.inv_std,
            training=saved.batch_statistics, needs=needs, activation=saved.activation, output=saved.output)
        if self.affine:
            self.weight.accumulate(grad_weight)
            self.bias.accumulate(grad_bias)
        return grad_input

    def _check_state_entry(self, name, value, full_name):
        if name in ("running_var", "num_batches_tracked") and not (value >= 0).all():
            raise ValueError(f"load_state_dict: '{full_name}' must be non-negative (and not NaN)")

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
