"""The convolution operators: conv2d, conv1d and conv_transpose2d, with their backward operators."""

from typing import List, Optional, Tuple

import torch

from .. import _core
from .._arguments import integer, pair, single
from ._operators import _array, _empty_like_layout, _fitting, _layout_array, _layout_of, _layout_tensor, _operator, _optional_array

__all__ = ["conv1d", "conv2d", "conv_transpose2d"]


# A channels_last x runs the NHWC kernels on its own memory and gives channels_last results, as
# torch.nn does; the gradient that comes back is made channels_last to match.

@_operator("conv2d")
def _conv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], stride: List[int],
            padding: List[int], dilation: List[int], groups: int) -> torch.Tensor:
    fn = "conv2d"
    weight_array, bias_array = _array(fn, "weight", weight), None if bias is None else _array(fn, "bias", bias)
    layout = _layout_of(x)
    return _layout_tensor(_core.conv2d(_layout_array(fn, "x", x, layout), weight_array, bias_array, stride, padding,
                                       dilation, groups, layout=layout), layout)


@torch.library.register_fake(_conv2d)
def _(x, weight, bias, stride, padding, dilation, groups):
    if x.shape[-3] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise ValueError(f"convpool.torch.conv2d: weight of shape {tuple(weight.shape)} with groups={groups} does "
                         f"not fit x of shape {tuple(x.shape)}")
    size = _fitting("conv2d", x, [
        (x.shape[-2 + d] + 2 * padding[d] - dilation[d] * (weight.shape[2 + d] - 1) - 1) // stride[d] + 1
        for d in range(2)])
    return _empty_like_layout(x, list(x.shape[:-3]) + [weight.shape[0]] + size)


