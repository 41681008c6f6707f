"""The max pooling operators: max_pool2d and max_pool1d, adaptive and fractional max pooling, max
unpooling; their backward operators route gradients by the forward's indices."""

from typing import List, Tuple

import torch

from .. import _core
from .._arguments import adaptive_size, pair, ratio_pair, single, stride_pair, stride_single
from ._operators import (
    _array,
    _empty_like_layout,
    _layout_array,
    _layout_indices,
    _layout_of,
    _layout_tensor,
    _output_size,
    _fitting,
    _operator,
    _scatter_add,
    _save_indices,
    _gathered_again,
    _pooled_with_indices,
    _save_input_and_indices,
    _gradient_through_indices,
)

__all__ = ["adaptive_max_pool2d", "fractional_max_pool2d", "max_pool1d", "max_pool2d", "max_unpool2d"]


@_operator("max_pool2d")
def _max_pool2d(x: torch.Tensor, kernel_size: List[int], stride: List[int], padding: List[int],
                dilation: List[int], ceil_mode: bool, tie_break: str, nan: str) -> Tuple[torch.Tensor, torch.Tensor]:
    layout = _layout_of(x)
    out, indices = _core.max_pool2d(_layout_array("max_pool2d", "x", x, layout), kernel_size, stride, padding,
                                    dilation, ceil_mode, True, tie_break, nan, layout=layout)
    return _layout_tensor(out, layout), _layout_tensor(indices, layout)


@torch.library.register_fake(_max_pool2d)
def _(x, kernel_size, stride, padding, dilation, ceil_mode, tie_break, nan):
    size = _fitting("max_pool2d", x, [
        _output_size(x.shape[-2 + d], kernel_size[d], stride[d], padding[d], dilation[d], ceil_mode)
        for d in range(2)])
    shape = list(x.shape[:-2]) + size
    return _empty_like_layout(x, shape), _empty_like_layout(x, shape, torch.int64)


@_operator("max_pool2d_backward")
def _max_pool2d_backward(grad_output: torch.Tensor, x: torch.Tensor, indices: torch.Tensor, kernel_size: List[int],
                         stride: List[int], padding: List[int], dilation: List[int], ceil_mode: bool, tie_break: str,
                         nan: str) -> torch.Tensor:
    fn = "max_pool2d_backward"
    layout = _layout_of(x)
    return _layout_tensor(_core.max_pool2d_backward(
        _layout_array(fn, "grad_output", grad_output, layout), _layout_array(fn, "x", x, layout),
        _layout_indices(indices, layout), kernel_size, stride, padding, dilation, ceil_mode, tie_break, nan,
        layout=layout), layout)


@torch.library.register_fake(_max_pool2d_backward)
def _(grad_output, x, indices, kernel_size, stride, padding, dilation, ceil_mode, tie_break, nan):
    return _empty_like_layout(x, x.shape)


torch.library.register_autograd(_max_pool2d, _gradient_through_indices(_max_pool2d_backward),
                                setup_context=_save_input_and_indices)


def _split_ties(arguments):
    """Why split ties have no second derivative here: arguments end with (tie_break, nan)."""
    if arguments[-2] == "split":
        return "tie_break='split' divides among ties the indices do not record"
    return None


torch.library.register_autograd(_max_pool2d_backward, _gathered_again("max_pool2d", _split_ties),
                                setup_context=_save_indices)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
               tie_break="first", nan="propagate"):
    """torch.nn.functional.max_pool2d's arguments plus convpool's ``tie_break`` ("first", "last" or
    "split": who receives a tied window's gradient) and ``nan`` ("propagate" or "ignore").

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> x = torch.tensor([[[[0.0, 5.0, 5.0, 0.0]]]], requires_grad=True)
        >>> cpt.max_pool2d(x, (1, 2), stride=1, tie_break="split").sum().backward()
        >>> x.grad
        tensor([[[[0.0000, 1.5000, 1.5000, 0.0000]]]])
    """
    fn = "convpool.torch.max_pool2d"
    kernel = pair(fn, "kernel_size", kernel_size, 1)
    out, indices = torch.ops.convpool.max_pool2d(x, kernel, stride_pair(fn, stride, kernel),
                                                 pair(fn, "padding", padding, 0), pair(fn, "dilation", dilation, 1),
                                                 bool(ceil_mode), tie_break, nan)
    return (out, indices) if return_indices else out


@_operator("adaptive_max_pool2d")
def _adaptive_max_pool2d(x: torch.Tensor, output_size: List[int], tie_break: str,
                         nan: str) -> Tuple[torch.Tensor, torch.Tensor]:
    out, indices = _core.adaptive_max_pool2d(_array("adaptive_max_pool2d", "x", x), output_size, True, tie_break, nan)
    return torch.from_numpy(out), torch.from_numpy(indices)


