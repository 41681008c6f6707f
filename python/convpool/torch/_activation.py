"""The ReLU operator and its backward."""


import torch

from .. import _core
from ._operators import _array, _operator

__all__ = ["relu"]


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
