"""The custom operators. Each calls a convpool kernel on the tensors' memory: a contiguous CPU
float32/float64 tensor reaches the kernel through Tensor.numpy() without a copy (other layouts,
such as channels_last, are copied to NCHW by the kernel's binding), and results come back with
torch.from_numpy, also without a copy. The kernels release the GIL."""

from typing import List, Optional, Tuple

import torch

from .. import _core
from .._arguments import divisor, integer, pair, ratio_pair, single, stride_pair, stride_single


def _array(fn, name, tensor):
    if tensor.device.type != "cpu":
        raise TypeError(f"convpool.torch.{fn}: {name} is on {tensor.device}; convpool computes on the CPU "
                        f"(move it with .cpu())")
    if tensor.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"convpool.torch.{fn}: {name} has dtype {tensor.dtype}; convpool takes float32 or float64")
    return tensor.detach().numpy()


def _output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling output size, for the fake kernels."""
    span = dilation * (kernel - 1) + 1
    out = (size + 2 * padding - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _fitting(fn, x, sizes):
    """The spatial output ``sizes`` a fake kernel computed for input ``x``, or the ValueError the
    real kernel raises for a window that does not fit: fake tensors must not have shapes where the
    call fails."""
    if any(size < 1 for size in sizes):
        raise ValueError(f"convpool.torch.{fn}: the window does not fit the input of shape {tuple(x.shape)} "
                         f"(the output would be {tuple(sizes)})")
    return list(sizes)


# torch.library.Library rather than torch.library.custom_op: the operators are the same (schema,
# fake kernels, autograd), but custom_op's extra Python layers around each kernel doubled the cost
# of a call.
_LIBRARY = torch.library.Library("convpool", "DEF")


def _operator(name):
    """Defines convpool::<name> with the decorated function as its kernel for every device (it
    refuses all but the CPU itself, by name), the schema read from the function's annotations;
    returns the operator."""

    def define(kernel):
        _LIBRARY.define(name + torch.library.infer_schema(kernel, mutates_args=()))
        _LIBRARY.impl(name, kernel, "CompositeExplicitAutograd")
        return getattr(torch.ops.convpool, name).default

    return define


# Second derivatives. The backward of each linear backward kernel is the forward it came from or
# a gather by the same indices, so create_graph=True can differentiate through it again; where the
# backward is not linear in its gradient (Lp pooling, batch norm, evaluation-mode stochastic
# pooling, split ties) differentiating it raises instead of giving torch's silent zero.

def _gather(values, indices):
    """values (..., H, W) read at each plane's flat indices (..., OH, OW); index -1 reads 0."""
    flat = indices.flatten(-2)
    gathered = values.flatten(-2).gather(-1, flat.clamp(min=0))
    return gathered.masked_fill(flat < 0, 0).view(indices.shape)


def _scatter_add(values, indices, size):
    """The adjoint of _gather: values (..., OH, OW) added at their planes' flat indices into zeros
    (..., *size); index -1 adds nothing."""
    flat = indices.flatten(-2)
    added = values.flatten(-2).masked_fill(flat < 0, 0)
    zeros = values.new_zeros(values.shape[:-2] + (size[0] * size[1],))
    return zeros.scatter_add(-1, flat.clamp(min=0), added).view(values.shape[:-2] + tuple(size))


def _second_derivative_refused(operator, why):
    """The autograd formula of a backward operator whose own derivative is not implemented."""
    alternative = getattr(torch.nn.functional, operator, None)
    instead = f"; use torch.nn.functional.{operator} where they are needed" if alternative else ""

    def refuse(ctx, *grads):
        raise NotImplementedError(f"convpool.torch.{operator}: second derivatives (differentiating its backward, "
                                  f"create_graph=True) are not implemented: {why}{instead}")

    return refuse


def _save_indices(ctx, inputs, output):
    """Setup of a backward operator (grad_output, x, indices, ...) that routes by indices."""
    ctx.arguments = inputs[3:]
    ctx.save_for_backward(inputs[2])


def _gathered_again(operator, refusal=None):
    """The autograd formula of a backward operator (grad_output, x, indices, *arguments) that adds
    each output's gradient at its index: linear in grad_output, whose derivative is the gather by
    the same indices, and constant in x almost everywhere. refusal(arguments) gives the reason
    the derivative is not implemented for those arguments, or None."""

    def gradient(ctx, grad_grad_input):
        why = refusal(ctx.arguments) if refusal else None
        if why:
            _second_derivative_refused(operator, why)(ctx)
        (indices,) = ctx.saved_tensors
        return (_gather(grad_grad_input, indices), None, None) + (None,) * len(ctx.arguments)

    return gradient