@torch.library.register_fake(_adaptive_max_pool2d)
def _(x, output_size, tie_break, nan):
    return _pooled_with_indices(x, output_size)


@_operator("adaptive_max_pool2d_backward")
def _adaptive_max_pool2d_backward(grad_output: torch.Tensor, x: torch.Tensor, indices: torch.Tensor,
                                  output_size: List[int], tie_break: str, nan: str) -> torch.Tensor:
    fn = "adaptive_max_pool2d_backward"
    return torch.from_numpy(_core.adaptive_max_pool2d_backward(
        _array(fn, "grad_output", grad_output), _array(fn, "x", x), indices.detach().numpy(), output_size,
        tie_break, nan))


@torch.library.register_fake(_adaptive_max_pool2d_backward)
def _(grad_output, x, indices, output_size, tie_break, nan):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


torch.library.register_autograd(_adaptive_max_pool2d, _gradient_through_indices(_adaptive_max_pool2d_backward),
                                setup_context=_save_input_and_indices)
torch.library.register_autograd(_adaptive_max_pool2d_backward,
                                _gathered_again("adaptive_max_pool2d", _split_ties), setup_context=_save_indices)


def adaptive_max_pool2d(x, output_size, return_indices=False, tie_break="first", nan="propagate"):
    """torch.nn.functional.adaptive_max_pool2d plus convpool's ``tie_break`` and ``nan`` (adaptive
    windows overlap when the sizes do not divide, so ties between windows happen here too).

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> x = torch.arange(32.0).reshape(1, 2, 4, 4)
        >>> torch.equal(cpt.adaptive_max_pool2d(x, (2, 3)), torch.nn.functional.adaptive_max_pool2d(x, (2, 3)))
        True
    """
    size = adaptive_size("convpool.torch.adaptive_max_pool2d", output_size, int(x.shape[-2]), int(x.shape[-1]))
    out, indices = torch.ops.convpool.adaptive_max_pool2d(x, size, tie_break, nan)
    return (out, indices) if return_indices else out


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False,
               tie_break="first", nan="propagate"):
    """torch.nn.functional.max_pool1d plus ``tie_break`` and ``nan``; indices are positions along L.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> x = torch.arange(32.0).reshape(1, 2, 4, 4)
        >>> torch.equal(cpt.max_pool1d(x[0], 2), torch.nn.functional.max_pool1d(x[0], 2))
        True
    """
    fn = "convpool.torch.max_pool1d"
    kernel = single(fn, "kernel_size", kernel_size, 1)
    out, indices = torch.ops.convpool.max_pool2d(x.unsqueeze(-2), [1, kernel], [1, stride_single(fn, stride, kernel)],
                                                 [0, single(fn, "padding", padding, 0)],
                                                 [1, single(fn, "dilation", dilation, 1)], bool(ceil_mode), tie_break,
                                                 nan)
    return (out.squeeze(-2), indices.squeeze(-2)) if return_indices else out.squeeze(-2)


