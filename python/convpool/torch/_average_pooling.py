"""The averaging pooling operators: average (avg_pool2d, avg_pool1d), Lp, adaptive average and
stochastic pooling."""

from typing import List, Optional, Tuple

import torch

from .. import _core
from .._arguments import adaptive_size, divisor, pair, single, stride_pair, stride_single
from ._operators import (
    _array,
    _backward_layout,
    _channels_last,
    _empty_in_layout,
    _shape_in,
    _empty_like_layout,
    _layout_array,
    _layout_of,
    _layout_tensor,
    _output_size,
    _fitting,
    _operator,
    _second_derivative_refused,
    _save_indices,
    _gathered_again,
)

__all__ = ["adaptive_avg_pool2d", "avg_pool1d", "avg_pool2d", "lp_pool2d", "stochastic_pool2d"]


@_operator("avg_pool2d")
def _avg_pool2d(x: torch.Tensor, kernel_size: List[int], stride: List[int], padding: List[int], ceil_mode: bool,
                count_include_pad: bool, divisor_override: Optional[int] = None) -> torch.Tensor:
    layout = _layout_of(x)
    return _layout_tensor(_core.avg_pool2d(_layout_array("avg_pool2d", "x", x, layout), kernel_size, stride, padding,
                                           ceil_mode, count_include_pad, divisor_override, layout=layout), layout)