# ---- max pooling ----------------------------------------------------------------------------

@_operator("max_pool2d")
def _max_pool2d(x: torch.Tensor, kernel_size: List[int], stride: List[int], padding: List[int],
                dilation: List[int], ceil_mode: bool, tie_break: str, nan: str) -> Tuple[torch.Tensor, torch.Tensor]:
    out, indices = _core.max_pool2d(_array("max_pool2d", "x", x), kernel_size, stride, padding, dilation, ceil_mode,
                                    True, tie_break, nan)
    return torch.from_numpy(out), torch.from_numpy(indices)


def _pooled_with_indices(x, size):
    """Fake results of a max pooling of x to the spatial `size`: values and int64 indices."""
    shape = list(x.shape[:-2]) + list(size)
    return x.new_empty(shape), x.new_empty(shape, dtype=torch.int64)


@torch.library.register_fake(_max_pool2d)
def _(x, kernel_size, stride, padding, dilation, ceil_mode, tie_break, nan):
    return _pooled_with_indices(x, _fitting("max_pool2d", x, [
        _output_size(x.shape[-2 + d], kernel_size[d], stride[d], padding[d], dilation[d], ceil_mode)
        for d in range(2)]))


@_operator("max_pool2d_backward")
def _max_pool2d_backward(grad_output: torch.Tensor, x: torch.Tensor, indices: torch.Tensor, kernel_size: List[int],
                         stride: List[int], padding: List[int], dilation: List[int], ceil_mode: bool, tie_break: str,
                         nan: str) -> torch.Tensor:
    fn = "max_pool2d_backward"
    return torch.from_numpy(_core.max_pool2d_backward(
        _array(fn, "grad_output", grad_output), _array(fn, "x", x), indices.detach().numpy(), kernel_size, stride,
        padding, dilation, ceil_mode, tie_break, nan))


@torch.library.register_fake(_max_pool2d_backward)
def _(grad_output, x, indices, kernel_size, stride, padding, dilation, ceil_mode, tie_break, nan):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _save_input_and_indices(ctx, inputs, output):
    x, *ctx.arguments = inputs
    ctx.save_for_backward(x, output[1])


def _gradient_through_indices(backward):
    """The autograd formula of a max pooling operator whose backward takes (grad_output, x,
    indices, the forward's other arguments)."""

    def gradient(ctx, grad_output, _grad_indices):
        x, indices = ctx.saved_tensors
        return (backward(grad_output.contiguous(), x, indices, *ctx.arguments),) + (None,) * len(ctx.arguments)

    return gradient


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


# ---- average pooling ------------------------------------------------------------------------

@_operator("avg_pool2d")
def _avg_pool2d(x: torch.Tensor, kernel_size: List[int], stride: List[int], padding: List[int], ceil_mode: bool,
                count_include_pad: bool, divisor_override: Optional[int] = None) -> torch.Tensor:
    return torch.from_numpy(_core.avg_pool2d(_array("avg_pool2d", "x", x), kernel_size, stride, padding, ceil_mode,
                                             count_include_pad, divisor_override))


@torch.library.register_fake(_avg_pool2d)
def _(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    return x.new_empty(list(x.shape[:-2]) + _fitting("avg_pool2d", x, [
        _output_size(x.shape[-2 + d], kernel_size[d], stride[d], padding[d], 1, ceil_mode) for d in range(2)]))


@_operator("avg_pool2d_backward")
def _avg_pool2d_backward(grad_output: torch.Tensor, input_shape: List[int], kernel_size: List[int],
                         stride: List[int], padding: List[int], ceil_mode: bool,
                         count_include_pad: bool, divisor_override: Optional[int] = None) -> torch.Tensor:
    return torch.from_numpy(_core.avg_pool2d_backward(_array("avg_pool2d_backward", "grad_output", grad_output),
                                                      input_shape, kernel_size, stride, padding, ceil_mode,
                                                      count_include_pad, divisor_override))


@torch.library.register_fake(_avg_pool2d_backward)
def _(grad_output, input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    return grad_output.new_empty(input_shape)


def _avg_pool2d_setup(ctx, inputs, output):
    x, *ctx.arguments = inputs
    ctx.input_shape = list(x.shape)


def _avg_pool2d_grad(ctx, grad_output):
    return (_avg_pool2d_backward(grad_output.contiguous(), ctx.input_shape, *ctx.arguments),) + (None,) * 6


torch.library.register_autograd(_avg_pool2d, _avg_pool2d_grad, setup_context=_avg_pool2d_setup)


def _avg_pool2d_backward_setup(ctx, inputs, output):
    _grad_output, _input_shape, *ctx.arguments = inputs


def _avg_pool2d_backward_grad(ctx, grad_grad_input):
    # The backward is the forward's transpose, so its own derivative is the forward.
    return (torch.ops.convpool.avg_pool2d(grad_grad_input.contiguous(), *ctx.arguments),) + (None,) * 7


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


# ---- convolution ----------------------------------------------------------------------------

@_operator("conv2d")
def _conv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], stride: List[int],
            padding: List[int], dilation: List[int], groups: int) -> torch.Tensor:
    fn = "conv2d"
    return torch.from_numpy(_core.conv2d(_array(fn, "x", x), _array(fn, "weight", weight),
                                         None if bias is None else _array(fn, "bias", bias), stride, padding,
                                         dilation, groups))


