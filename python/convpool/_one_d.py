"""1-D pooling and convolution, PyTorch's max_pool1d, avg_pool1d and conv1d: the 2-D kernels on
(N, C, 1, L) views of the (N, C, L) arrays, which share their memory, so there is no copy and no
slower path. Argument errors name the 1-D function and its arguments as given."""

import numpy as np

from . import _core
from ._arguments import single, stride_single
from ._functions import numpy_facing

__all__ = ["avg_pool1d", "avg_pool1d_backward", "conv1d", "conv1d_backward", "max_pool1d", "max_pool1d_backward"]


_INPUT = {3: "(N, C, L)", 2: "(C, L)"}
_WEIGHT = {3: "(C_out, C_in / groups, k)"}


def _row(fn, array, name="x", layouts=_INPUT):
    """`array` viewed with a height of 1: (N, C, L) -> (N, C, 1, L), (C, L) -> (C, 1, L)."""
    array = array if isinstance(array, np.ndarray) else np.asarray(array)
    if array.ndim not in layouts:
        raise ValueError(f"{fn}: {name} must be {' or '.join(layouts.values())}, got shape {array.shape}")
    return array[..., None, :]


def _unrow(array):
    return None if array is None else array[..., 0, :]


def _row_out(out):
    """out= for a 2-D kernel: each given array viewed with a height of 1 (the kernel checks it)."""
    if isinstance(out, tuple):
        return tuple(_row_out(entry) for entry in out)
    return out[..., None, :] if isinstance(out, np.ndarray) and out.ndim >= 1 else out


def _given_or(out, result, unrow=_unrow):
    """What a 1-D function returns: the caller's out arrays themselves, else the results without
    their height of 1."""
    if isinstance(result, tuple):
        entries = out if isinstance(out, tuple) else (None,) * len(result)
        return tuple(given if given is not None else unrow(value) for given, value in zip(entries, result))
    return out if out is not None else unrow(result)


def _as_1d(fn, kernel):
    """Calls kernel() and rewrites a 2-D kernel's argument error as the 1-D function's: the shapes
    it names are those of the height-1 views."""
    name = fn.replace("1d", "2d")
    try:
        return kernel()
    except (ValueError, TypeError) as error:
        message = str(error)
        if not message.startswith(f"{name}: "):
            raise
        raise type(error)(f"{fn}: {message[len(name) + 2:]} (computed as {name} on the height-1 view "
                          f"(..., 1, L) of each array)") from None


@numpy_facing
def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
               tie_break="first", nan="propagate", out=None):
    """Max pooling over the last axis of (N, C, L) or (C, L): max_pool2d's semantics (tie_break,
    nan) with a height of 1; indices are positions along L.

    Args:
        x: input array, float32 or float64.
        kernel_size, stride, padding, dilation: ints (or 1-element sequences); stride defaults to
            kernel_size; padding at most kernel_size // 2.
        ceil_mode, return_indices, tie_break, nan, out: as in max_pool2d.

    Shape:
        out: (N, C, L_out), L_out = floor((L + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1
        (ceil in ceil_mode).

    Example:
        >>> cp.max_pool1d(np.array([[0.0, 5.0, 5.0, 0.0]]), 2, stride=1, return_indices=True, tie_break="last")
        (array([[5., 5., 5.]]), array([[1, 2, 2]]))
    """
    fn = "max_pool1d"
    k = single(fn, "kernel_size", kernel_size, 1)
    s = stride_single(fn, stride, k)
    p, d = single(fn, "padding", padding, 0), single(fn, "dilation", dilation, 1)
    result = _as_1d(fn, lambda: _core.max_pool2d(_row(fn, x), (1, k), (1, s), (0, p), (1, d),
                                                 ceil_mode, return_indices, tie_break, nan, out=_row_out(out)))
    return _given_or(out, result)


@numpy_facing
def max_pool1d_backward(grad_output, x, indices, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                        tie_break="first", nan="propagate", out=None):
    """Gradient of max_pool1d with respect to x (indices may be None for tie_break="split").

    Args:
        grad_output: gradient of the pooled output.
        x: the forward input.
        indices: from max_pool1d(..., return_indices=True) with the same tie_break.
        kernel_size, stride, padding, dilation, ceil_mode, tie_break, nan, out: as in the forward.

    Example:
        >>> x = np.array([[0.0, 5.0, 5.0, 0.0]])
        >>> cp.max_pool1d_backward(np.ones((1, 3)), x, None, 2, stride=1, tie_break="split")
        array([[0. , 1.5, 1.5, 0. ]])
    """
    fn = "max_pool1d_backward"
    k = single(fn, "kernel_size", kernel_size, 1)
    s = stride_single(fn, stride, k)
    p, d = single(fn, "padding", padding, 0), single(fn, "dilation", dilation, 1)
    rows = None if indices is None else _row(fn, indices, "indices")
    return _given_or(out, _as_1d(fn, lambda: _core.max_pool2d_backward(
        _row(fn, grad_output, "grad_output"), _row(fn, x), rows, (1, k), (1, s), (0, p),
        (1, d), ceil_mode, tie_break, nan, out=_row_out(out))))


