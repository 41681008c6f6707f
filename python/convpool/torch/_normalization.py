"""The batch normalization operator (functional, as autograd requires: it returns the updated
running statistics, which batch_norm copies into the given buffers)."""

from typing import List, Optional, Tuple

import torch

from .. import _core
from ._operators import (_array, _empty_like_layout, _layout_array, _layout_of, _layout_tensor, _operator,
                         _optional_array, _second_derivative_refused)

__all__ = ["batch_norm"]


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
    layout = _layout_of(x)
    out, mean, invstd = _core.batch_norm2d(
        _layout_array(fn, "x", x, layout), _optional_array(fn, "weight", weight), _optional_array(fn, "bias", bias),
        _optional_array(fn, "running_mean", running_mean), _optional_array(fn, "running_var", running_var),
        training, momentum, eps, layout=layout)
    statistics = (running_mean, running_var) if updated else (x.new_empty(0), x.new_empty(0))
    return (_layout_tensor(out, layout), torch.from_numpy(mean), torch.from_numpy(invstd)) + statistics


@torch.library.register_fake(_batch_norm2d)
def _(x, weight, bias, running_mean, running_var, training, momentum, eps):
    channels = x.shape[1]
    updated = training and running_mean is not None and running_var is not None
    statistics = (x.new_empty(channels if updated else 0), x.new_empty(channels if updated else 0))
    return (_empty_like_layout(x, x.shape), x.new_empty(channels), x.new_empty(channels)) + statistics


@_operator("batch_norm2d_backward")
def _batch_norm2d_backward(grad_output: torch.Tensor, x: torch.Tensor, weight: Optional[torch.Tensor],
                           saved_mean: torch.Tensor, saved_invstd: torch.Tensor, training: bool,
                           needs: List[bool]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    fn = "batch_norm2d_backward"
    names = [name for name, wanted in zip(("input", "weight", "bias"), needs) if wanted]
    layout = _layout_of(x)
    grad_input, grad_weight, grad_bias = _core.batch_norm2d_backward(
        _layout_array(fn, "grad_output", grad_output, layout), _layout_array(fn, "x", x, layout),
        _optional_array(fn, "weight", weight), _array(fn, "saved_mean", saved_mean),
        _array(fn, "saved_invstd", saved_invstd), training, names, layout=layout)
    # A gradient not asked for is returned empty, which the schema (no Optional outputs) needs.
    return (x.new_empty(0) if grad_input is None else _layout_tensor(grad_input, layout),
            *(x.new_empty(0) if g is None else torch.from_numpy(g) for g in (grad_weight, grad_bias)))


@torch.library.register_fake(_batch_norm2d_backward)
def _(grad_output, x, weight, saved_mean, saved_invstd, training, needs):
    empties = (lambda shape: _empty_like_layout(x, shape), x.new_empty, x.new_empty)
    shapes = (x.shape, (x.shape[1],), (x.shape[1],))
    return tuple(empty(shape) if wanted else x.new_empty(0) for empty, shape, wanted in zip(empties, shapes, needs))


def _batch_norm2d_setup(ctx, inputs, output):
    x, weight, bias, _running_mean, _running_var, training, _momentum, _eps = inputs
    ctx.training, ctx.has_weight, ctx.has_bias = training, weight is not None, bias is not None
    ctx.save_for_backward(x, weight, output[1], output[2])
    ctx.mark_non_differentiable(*output[1:])


def _batch_norm2d_grad(ctx, grad_output, *_grad_statistics):
    x, weight, mean, invstd = ctx.saved_tensors
    needs = [ctx.needs_input_grad[0], ctx.has_weight and ctx.needs_input_grad[1],
             ctx.has_bias and ctx.needs_input_grad[2]]
    grads = _batch_norm2d_backward(grad_output, x, weight, mean, invstd, ctx.training, needs)
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
    evaluation. A torch.channels_last x is normalized in place of its memory and gives a
    channels_last result, as torch.nn does.

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
