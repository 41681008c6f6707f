"""The torch.nn twin of a convpool model: same structure, same state_dict names, same weights."""

import functools

import numpy as np

from .activation import ReLU
from .convolution import Conv1d, Conv2d, ConvTranspose2d
from .linear import Flatten, Linear
from .module import Residual, Sequential
from .normalization import BatchNorm2d
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool1d, MaxPool1d, MaxPool2d


def _torch():
    try:
        import torch
    except ImportError as error:
        raise ImportError("to_torch needs PyTorch: pip install 'convpool[torch]'") from error
    return torch


def _twin(module, torch):
    tnn = torch.nn
    if isinstance(module, Sequential):
        return tnn.Sequential(*(_twin(child, torch) for child in module))
    if isinstance(module, Residual):
        return _residual_class()(_twin(module.body, torch),
                                 None if module.shortcut is None else _twin(module.shortcut, torch))
    if isinstance(module, (Conv1d, Conv2d)):
        twin = tnn.Conv1d if isinstance(module, Conv1d) else tnn.Conv2d
        return twin(module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                    module.dilation, module.groups, bias=module.bias is not None)
    if isinstance(module, ConvTranspose2d):
        return tnn.ConvTranspose2d(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                                   module.padding, module.output_padding, module.groups, bias=module.bias is not None,
                                   dilation=module.dilation)
    max_pools = (MaxPool1d, MaxPool2d, AdaptiveMaxPool2d)
    if isinstance(module, max_pools) and (module.tie_break, module.nan) != ("first", "propagate"):
        raise TypeError(f"to_torch: PyTorch's max pooling has no tie_break={module.tie_break!r} / "
                        f"nan={module.nan!r}; only tie_break='first', nan='propagate' have an equivalent")
    if isinstance(module, AdaptiveMaxPool2d):
        return tnn.AdaptiveMaxPool2d(module.output_size)
    if isinstance(module, (MaxPool1d, MaxPool2d)):
        twin = tnn.MaxPool1d if isinstance(module, MaxPool1d) else tnn.MaxPool2d
        return twin(module.kernel_size, module.stride, module.padding, module.dilation, ceil_mode=module.ceil_mode)
    if isinstance(module, AvgPool1d):
        return tnn.AvgPool1d(module.kernel_size, module.stride, module.padding, module.ceil_mode,
                             module.count_include_pad)
    if isinstance(module, BatchNorm2d):
        return tnn.BatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
    if isinstance(module, Linear):
        return tnn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
    if isinstance(module, AdaptiveAvgPool2d):
        return tnn.AdaptiveAvgPool2d(module.output_size)
    if isinstance(module, ReLU):
        return tnn.ReLU()
    if isinstance(module, Flatten):
        return tnn.Flatten(module.start_dim, module.end_dim)
    raise TypeError(f"to_torch: no torch.nn equivalent for {type(module).__name__}")


@functools.lru_cache(maxsize=None)
def _residual_class():
    """Built on first use, so that importing convpool never imports torch."""
    torch = _torch()

    class TorchResidual(torch.nn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    return TorchResidual


def to_torch(module):
    """A torch.nn module with ``module``'s structure, state_dict names, weights, buffers and mode.

    Covers Sequential, Residual, Conv1d, Conv2d, ConvTranspose2d, BatchNorm2d, Linear, MaxPool1d,
    MaxPool2d and AdaptiveMaxPool2d (PyTorch's tie and NaN rules only), AvgPool1d, AdaptiveAvgPool2d,
    ReLU and Flatten:
    enough to run a convpool ResNet or LeNet-5 in PyTorch, or to compare the two. Needs torch.

    Example:
        >>> import torch
        >>> cp.manual_seed(0)
        >>> net = cp.nn.Sequential(cp.nn.Conv2d(1, 2, 3), cp.nn.ReLU())
        >>> module = cp.nn.to_torch(net)
        >>> x = np.ones((1, 1, 5, 5), np.float32)
        >>> bool(np.allclose(module(torch.from_numpy(x)).detach().numpy(), net(x), atol=1e-6))
        True
    """
    torch = _torch()
    twin = _twin(module, torch)
    dtypes = {parameter.dtype for parameter in module.parameters()}
    if dtypes == {np.dtype(np.float64)}:
        twin = twin.double()
    twin.load_state_dict({name: torch.from_numpy(value) for name, value in module.state_dict().items()})
    return twin.train(module.training)