@numpy_facing
def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, out=None):
    """Average pooling over the last axis of (N, C, L) or (C, L): avg_pool2d's semantics.

    Args:
        x: input array, float32 or float64.
        kernel_size, stride, padding: ints (or 1-element sequences); stride defaults to kernel_size.
        ceil_mode, count_include_pad, out: as in avg_pool2d.

    Shape:
        out: (N, C, L_out), L_out = floor((L + 2*padding - kernel_size) / stride) + 1 (ceil in
        ceil_mode).

    Example:
        >>> cp.avg_pool1d(np.arange(6.0).reshape(1, 6), 2)
        array([[0.5, 2.5, 4.5]])
    """
    fn = "avg_pool1d"
    k = single(fn, "kernel_size", kernel_size, 1)
    s = stride_single(fn, stride, k)
    p = single(fn, "padding", padding, 0)
    return _given_or(out, _as_1d(fn, lambda: _core.avg_pool2d(_row(fn, x), (1, k), (1, s),
                                                              (0, p), ceil_mode, count_include_pad,
                                                              out=_row_out(out))))


@numpy_facing
def avg_pool1d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, out=None):
    """Gradient of avg_pool1d with respect to its input, of shape input_shape.

    Args:
        grad_output: gradient of the pooled output.
        input_shape: the forward input's shape, (N, C, L) or (C, L).
        kernel_size, stride, padding, ceil_mode, count_include_pad, out: as in the forward.

    Example:
        >>> cp.avg_pool1d_backward(np.ones((1, 3)), (1, 6), 2)
        array([[0.5, 0.5, 0.5, 0.5, 0.5, 0.5]])
    """
    fn = "avg_pool1d_backward"
    k = single(fn, "kernel_size", kernel_size, 1)
    s = stride_single(fn, stride, k)
    p = single(fn, "padding", padding, 0)
    if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__len__"):
        raise TypeError(f"{fn}: input_shape must be a sequence of ints, (N, C, L) or (C, L), got {input_shape!r}")
    shape = tuple(input_shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"{fn}: input_shape must be (N, C, L) or (C, L), got {shape}")
    return _given_or(out, _as_1d(fn, lambda: _core.avg_pool2d_backward(
        _row(fn, grad_output, "grad_output"), shape[:-1] + (1, shape[-1]), (1, k), (1, s),
        (0, p), ceil_mode, count_include_pad, out=_row_out(out))))


def _conv_padding(fn, padding):
    return padding if isinstance(padding, str) else (0, single(fn, "padding", padding, 0))


@numpy_facing
def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None, out=None):
    """1-D convolution (cross-correlation) of (N, C_in, L) or (C_in, L) with weight
    (C_out, C_in / groups, k): conv2d's semantics, padding an int, "valid" or "same".

    Args:
        x: input array, float32 or float64.
        weight: (C_out, C_in / groups, k), x's dtype.
        bias: None or (C_out,).
        stride, dilation: ints (or 1-element sequences).
        padding: an int, "valid" or "same" (stride 1; an odd total puts the extra zero at the end).
        groups, activation, out: as in conv2d.

    Shape:
        out: (N, C_out, L_out), L_out = floor((L + 2*padding - dilation*(k-1) - 1) / stride) + 1.

    Example:
        >>> cp.conv1d(np.arange(5.0).reshape(1, 5), np.ones((1, 1, 3)))
        array([[3., 6., 9.]])
    """
    fn = "conv1d"
    s, d = single(fn, "stride", stride, 1), single(fn, "dilation", dilation, 1)
    return _given_or(out, _as_1d(fn, lambda: _core.conv2d(_row(fn, x), _row(fn, weight, "weight", _WEIGHT), bias,
                                                          (1, s), _conv_padding(fn, padding), (1, d), groups,
                                                          activation, _row_out(out))))


@numpy_facing
def conv1d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1,
                    needs=("input", "weight", "bias"), out=None):
    """Gradients of conv1d: (grad_input, grad_weight, grad_bias), None for each not in needs.

    Args:
        grad_output: gradient of the convolution's output.
        x, weight, stride, padding, dilation, groups: as in the forward call.
        needs: which gradients to compute, any of "input", "weight" and "bias".
        out: as in conv2d_backward.

    Example:
        >>> grad_input, grad_weight, grad_bias = cp.conv1d_backward(np.ones((1, 3)), np.arange(5.0).reshape(1, 5),
        ...                                                         np.ones((1, 1, 3)))
        >>> grad_input, grad_weight, grad_bias
        (array([[1., 2., 3., 2., 1.]]), array([[[3., 6., 9.]]]), array([3.]))
    """
    fn = "conv1d_backward"
    s, d = single(fn, "stride", stride, 1), single(fn, "dilation", dilation, 1)
    rows = _row_out(out)
    if isinstance(out, tuple) and len(out) == 3:  # the bias's gradient has no height to add
        rows = rows[:2] + (out[2],)
    grads = _as_1d(fn, lambda: _core.conv2d_backward(
        _row(fn, grad_output, "grad_output"), _row(fn, x), _row(fn, weight, "weight", _WEIGHT), (1, s),
        _conv_padding(fn, padding), (1, d), groups, needs, rows))
    return _given_or(out, grads, unrow=lambda grad: grad if grad is None or grad.ndim == 1 else _unrow(grad))
