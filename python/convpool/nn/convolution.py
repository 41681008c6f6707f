"""The convolution layers: Conv2d, Conv1d and ConvTranspose2d, with PyTorch's arguments and default
initialisation, on convpool's kernels."""

import math

from .. import _core
from .. import _one_d
from .._arguments import integer, pair, single
from .module import Module, uniform_parameter

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]


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
        self.weight = uniform_parameter(weight_shape, bound)
        self.bias = uniform_parameter((self.out_channels,), bound) if bias else None

    def _groups_and_bias(self):
        """The end of every convolution's repr: groups and bias where not the default."""
        return (f", groups={self.groups}" if self.groups != 1 else "") + (", bias=False" if self.bias is None else "")

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
        H_out = floor((H + 2*pH - dH*(kH-1) - 1) / sH) + 1, likewise W_out; (N, H, W, C_in) ->
        (N, H_out, W_out, C_out) after ``to_layout("nhwc")``.

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
                    winograd=self.winograd, layout=self.layout)

    layouts = ("nchw", "nhwc")
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
        text += self._groups_and_bias()
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
        text += self._groups_and_bias()
        return text


class Conv1d(_Convolution):
    """1-D convolution; weight (out_channels, in_channels / groups, kernel_size), initialised as
    PyTorch does: uniform in ±1/sqrt(in_channels / groups * kernel_size).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as
            Conv2d's, with ints for the one dimension.

    Shape:
        input: (N, C_in, L) -> output: (N, C_out, L_out).

    Example:
        >>> cp.manual_seed(0)
        >>> cp.nn.Conv1d(2, 4, 3, padding="same")(np.ones((1, 2, 10), np.float32)).shape
        (1, 4, 10)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True):
        super().__init__("Conv1d", in_channels, out_channels, groups)
        self.kernel_size = single("Conv1d", "kernel_size", kernel_size, 1)
        self.stride = single("Conv1d", "stride", stride, 1)
        self.padding = self._padding("Conv1d", padding, single, "an int")
        self.dilation = single("Conv1d", "dilation", dilation, 1)
        self._initialise((self.out_channels, self.in_channels // self.groups, self.kernel_size),
                         self.in_channels // self.groups * self.kernel_size, bias)

    def _geometry(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def forward(self, x):
        self.save_for_backward(input=x)
        return _one_d.conv1d(x, self.weight.data, None if self.bias is None else self.bias.data, **self._geometry())

    def backward(self, grad_output, need_input_grad=True):
        return self._backward_through(_one_d.conv1d_backward, grad_output, self.saved_for_backward().input,
                                      need_input_grad)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size=({self.kernel_size},), stride=({self.stride},)"
        if self.padding != 0:
            text += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding=({self.padding},)"
        if self.dilation != 1:
            text += f", dilation=({self.dilation},)"
        text += self._groups_and_bias()
        return text
