"""1-D layers with torch.nn's names, arguments and initialisation, on convpool's 1-D functions
(the 2-D kernels on height-1 views)."""

from .. import _one_d
from .._arguments import single, stride_single
from .layers import _Convolution
from .module import Module


class MaxPool1d(Module):
    """Max pooling over the last axis; ``tie_break`` and ``nan`` as in MaxPool2d.

    Args:
        kernel_size, stride, padding, dilation, ceil_mode, tie_break, nan: as max_pool1d's.

    Shape:
        input: (N, C, L) -> output: (N, C, L_out).

    Example:
        >>> cp.nn.MaxPool1d(2)(np.array([[[1.0, 3.0, 2.0, 0.0]]]))
        array([[[3., 2.]]])
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, tie_break="first",
                 nan="propagate"):
        super().__init__()
        self.kernel_size = single("MaxPool1d", "kernel_size", kernel_size, 1)
        self.stride = stride_single("MaxPool1d", stride, self.kernel_size)
        self.padding = single("MaxPool1d", "padding", padding, 0)
        self.dilation = single("MaxPool1d", "dilation", dilation, 1)
        self.ceil_mode, self.tie_break, self.nan = ceil_mode, tie_break, nan

    def _arguments(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding, dilation=self.dilation,
                    ceil_mode=self.ceil_mode, tie_break=self.tie_break, nan=self.nan)

    def forward(self, x):
        y, indices = _one_d.max_pool1d(x, return_indices=True, **self._arguments())
        self.save_for_backward(input=x, indices=indices)
        return y

    def backward(self, grad_output, need_input_grad=True):
        saved = self.saved_for_backward()
        if not need_input_grad:
            return None
        return _one_d.max_pool1d_backward(grad_output, saved.input, saved.indices, **self._arguments())

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}, tie_break={self.tie_break!r}")


class AvgPool1d(Module):
    """

    Args:
        kernel_size, stride, padding, ceil_mode, count_include_pad: as avg_pool1d's.

    Shape:
        input: (N, C, L) -> output: (N, C, L_out).

    Example:
        >>> cp.nn.AvgPool1d(2)(np.array([[[1.0, 3.0, 2.0, 0.0]]]))
        array([[[2., 1.]]])
    """
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size = single("AvgPool1d", "kernel_size", kernel_size, 1)
        self.stride = stride_single("AvgPool1d", stride, self.kernel_size)
        self.padding = single("AvgPool1d", "padding", padding, 0)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def _arguments(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode,
                    count_include_pad=self.count_include_pad)

    def forward(self, x):
        self.save_for_backward(input_shape=x.shape)
        return _one_d.avg_pool1d(x, **self._arguments())

    def backward(self, grad_output, need_input_grad=True):
        input_shape = self.saved_for_backward().input_shape
        if not need_input_grad:
            return None
        return _one_d.avg_pool1d_backward(grad_output, input_shape, **self._arguments())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


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
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text