@torch.library.register_fake(_conv2d)
def _(x, weight, bias, stride, padding, dilation, groups):
    if x.shape[-3] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise ValueError(f"convpool.torch.conv2d: weight of shape {tuple(weight.shape)} with groups={groups} does "
                         f"not fit x of shape {tuple(x.shape)}")
    size = _fitting("conv2d", x, [
        (x.shape[-2 + d] + 2 * padding[d] - dilation[d] * (weight.shape[2 + d] - 1) - 1) // stride[d] + 1
        for d in range(2)])
    return x.new_empty(list(x.shape[:-3]) + [weight.shape[0]] + size)


@_operator("conv2d_backward")
def _conv2d_backward(grad_output: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, stride: List[int],
                     padding: List[int], dilation: List[int], groups: int,
                     needs: List[bool]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    fn = "conv2d_backward"
    names = [name for name, wanted in zip(("input", "weight", "bias"), needs) if wanted]
    grads = _core.conv2d_backward(_array(fn, "grad_output", grad_output), _array(fn, "x", x),
                                  _array(fn, "weight", weight), stride, padding, dilation, groups, names)
    # A gradient not asked for is returned empty, which the schema (no Optional outputs) needs.
    return tuple(torch.from_numpy(g) if g is not None else x.new_empty(0) for g in grads)


@torch.library.register_fake(_conv2d_backward)
def _(grad_output, x, weight, stride, padding, dilation, groups, needs):
    shapes = (x.shape, weight.shape, (weight.shape[0],))
    return tuple(x.new_empty(shape if wanted else (0,)) for shape, wanted in zip(shapes, needs))


def _conv2d_setup(ctx, inputs, output):
    x, weight, bias, *ctx.arguments = inputs
    ctx.has_bias = bias is not None
    ctx.save_for_backward(x, weight)


def _conv2d_grad(ctx, grad_output):
    x, weight = ctx.saved_tensors
    needs = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
    grad_input, grad_weight, grad_bias = _conv2d_backward(grad_output.contiguous(), x, weight, *ctx.arguments, needs)
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


# ---- Lp pooling, adaptive average pooling, relu ----------------------------------------------

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
    return torch.from_numpy(_core.adaptive_avg_pool2d(_array("adaptive_avg_pool2d", "x", x), output_size))


@torch.library.register_fake(_adaptive_avg_pool2d)
def _(x, output_size):
    return x.new_empty(list(x.shape[:-2]) + list(output_size))


@_operator("adaptive_avg_pool2d_backward")
def _adaptive_avg_pool2d_backward(grad_output: torch.Tensor, input_shape: List[int]) -> torch.Tensor:
    return torch.from_numpy(_core.adaptive_avg_pool2d_backward(
        _array("adaptive_avg_pool2d_backward", "grad_output", grad_output), input_shape))


@torch.library.register_fake(_adaptive_avg_pool2d_backward)
def _(grad_output, input_shape):
    return grad_output.new_empty(input_shape)


def _adaptive_avg_pool2d_setup(ctx, inputs, output):
    ctx.input_shape = list(inputs[0].shape)


def _adaptive_avg_pool2d_grad(ctx, grad_output):
    return _adaptive_avg_pool2d_backward(grad_output.contiguous(), ctx.input_shape), None


torch.library.register_autograd(_adaptive_avg_pool2d, _adaptive_avg_pool2d_grad,
                                setup_context=_adaptive_avg_pool2d_setup)


def _adaptive_avg_pool2d_backward_setup(ctx, inputs, output):
    ctx.output_size = list(inputs[0].shape[-2:])


def _adaptive_avg_pool2d_backward_grad(ctx, grad_grad_input):
    return torch.ops.convpool.adaptive_avg_pool2d(grad_grad_input.contiguous(), ctx.output_size), None


torch.library.register_autograd(_adaptive_avg_pool2d_backward, _adaptive_avg_pool2d_backward_grad,
                                setup_context=_adaptive_avg_pool2d_backward_setup)


def _adaptive_size(x, output_size):
    """An int or pair output size, None keeping that input size."""
    pair = list(output_size) if isinstance(output_size, (tuple, list)) else [output_size, output_size]
    return [int(x.shape[-2 + d]) if pair[d] is None else int(pair[d]) for d in range(2)]


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
    return torch.ops.convpool.adaptive_avg_pool2d(x, _adaptive_size(x, output_size))


@_operator("relu")
def _relu(x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(_core.relu(_array("relu", "x", x)))


@torch.library.register_fake(_relu)
def _(x):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@_operator("relu_backward")
def _relu_backward(grad_output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    fn = "relu_backward"
    return torch.from_numpy(_core.relu_backward(_array(fn, "grad_output", grad_output), _array(fn, "y", y)))


@torch.library.register_fake(_relu_backward)
def _(grad_output, y):
    return torch.empty_like(y, memory_format=torch.contiguous_format)


def _relu_setup(ctx, inputs, output):
    ctx.save_for_backward(output)


def _relu_grad(ctx, grad_output):
    (y,) = ctx.saved_tensors
    return _relu_backward(grad_output.contiguous(), y)


torch.library.register_autograd(_relu, _relu_grad, setup_context=_relu_setup)


def _relu_backward_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])


def _relu_backward_grad(ctx, grad_grad_input):
    # grad_output masked by y > 0: linear in grad_output, constant in y almost everywhere.
    (y,) = ctx.saved_tensors
    return torch.ops.convpool.relu_backward(grad_grad_input.contiguous(), y), None


torch.library.register_autograd(_relu_backward, _relu_backward_grad, setup_context=_relu_backward_setup)


def relu(x):
    """max(x, 0) with PyTorch's rules (NaN kept), on convpool's kernel.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> cpt.relu(torch.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """
    return torch.ops.convpool.relu(x)


# ---- stochastic pooling ---------------------------------------------------------------------

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


# ---- batch normalization --------------------------------------------------------------------

def _optional_array(fn, name, tensor):
    return None if tensor is None else _array(fn, name, tensor)


# Functional, as autograd needs: the updated running statistics are outputs (the kernel updates
# copies of them), which batch_norm then copies into the caller's tensors.
@_operator("batch_norm2d")
def _batch_norm2d(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                  running_mean: Optional[torch.Tensor], running_var: Optional[torch.Tensor], training: bool,
                  momentum: float, eps: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                                        torch.Tensor]:
    fn = "batch_norm2d"
    updated = training and running_mean is not None and running_var is not None
    if updated:
        running_mean, running_var = running_mean.detach().clone(), running_var.detach().clone()
    out, mean, invstd = _core.batch_norm2d(
        _array(fn, "x", x), _optional_array(fn, "weight", weight), _optional_array(fn, "bias", bias),
        _optional_array(fn, "running_mean", running_mean), _optional_array(fn, "running_var", running_var),
        training, momentum, eps)
    statistics = (running_mean, running_var) if updated else (x.new_empty(0), x.new_empty(0))
    return (torch.from_numpy(out), torch.from_numpy(mean), torch.from_numpy(invstd)) + statistics


@torch.library.register_fake(_batch_norm2d)
def _(x, weight, bias, running_mean, running_var, training, momentum, eps):
    channels = x.shape[1]
    updated = training and running_mean is not None and running_var is not None
    statistics = (x.new_empty(channels if updated else 0), x.new_empty(channels if updated else 0))
    return (torch.empty_like(x, memory_format=torch.contiguous_format), x.new_empty(channels),
            x.new_empty(channels)) + statistics


@_operator("batch_norm2d_backward")
def _batch_norm2d_backward(grad_output: torch.Tensor, x: torch.Tensor, weight: Optional[torch.Tensor],
                           saved_mean: torch.Tensor, saved_invstd: torch.Tensor, training: bool,
                           needs: List[bool]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    fn = "batch_norm2d_backward"
    names = [name for name, wanted in zip(("input", "weight", "bias"), needs) if wanted]
    grads = _core.batch_norm2d_backward(_array(fn, "grad_output", grad_output), _array(fn, "x", x),
                                        _optional_array(fn, "weight", weight), _array(fn, "saved_mean", saved_mean),
                                        _array(fn, "saved_invstd", saved_invstd), training, names)
    return tuple(torch.from_numpy(g) if g is not None else x.new_empty(0) for g in grads)


@torch.library.register_fake(_batch_norm2d_backward)
def _(grad_output, x, weight, saved_mean, saved_invstd, training, needs):
    shapes = (x.shape, (x.shape[1],), (x.shape[1],))
    return tuple(x.new_empty(shape if wanted else (0,)) for shape, wanted in zip(shapes, needs))


def _batch_norm2d_setup(ctx, inputs, output):
    x, weight, bias, _running_mean, _running_var, training, _momentum, _eps = inputs
    ctx.training, ctx.has_weight, ctx.has_bias = training, weight is not None, bias is not None
    ctx.save_for_backward(x, weight, output[1], output[2])
    ctx.mark_non_differentiable(*output[1:])


def _batch_norm2d_grad(ctx, grad_output, *_grad_statistics):
    x, weight, mean, invstd = ctx.saved_tensors
    needs = [ctx.needs_input_grad[0], ctx.has_weight and ctx.needs_input_grad[1],
             ctx.has_bias and ctx.needs_input_grad[2]]
    grads = _batch_norm2d_backward(grad_output.contiguous(), x, weight, mean, invstd, ctx.training, needs)
    return tuple(grad if wanted else None for grad, wanted in zip(grads, needs)) + (None,) * 5


torch.library.register_autograd(_batch_norm2d, _batch_norm2d_grad, setup_context=_batch_norm2d_setup)
torch.library.register_autograd(_batch_norm2d_backward, _second_derivative_refused(
    "batch_norm", "the backward of training-mode batch norm is not linear in x"))


def _empty_batch_norm(x, weight, bias):
    """PyTorch's result for an empty batch: an empty output, through the affine parameters (whose
    gradients are then zeros), the running statistics unchanged."""
    channels = x.shape[1]
    for name, parameter in (("weight", weight), ("bias", bias)):
        if parameter is not None and parameter.shape != (channels,):
            raise ValueError(f"convpool.torch.batch_norm: {name} has shape {tuple(parameter.shape)}, expected "
                             f"({channels},) for x of shape {tuple(x.shape)}")
    out = x.clone()
    if weight is not None:
        out = out * weight.view(-1, 1, 1)
    if bias is not None:
        out = out + bias.view(-1, 1, 1)
    return out


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """torch.nn.functional.batch_norm of (N, C, H, W) input on convpool's kernels: the running
    statistics are updated in place in training (written into the given tensors), used in
    evaluation.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> x = torch.randn(4, 3, 5, 5, dtype=torch.float64)
        >>> mean, var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
        >>> y = cpt.batch_norm(x, mean, var, training=True)
        >>> torch.allclose(y, torch.nn.functional.batch_norm(x, None, None, training=True)), bool((mean != 0).all())
        (True, True)
    """
    for name, value in (("momentum", momentum), ("eps", eps)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"convpool.torch.batch_norm: {name} must be a float, got {value!r}")
    if x.dim() == 4 and x.shape[0] == 0:
        return _empty_batch_norm(x, weight, bias)
    out, _, _, new_mean, new_var = torch.ops.convpool.batch_norm2d(x, weight, bias, running_mean, running_var,
                                                                   bool(training), float(momentum), float(eps))
    if training and running_mean is not None and running_var is not None:
        with torch.no_grad():
            running_mean.copy_(new_mean)
            running_var.copy_(new_var)
    return out


# ---- adaptive max pooling -------------------------------------------------------------------

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
    out, indices = torch.ops.convpool.adaptive_max_pool2d(x, _adaptive_size(x, output_size), tie_break, nan)
    return (out, indices) if return_indices else out


# ---- transposed convolution -----------------------------------------------------------------

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


# ---- one dimension: the 2-D operators on (N, C, 1, L) views ----------------------------------

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


# ---- fractional max pooling -----------------------------------------------------------------

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


# ---- max unpooling --------------------------------------------------------------------------

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