@_operator("conv2d_backward")
def _conv2d_backward(grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, stride: List[int],
                     padding: List[int], dilation: List[int], groups: int,
                     needs: List[bool]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    fn = "conv2d_backward"
    names = [name for name, wanted in zip(("input", "weight", "bias"), needs) if wanted]
    weight_array = _array(fn, "weight", weight)
    layout = _layout_of(x)
    grads = _core.conv2d_backward(_layout_array(fn, "grad_output", grad_output, layout),
                                  _layout_array(fn, "x", x, layout), weight_array, stride, padding, dilation, groups,
                                  names, layout=layout)
    grad_input, grad_weight, grad_bias = grads
    # A gradient not asked for is returned empty, which the schema (no Optional outputs) needs.
    return (x.new_empty(0) if grad_input is None else _layout_tensor(grad_input, layout),
            *(x.new_empty(0) if g is None else torch.from_numpy(g) for g in (grad_weight, grad_bias)))


@torch.library.register_fake(_conv2d_backward)
def _(grad_output, x, weight, stride, padding, dilation, groups, needs):
    empties = (lambda shape: _empty_like_layout(x, shape), x.new_empty, x.new_empty)
    shapes = (x.shape, weight.shape, (weight.shape[0],))
    return tuple(empty(shape) if wanted else x.new_empty(0) for empty, shape, wanted in zip(empties, shapes, needs))


def _conv2d_setup(ctx, inputs, output):
    x, weight, bias, *ctx.arguments = inputs
    ctx.has_bias = bias is not None
    ctx.save_for_backward(x, weight)


def _conv2d_grad(ctx, grad_output):
    x, weight = ctx.saved_tensors
    needs = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
    grad_input, grad_weight, grad_bias = _conv2d_backward(grad_output, x, weight, *ctx.arguments, needs)
    return ((grad_input if needs[0] else None, grad_weight if needs[1] else None, grad_bias if needs[2] else None)
            + (None,) * 4)


torch.library.register_autograd(_conv2d, _conv2d_grad, setup_context=_conv2d_setup)


def _convolution_backward_setup(ctx, inputs, output):
    grad_output, x, weight, *arguments, needs = inputs
    ctx.arguments, ctx.needs = arguments, needs
    ctx.save_for_backward(grad_output, x, weight)


def _convolution_backward_grad(forward, backward):
    """The derivative of a convolution's backward operator (grad_output, x, weight, *arguments,
    needs) -> (grad_input, grad_weight, grad_bias), which is bilinear: grad_input pairs grad_output
    with the weight, grad_weight pairs it with x, grad_bias sums it. With dI, dW, dB the gradients
    reaching those three, grad_output receives forward(dI, weight, dB) + forward(x, dW), x receives
    the input gradient of a convolution of weight dW, and the weight the weight gradient of a
    convolution of input dI: the operators themselves, so that the derivatives go on."""

    def gradient(ctx, grad_input_grad, grad_weight_grad, grad_bias_grad):
        grad_output, x, weight = ctx.saved_tensors
        wanted = [flag and grad is not None and grad.numel() > 0
                  for flag, grad in zip(ctx.needs, (grad_input_grad, grad_weight_grad, grad_bias_grad))]
        d_input, d_weight, d_bias = (grad.contiguous() if use else None for grad, use in
                                     zip((grad_input_grad, grad_weight_grad, grad_bias_grad), wanted))
        d_grad_output = d_x = d_w = None
        if ctx.needs_input_grad[0]:
            terms = []
            if d_input is not None or d_bias is not None:
                source = d_input if d_input is not None else torch.zeros_like(x)
                terms.append(forward(source, weight, d_bias, *ctx.arguments))
            if d_weight is not None:
                terms.append(forward(x, d_weight, None, *ctx.arguments))
            d_grad_output = sum(terms[1:], terms[0]) if terms else None
        if ctx.needs_input_grad[1] and d_weight is not None:
            d_x = backward(grad_output.contiguous(), x, d_weight, *ctx.arguments, [True, False, False])[0]
        if ctx.needs_input_grad[2] and d_input is not None:
            d_w = backward(grad_output.contiguous(), d_input, weight, *ctx.arguments, [False, True, False])[1]
        return (d_grad_output, d_x, d_w) + (None,) * (len(ctx.arguments) + 1)

    return gradient


torch.library.register_autograd(_conv2d_backward,
                                _convolution_backward_grad(torch.ops.convpool.conv2d,
                                                           torch.ops.convpool.conv2d_backward),
                                setup_context=_convolution_backward_setup)


def _padding_mode(fn, x, padding, kernel, stride, dilation):
    """torch.nn.functional's padding="valid" or "same" as the operator's symmetric padding (per
    spatial dimension), with x padded by the one extra zero row or column at the end that "same"
    puts there for an odd total, as PyTorch does; x and integer padding pass unchanged."""
    if not isinstance(padding, str):
        return x, padding
    if padding == "valid":
        return x, [0] * len(kernel)
    if padding != "same":
        raise ValueError(f"convpool.torch.{fn}: padding must be an int, a tuple of ints, 'valid' or 'same', got "
                         f"{padding!r}")
    if any(s != 1 for s in stride):
        raise ValueError(f"convpool.torch.{fn}: padding='same' is not supported for strided convolutions")
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    extra = [total % 2 for total in totals]
    if any(extra):
        ends = []
        for e in reversed(extra):  # torch.nn.functional.pad takes the last dimension first
            ends += [0, e]
        x = torch.nn.functional.pad(x, ends)
    return x, [total // 2 for total in totals]


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d on convpool's kernels (padding an int, a pair, 'valid' or 'same').

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> x, w = torch.randn(1, 2, 6, 6, dtype=torch.float64), torch.randn(3, 2, 3, 3, dtype=torch.float64)
        >>> torch.allclose(cpt.conv2d(x, w, padding="same"), torch.nn.functional.conv2d(x, w, padding="same"))
        True
    """
    fn = "convpool.torch.conv2d"
    stride, dilation = pair(fn, "stride", stride, 1), pair(fn, "dilation", dilation, 1)
    x, padding = _padding_mode("conv2d", x, padding, list(weight.shape[-2:]), stride, dilation)
    return torch.ops.convpool.conv2d(x, weight, bias, stride, pair(fn, "padding", padding, 0), dilation,
                                     integer(fn, "groups", groups))


@_operator("conv_transpose2d")
def _conv_transpose2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], stride: List[int],
                      padding: List[int], output_padding: List[int], groups: int,
                      dilation: List[int]) -> torch.Tensor:
    fn = "conv_transpose2d"
    return torch.from_numpy(_core.conv_transpose2d(_array(fn, "x", x), _array(fn, "weight", weight),
                                                   _optional_array(fn, "bias", bias), stride, padding,
                                                   output_padding, groups, dilation))


@torch.library.register_fake(_conv_transpose2d)
def _(x, weight, bias, stride, padding, output_padding, groups, dilation):
    if x.shape[-3] != weight.shape[0] or weight.shape[0] % groups:
        raise ValueError(f"convpool.torch.conv_transpose2d: weight of shape {tuple(weight.shape)} with "
                         f"groups={groups} does not fit x of shape {tuple(x.shape)}")
    size = _fitting("conv_transpose2d", x, [
        (x.shape[-2 + d] - 1) * stride[d] - 2 * padding[d] + dilation[d] * (weight.shape[2 + d] - 1)
        + output_padding[d] + 1 for d in range(2)])
    return x.new_empty(list(x.shape[:-3]) + [weight.shape[1] * groups] + size)


@_operator("conv_transpose2d_backward")
def _conv_transpose2d_backward(grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, stride: List[int],
                               padding: List[int], output_padding: List[int], groups: int, dilation: List[int],
                               needs: List[bool]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    fn = "conv_transpose2d_backward"
    names = [name for name, wanted in zip(("input", "weight", "bias"), needs) if wanted]
    grads = _core.conv_transpose2d_backward(_array(fn, "grad_output", grad_output), _array(fn, "x", x),
                                            _array(fn, "weight", weight), stride, padding, output_padding, groups,
                                            dilation, names)
    return tuple(torch.from_numpy(g) if g is not None else x.new_empty(0) for g in grads)


@torch.library.register_fake(_conv_transpose2d_backward)
def _(grad_output, x, weight, stride, padding, output_padding, groups, dilation, needs):
    shapes = (x.shape, weight.shape, (weight.shape[1] * groups,))
    return tuple(x.new_empty(shape if wanted else (0,)) for shape, wanted in zip(shapes, needs))


def _conv_transpose2d_grad(ctx, grad_output):
    x, weight = ctx.saved_tensors
    needs = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
    grads = _conv_transpose2d_backward(grad_output.contiguous(), x, weight, *ctx.arguments, needs)
    return tuple(grad if wanted else None for grad, wanted in zip(grads, needs)) + (None,) * 5


torch.library.register_autograd(_conv_transpose2d, _conv_transpose2d_grad, setup_context=_conv2d_setup)
torch.library.register_autograd(_conv_transpose2d_backward,
                                _convolution_backward_grad(torch.ops.convpool.conv_transpose2d,
                                                           torch.ops.convpool.conv_transpose2d_backward),
                                setup_context=_convolution_backward_setup)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose2d on convpool's kernels (weight (C_in, C_out / groups, kH, kW)).

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> x, w = torch.randn(1, 2, 4, 4, dtype=torch.float64), torch.randn(2, 3, 3, 3, dtype=torch.float64)
        >>> torch.allclose(cpt.conv_transpose2d(x, w, stride=2), torch.nn.functional.conv_transpose2d(x, w, stride=2))
        True
    """
    fn = "convpool.torch.conv_transpose2d"
    return torch.ops.convpool.conv_transpose2d(x, weight, bias, pair(fn, "stride", stride, 1),
                                               pair(fn, "padding", padding, 0),
                                               pair(fn, "output_padding", output_padding, 0),
                                               integer(fn, "groups", groups), pair(fn, "dilation", dilation, 1))


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv1d on convpool's kernels (padding an int, 'valid' or 'same').

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> x, w = torch.randn(1, 2, 9, dtype=torch.float64), torch.randn(3, 2, 4, dtype=torch.float64)
        >>> torch.allclose(cpt.conv1d(x, w, padding="same"), torch.nn.functional.conv1d(x, w, padding="same"))
        True
    """
    fn = "convpool.torch.conv1d"
    stride, dilation = single(fn, "stride", stride, 1), single(fn, "dilation", dilation, 1)
    x, padding = _padding_mode("conv1d", x, padding, [weight.shape[-1]], [stride], [dilation])
    return torch.ops.convpool.conv2d(x.unsqueeze(-2), weight.unsqueeze(-2), bias, [1, stride],
                                     [0, single(fn, "padding", padding, 0)], [1, dilation],
                                     integer(fn, "groups", groups)).squeeze(-2)