@torch.library.register_fake(_avg_pool2d)
def _(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    return _empty_like_layout(x, list(x.shape[:-2]) + _fitting("avg_pool2d", x, [
        _output_size(x.shape[-2 + d], kernel_size[d], stride[d], padding[d], 1, ceil_mode) for d in range(2)]))


# The backwards have no x: `channels_last` says x was (a grad_output of a 1x1 output plane cannot
# tell), and then the NHWC kernel gives a channels_last gradient.


@_operator("avg_pool2d_backward")
def _avg_pool2d_backward(grad_output: torch.Tensor, input_shape: List[int], kernel_size: List[int],
                         stride: List[int], padding: List[int], ceil_mode: bool,
                         count_include_pad: bool, divisor_override: Optional[int] = None,
                         channels_last: bool = False) -> torch.Tensor:
    fn = "avg_pool2d_backward"
    layout = _backward_layout(input_shape, channels_last)
    return _layout_tensor(_core.avg_pool2d_backward(
        _layout_array(fn, "grad_output", grad_output, layout), _shape_in(input_shape, layout), kernel_size, stride,
        padding, ceil_mode, count_include_pad, divisor_override, layout=layout), layout)


@torch.library.register_fake(_avg_pool2d_backward)
def _(grad_output, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override=None,
      channels_last=False):
    return _empty_in_layout(grad_output, input_shape, _backward_layout(input_shape, channels_last))


def _avg_pool2d_setup(ctx, inputs, output):
    x, *ctx.arguments = inputs
    ctx.input_shape = list(x.shape)
    ctx.channels_last = _channels_last(x)


def _avg_pool2d_grad(ctx, grad_output):
    return (_avg_pool2d_backward(grad_output, ctx.input_shape, *ctx.arguments, ctx.channels_last),) + (None,) * 6


torch.library.register_autograd(_avg_pool2d, _avg_pool2d_grad, setup_context=_avg_pool2d_setup)


def _avg_pool2d_backward_setup(ctx, inputs, output):
    _grad_output, _input_shape, *ctx.arguments, _channels_last_input = inputs


def _avg_pool2d_backward_grad(ctx, grad_grad_input):
    # The backward is the forward's transpose, so its own derivative is the forward.
    return (torch.ops.convpool.avg_pool2d(grad_grad_input, *ctx.arguments),) + (None,) * 8


torch.library.register_autograd(_avg_pool2d_backward, _avg_pool2d_backward_grad,
                                setup_context=_avg_pool2d_backward_setup)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """torch.nn.functional.avg_pool2d on convpool's kernels.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> x = torch.arange(32.0).reshape(1, 2, 4, 4)
        >>> torch.equal(cpt.avg_pool2d(x, 2), torch.nn.functional.avg_pool2d(x, 2))
        True
    """
    fn = "convpool.torch.avg_pool2d"
    kernel = pair(fn, "kernel_size", kernel_size, 1)
    return torch.ops.convpool.avg_pool2d(x, kernel, stride_pair(fn, stride, kernel), pair(fn, "padding", padding, 0),
                                         bool(ceil_mode), bool(count_include_pad),
                                         divisor(fn, divisor_override))


@_operator("lp_pool2d")
def _lp_pool2d(x: torch.Tensor, norm_type: float, kernel_size: List[int], stride: List[int],
               ceil_mode: bool) -> torch.Tensor:
    return torch.from_numpy(_core.lp_pool2d(_array("lp_pool2d", "x", x), norm_type, kernel_size, stride, ceil_mode))


@torch.library.register_fake(_lp_pool2d)
def _(x, norm_type, kernel_size, stride, ceil_mode):
    return x.new_empty(list(x.shape[:-2]) + _fitting("lp_pool2d", x, [
        _output_size(x.shape[-2 + d], kernel_size[d], stride[d], 0, 1, ceil_mode) for d in range(2)]))


@_operator("lp_pool2d_backward")
def _lp_pool2d_backward(grad_output: torch.Tensor, x: torch.Tensor, norm_type: float, kernel_size: List[int],
                        stride: List[int], ceil_mode: bool) -> torch.Tensor:
    fn = "lp_pool2d_backward"
    return torch.from_numpy(_core.lp_pool2d_backward(_array(fn, "grad_output", grad_output), _array(fn, "x", x),
                                                     norm_type, kernel_size, stride, ceil_mode))


@torch.library.register_fake(_lp_pool2d_backward)
def _(grad_output, x, norm_type, kernel_size, stride, ceil_mode):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _lp_pool2d_setup(ctx, inputs, output):
    x, *ctx.arguments = inputs
    ctx.save_for_backward(x)


def _lp_pool2d_grad(ctx, grad_output):
    (x,) = ctx.saved_tensors
    return (_lp_pool2d_backward(grad_output.contiguous(), x, *ctx.arguments),) + (None,) * 4


torch.library.register_autograd(_lp_pool2d, _lp_pool2d_grad, setup_context=_lp_pool2d_setup)
torch.library.register_autograd(_lp_pool2d_backward, _second_derivative_refused(
    "lp_pool2d", "the backward is not linear in x"))


def lp_pool2d(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """torch.nn.functional.lp_pool2d on convpool's kernels: ``(sum over the window of |x|^p)^(1/p)``.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> x = torch.arange(32.0).reshape(1, 2, 4, 4)
        >>> torch.equal(cpt.lp_pool2d(x, 1, 2), torch.nn.functional.lp_pool2d(x, 1, 2))
        True
    """
    fn = "convpool.torch.lp_pool2d"
    kernel = pair(fn, "kernel_size", kernel_size, 1)
    return torch.ops.convpool.lp_pool2d(x, float(norm_type), kernel, stride_pair(fn, stride, kernel), bool(ceil_mode))


@_operator("adaptive_avg_pool2d")
def _adaptive_avg_pool2d(x: torch.Tensor, output_size: List[int]) -> torch.Tensor:
    layout = _layout_of(x)
    return _layout_tensor(_core.adaptive_avg_pool2d(_layout_array("adaptive_avg_pool2d", "x", x, layout), output_size,
                                                    layout=layout), layout)


@torch.library.register_fake(_adaptive_avg_pool2d)
def _(x, output_size):
    return _empty_like_layout(x, list(x.shape[:-2]) + list(output_size))


@_operator("adaptive_avg_pool2d_backward")
def _adaptive_avg_pool2d_backward(grad_output: torch.Tensor, input_shape: List[int],
                                  channels_last: bool = False) -> torch.Tensor:
    fn = "adaptive_avg_pool2d_backward"
    layout = _backward_layout(input_shape, channels_last)
    return _layout_tensor(_core.adaptive_avg_pool2d_backward(
        _layout_array(fn, "grad_output", grad_output, layout), _shape_in(input_shape, layout), layout=layout), layout)


@torch.library.register_fake(_adaptive_avg_pool2d_backward)
def _(grad_output, input_shape, channels_last=False):
    return _empty_in_layout(grad_output, input_shape, _backward_layout(input_shape, channels_last))


def _adaptive_avg_pool2d_setup(ctx, inputs, output):
    ctx.input_shape = list(inputs[0].shape)
    ctx.channels_last = _channels_last(inputs[0])


def _adaptive_avg_pool2d_grad(ctx, grad_output):
    return _adaptive_avg_pool2d_backward(grad_output, ctx.input_shape, ctx.channels_last), None


torch.library.register_autograd(_adaptive_avg_pool2d, _adaptive_avg_pool2d_grad,
                                setup_context=_adaptive_avg_pool2d_setup)


def _adaptive_avg_pool2d_backward_setup(ctx, inputs, output):
    ctx.output_size = list(inputs[0].shape[-2:])


def _adaptive_avg_pool2d_backward_grad(ctx, grad_grad_input):
    return torch.ops.convpool.adaptive_avg_pool2d(grad_grad_input, ctx.output_size), None, None


torch.library.register_autograd(_adaptive_avg_pool2d_backward, _adaptive_avg_pool2d_backward_grad,
                                setup_context=_adaptive_avg_pool2d_backward_setup)


def adaptive_avg_pool2d(x, output_size):
    """torch.nn.functional.adaptive_avg_pool2d on convpool's kernels (None in output_size keeps that
    input size).

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> x = torch.arange(32.0).reshape(1, 2, 4, 4)
        >>> torch.equal(cpt.adaptive_avg_pool2d(x, 1), torch.nn.functional.adaptive_avg_pool2d(x, 1))
        True
    """
    size = adaptive_size("convpool.torch.adaptive_avg_pool2d", output_size, int(x.shape[-2]), int(x.shape[-1]))
    return torch.ops.convpool.adaptive_avg_pool2d(x, size)


@_operator("stochastic_pool2d")
def _stochastic_pool2d(x: torch.Tensor, kernel_size: List[int], stride: List[int], training: bool,
                       seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    array = _array("stochastic_pool2d", "x", x)
    if not training:  # the probability-weighted average picks nothing
        return torch.from_numpy(_core.stochastic_pool2d(array, kernel_size, stride, False)), x.new_empty(
            0, dtype=torch.int64)
    out, indices = _core.stochastic_pool2d(array, kernel_size, stride, True, seed, True)
    return torch.from_numpy(out), torch.from_numpy(indices)


@torch.library.register_fake(_stochastic_pool2d)
def _(x, kernel_size, stride, training, seed):
    shape = list(x.shape[:-2]) + _fitting("stochastic_pool2d", x, [
        _output_size(x.shape[-2 + d], kernel_size[d], stride[d], 0, 1, False) for d in range(2)])
    return x.new_empty(shape), x.new_empty(shape if training else (0,), dtype=torch.int64)


@_operator("stochastic_pool2d_backward")
def _stochastic_pool2d_backward(grad_output: torch.Tensor, x: torch.Tensor, indices: torch.Tensor,
                                kernel_size: List[int], stride: List[int], training: bool) -> torch.Tensor:
    fn = "stochastic_pool2d_backward"
    return torch.from_numpy(_core.stochastic_pool2d_backward(
        _array(fn, "grad_output", grad_output), _array(fn, "x", x), indices.detach().numpy() if training else None,
        kernel_size, stride, training))


@torch.library.register_fake(_stochastic_pool2d_backward)
def _(grad_output, x, indices, kernel_size, stride, training):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _stochastic_pool2d_setup(ctx, inputs, output):
    x, kernel_size, stride, training, _seed = inputs
    ctx.arguments = (kernel_size, stride, training)
    ctx.save_for_backward(x, output[1])


def _stochastic_pool2d_grad(ctx, grad_output, _grad_indices):
    x, indices = ctx.saved_tensors
    return (_stochastic_pool2d_backward(grad_output.contiguous(), x, indices, *ctx.arguments),) + (None,) * 4


torch.library.register_autograd(_stochastic_pool2d, _stochastic_pool2d_grad, setup_context=_stochastic_pool2d_setup)


def _evaluation_mode(arguments):
    """Why evaluation-mode stochastic pooling has no second derivative here: arguments end with
    training."""
    return None if arguments[-1] else "in evaluation the backward is not linear in x"


torch.library.register_autograd(_stochastic_pool2d_backward, _gathered_again("stochastic_pool2d", _evaluation_mode),
                                setup_context=_save_indices)


def stochastic_pool2d(x, kernel_size, stride=None, training=True, seed=None):
    """Zeiler and Fergus's stochastic pooling of non-negative x: in training, one input per window
    drawn with probability proportional to its value (the seed from torch's generator unless
    given, so torch.manual_seed repeats it); in evaluation, the probability-weighted average.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> x = torch.tensor([[[[1.0, 3.0], [0.0, 0.0]]]])
        >>> cpt.stochastic_pool2d(x, 2, seed=0).item() in (1.0, 3.0), cpt.stochastic_pool2d(x, 2, training=False).item()
        (True, 2.5)
    """
    fn = "convpool.torch.stochastic_pool2d"
    kernel = pair(fn, "kernel_size", kernel_size, 1)
    step = stride_pair(fn, stride, kernel)
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    return torch.ops.convpool.stochastic_pool2d(x, kernel, step, bool(training), int(seed))[0]


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """torch.nn.functional.avg_pool1d on convpool's kernels.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> x = torch.arange(32.0).reshape(1, 2, 4, 4)
        >>> torch.equal(cpt.avg_pool1d(x[0], 2), torch.nn.functional.avg_pool1d(x[0], 2))
        True
    """
    fn = "convpool.torch.avg_pool1d"
    kernel = single(fn, "kernel_size", kernel_size, 1)
    return torch.ops.convpool.avg_pool2d(x.unsqueeze(-2), [1, kernel], [1, stride_single(fn, stride, kernel)],
                                         [0, single(fn, "padding", padding, 0)], bool(ceil_mode),
                                         bool(count_include_pad), None).squeeze(-2)