@_operator("fractional_max_pool2d")
def _fractional_max_pool2d(x: torch.Tensor, kernel_size: List[int], output_size: List[int],
                           random_samples: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    fn = "fractional_max_pool2d"
    out, indices = _core.fractional_max_pool2d(_array(fn, "x", x), kernel_size, output_size,
                                               _array(fn, "random_samples", random_samples))
    return torch.from_numpy(out), torch.from_numpy(indices)


@torch.library.register_fake(_fractional_max_pool2d)
def _(x, kernel_size, output_size, random_samples):
    return _pooled_with_indices(x, output_size)


@_operator("fractional_max_pool2d_backward")
def _fractional_max_pool2d_backward(grad_output: torch.Tensor, x: torch.Tensor,
                                    indices: torch.Tensor) -> torch.Tensor:
    fn = "fractional_max_pool2d_backward"
    return torch.from_numpy(_core.fractional_max_pool2d_backward(_array(fn, "grad_output", grad_output),
                                                                 _array(fn, "x", x), indices.detach().numpy()))


@torch.library.register_fake(_fractional_max_pool2d_backward)
def _(grad_output, x, indices):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _fractional_max_pool2d_grad(ctx, grad_output, _grad_indices):
    x, indices = ctx.saved_tensors
    return _fractional_max_pool2d_backward(grad_output.contiguous(), x, indices), None, None, None


torch.library.register_autograd(_fractional_max_pool2d, _fractional_max_pool2d_grad,
                                setup_context=_save_input_and_indices)
torch.library.register_autograd(_fractional_max_pool2d_backward, _gathered_again("fractional_max_pool2d"),
                                setup_context=_save_indices)


def fractional_max_pool2d(x, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """torch.nn.functional.fractional_max_pool2d on convpool's kernels: the samples drawn from
    torch's generator unless given (output_ratio may also be a single number).

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> x = torch.randn(1, 2, 9, 9)
        >>> samples = torch.rand(1, 2, 2)
        >>> torch.equal(cpt.fractional_max_pool2d(x, 2, output_size=4, _random_samples=samples),
        ...             torch.nn.functional.fractional_max_pool2d(x, 2, output_size=4, _random_samples=samples))
        True
    """
    fn = "convpool.torch.fractional_max_pool2d"
    if output_size is None:
        if output_ratio is None:
            raise ValueError(f"{fn}: give output_size or output_ratio")
        ratio = ratio_pair(fn, output_ratio)
        output_size = [int(x.shape[-2] * ratio[0]), int(x.shape[-1] * ratio[1])]
    if _random_samples is None:
        _random_samples = torch.rand(x.shape[0] if x.dim() == 4 else 1, x.shape[-3], 2, dtype=x.dtype)
    out, indices = torch.ops.convpool.fractional_max_pool2d(x, pair(fn, "kernel_size", kernel_size, 1),
                                                            pair(fn, "output_size", output_size, 1), _random_samples)
    return (out, indices) if return_indices else out


def _unpooled_size(x, kernel_size, stride, padding, output_size):
    """PyTorch's unpooled (H, W): output_size's last two entries, else (in - 1) * stride -
    2 * padding + kernel."""
    if output_size:
        return [int(output_size[-2]), int(output_size[-1])]
    return [(x.shape[-2 + d] - 1) * stride[d] - 2 * padding[d] + kernel_size[d] for d in range(2)]


@_operator("max_unpool2d")
def _max_unpool2d(x: torch.Tensor, indices: torch.Tensor, kernel_size: List[int], stride: List[int],
                  padding: List[int], output_size: List[int]) -> torch.Tensor:
    return torch.from_numpy(_core.max_unpool2d(_array("max_unpool2d", "x", x), indices.detach().numpy(), kernel_size,
                                               stride, padding, output_size or None))


@torch.library.register_fake(_max_unpool2d)
def _(x, indices, kernel_size, stride, padding, output_size):
    return x.new_empty(list(x.shape[:-2]) + _unpooled_size(x, kernel_size, stride, padding, output_size))


@_operator("max_unpool2d_backward")
def _max_unpool2d_backward(grad_output: torch.Tensor, indices: torch.Tensor, kernel_size: List[int],
                           stride: List[int], padding: List[int], output_size: List[int]) -> torch.Tensor:
    return torch.from_numpy(_core.max_unpool2d_backward(
        _array("max_unpool2d_backward", "grad_output", grad_output), indices.detach().numpy(), kernel_size, stride,
        padding, output_size or None))


@torch.library.register_fake(_max_unpool2d_backward)
def _(grad_output, indices, kernel_size, stride, padding, output_size):
    return grad_output.new_empty(indices.shape)


def _max_unpool2d_setup(ctx, inputs, output):
    _x, indices, *ctx.arguments = inputs
    ctx.save_for_backward(indices)


def _max_unpool2d_grad(ctx, grad_output):
    (indices,) = ctx.saved_tensors
    return (_max_unpool2d_backward(grad_output.contiguous(), indices, *ctx.arguments),) + (None,) * 5


torch.library.register_autograd(_max_unpool2d, _max_unpool2d_grad, setup_context=_max_unpool2d_setup)


def _max_unpool2d_backward_setup(ctx, inputs, output):
    grad_output, indices, *_ = inputs
    ctx.unpooled_size = tuple(grad_output.shape[-2:])
    ctx.save_for_backward(indices)


def _max_unpool2d_backward_grad(ctx, grad_grad_input):
    # The backward gathers grad_output at the indices; its derivative adds back at them.
    (indices,) = ctx.saved_tensors
    return (_scatter_add(grad_grad_input, indices, ctx.unpooled_size),) + (None,) * 5


torch.library.register_autograd(_max_unpool2d_backward, _max_unpool2d_backward_grad,
                                setup_context=_max_unpool2d_backward_setup)


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """torch.nn.functional.max_unpool2d on convpool's kernels: each value of x at the position its
    index names in an output of zeros.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> y, indices = torch.nn.functional.max_pool2d(x, 2, return_indices=True)
        >>> torch.equal(cpt.max_unpool2d(y, indices, 2), torch.nn.functional.max_unpool2d(y, indices, 2))
        True
    """
    fn = "convpool.torch.max_unpool2d"
    kernel = pair(fn, "kernel_size", kernel_size, 1)
    return torch.ops.convpool.max_unpool2d(x, indices, kernel, stride_pair(fn, stride, kernel),
                                           pair(fn, "padding", padding, 0),
                                           [] if output_size is None else [int(v) for v in output_size])
