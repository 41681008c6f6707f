"""torch.nn drop-ins on convpool's operators: torch's constructor arguments and parameters (and so
torch's initialisation, state_dict names and optimizers), plus convpool's tie and NaN rules for
max pooling; ``convert`` swaps them into an existing model."""

import torch

from ._activation import relu
from ._average_pooling import adaptive_avg_pool2d, avg_pool1d, avg_pool2d, lp_pool2d, stochastic_pool2d
from ._convolution import conv1d, conv2d, conv_transpose2d
from ._max_pooling import adaptive_max_pool2d, fractional_max_pool2d, max_pool1d, max_pool2d, max_unpool2d
from ._normalization import batch_norm

__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool1d", "AvgPool2d", "BatchNorm2d", "Conv1d", "Conv2d",
           "ConvTranspose2d", "FractionalMaxPool2d", "LPPool2d", "MaxPool1d", "MaxPool2d", "MaxUnpool2d", "ReLU",
           "StochasticPool2d", "convert"]


class _TieRules:
    """Shows convpool's ``tie_break`` and ``nan`` after torch's arguments."""

    def extra_repr(self):
        return f"{super().extra_repr()}, tie_break={self.tie_break!r}, nan={self.nan!r}"


class _WindowMaxPool(_TieRules):
    """torch's MaxPool1d/2d arguments plus convpool's ``tie_break`` and ``nan``, pooled by ``_pool``."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False,
                 tie_break="first", nan="propagate"):
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode)
        self.tie_break, self.nan = tie_break, nan

    def forward(self, x):
        return self._pool(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                          self.return_indices, self.tie_break, self.nan)


class MaxPool2d(_WindowMaxPool, torch.nn.MaxPool2d):
    """torch.nn.MaxPool2d with convpool's ``tie_break`` and ``nan``.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> cpt.MaxPool2d(2, tie_break="last")(torch.ones(1, 1, 4, 4)).shape
        torch.Size([1, 1, 2, 2])
    """

    _pool = staticmethod(max_pool2d)


class AvgPool2d(torch.nn.AvgPool2d):
    """torch.nn.AvgPool2d on convpool's kernels.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> cpt.AvgPool2d(3, stride=2, padding=1)(torch.ones(1, 1, 8, 8)).shape
        torch.Size([1, 1, 4, 4])
    """

    def forward(self, x):
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                               self.divisor_override)


class _ZerosPaddingConvolution:
    """torch's Conv1d/Conv2d arguments with zeros padding (numbers, 'valid' or 'same'), convolved
    by ``_convolve``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros":
            raise ValueError(f"convpool.torch.{type(self).__name__}: only padding_mode='zeros' is supported, got "
                             f"{self.padding_mode!r}")

    def forward(self, x):
        return self._convolve(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv2d(_ZerosPaddingConvolution, torch.nn.Conv2d):
    """torch.nn.Conv2d on convpool's kernels (zeros padding).

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> _ = torch.manual_seed(0)
        >>> cpt.Conv2d(3, 8, 3, padding="same")(torch.ones(1, 3, 10, 10)).shape
        torch.Size([1, 8, 10, 10])
    """

    _convolve = staticmethod(conv2d)


class LPPool2d(torch.nn.LPPool2d):
    """torch.nn.LPPool2d on convpool's kernels.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> cpt.LPPool2d(2, 2)(torch.ones(1, 1, 4, 4))
        tensor([[[[2., 2.],
                  [2., 2.]]]])
    """

    def forward(self, x):
        return lp_pool2d(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)


class AdaptiveAvgPool2d(torch.nn.AdaptiveAvgPool2d):
    """torch.nn.AdaptiveAvgPool2d on convpool's kernels.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> cpt.AdaptiveAvgPool2d(1)(torch.ones(2, 3, 7, 7)).shape
        torch.Size([2, 3, 1, 1])
    """

    def forward(self, x):
        return adaptive_avg_pool2d(x, self.output_size)


class ReLU(torch.nn.ReLU):
    """torch.nn.ReLU on convpool's kernel (not in place).

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> cpt.ReLU()(torch.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    def __init__(self, inplace=False):
        super().__init__(inplace=False)

    def forward(self, x):
        return relu(x)


class StochasticPool2d(torch.nn.Module):
    """Stochastic pooling (no torch counterpart): a draw per window in training mode, a fresh seed
    from torch's generator each call; the probability-weighted average in eval mode.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> cpt.StochasticPool2d(2)(torch.rand(1, 1, 4, 4)).shape
        torch.Size([1, 1, 2, 2])
    """

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x):
        return stochastic_pool2d(x, self.kernel_size, self.stride, self.training)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class BatchNorm2d(torch.nn.BatchNorm2d):
    """torch.nn.BatchNorm2d on convpool's kernels: the same statistics, buffers and momentum rules
    (momentum=None: a cumulative average), the running statistics updated in place.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> bn = cpt.BatchNorm2d(3)
        >>> bn(torch.randn(4, 3, 5, 5)).shape, int(bn.num_batches_tracked)
        (torch.Size([4, 3, 5, 5]), 1)
    """

    def forward(self, x):
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return batch_norm(x, self.running_mean if track else None, self.running_var if track else None,
                               self.weight, self.bias, use_batch, factor, self.eps)


class AdaptiveMaxPool2d(_TieRules, torch.nn.AdaptiveMaxPool2d):
    """torch.nn.AdaptiveMaxPool2d with convpool's ``tie_break`` and ``nan``.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> cpt.AdaptiveMaxPool2d((2, 2))(torch.ones(2, 3, 7, 7)).shape
        torch.Size([2, 3, 2, 2])
    """

    def __init__(self, output_size, return_indices=False, tie_break="first", nan="propagate"):
        super().__init__(output_size, return_indices)
        self.tie_break, self.nan = tie_break, nan

    def forward(self, x):
        return adaptive_max_pool2d(x, self.output_size, self.return_indices, self.tie_break, self.nan)


class ConvTranspose2d(torch.nn.ConvTranspose2d):
    """torch.nn.ConvTranspose2d on convpool's kernels; ``forward(x, output_size)`` picks the output
    padding as torch's does.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> _ = torch.manual_seed(0)
        >>> cpt.ConvTranspose2d(3, 2, 3, stride=2)(torch.ones(1, 3, 4, 4), output_size=(10, 10)).shape
        torch.Size([1, 2, 10, 10])
    """

    def forward(self, x, output_size=None):
        output_padding = self._output_padding(x, output_size, self.stride, self.padding, self.kernel_size, 2,
                                              self.dilation)
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, output_padding,
                                     self.groups, self.dilation)


class MaxPool1d(_WindowMaxPool, torch.nn.MaxPool1d):
    """torch.nn.MaxPool1d with convpool's ``tie_break`` and ``nan``.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> cpt.MaxPool1d(2)(torch.ones(1, 1, 8)).shape
        torch.Size([1, 1, 4])
    """

    _pool = staticmethod(max_pool1d)


class AvgPool1d(torch.nn.AvgPool1d):
    """torch.nn.AvgPool1d on convpool's kernels.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> cpt.AvgPool1d(2)(torch.ones(1, 1, 8)).shape
        torch.Size([1, 1, 4])
    """

    def forward(self, x):
        return avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)


class Conv1d(_ZerosPaddingConvolution, torch.nn.Conv1d):
    """torch.nn.Conv1d on convpool's kernels (zeros padding).

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> _ = torch.manual_seed(0)
        >>> cpt.Conv1d(3, 8, 3)(torch.ones(1, 3, 10)).shape
        torch.Size([1, 8, 8])
    """

    _convolve = staticmethod(conv1d)


class FractionalMaxPool2d(torch.nn.FractionalMaxPool2d):
    """torch.nn.FractionalMaxPool2d on convpool's kernels (samples from torch's generator).

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> _ = torch.manual_seed(0)
        >>> cpt.FractionalMaxPool2d(2, output_ratio=0.5)(torch.ones(1, 1, 8, 8)).shape
        torch.Size([1, 1, 4, 4])
    """

    def forward(self, x):
        return fractional_max_pool2d(x, self.kernel_size, self.output_size, self.output_ratio,
                                          self.return_indices, self._random_samples)


class MaxUnpool2d(torch.nn.MaxUnpool2d):
    """torch.nn.MaxUnpool2d on convpool's kernels.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> y, indices = torch.nn.functional.max_pool2d(torch.arange(16.0).reshape(1, 1, 4, 4), 2, return_indices=True)
        >>> cpt.MaxUnpool2d(2)(y, indices).shape
        torch.Size([1, 1, 4, 4])
    """

    def forward(self, x, indices, output_size=None):
        return max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)


def _same_module(cls, child):
    """A ``cls`` that is ``child``: the same parameters, buffers, hooks and arguments."""
    replacement = cls.__new__(cls)
    replacement.__dict__.update(child.__dict__)
    return replacement


def convert(model, tie_break="first", nan="propagate"):
    """Replaces, in place, every torch.nn.MaxPool2d, MaxPool1d, AdaptiveMaxPool2d,
    FractionalMaxPool2d, MaxUnpool2d, AvgPool2d, AvgPool1d, LPPool2d,
    AdaptiveAvgPool2d, ReLU, BatchNorm2d, Conv2d and Conv1d (zeros padding) and
    ConvTranspose2d of `model` by convpool's, with the same arguments and the same parameter and
    buffer tensors, and returns `model`. Max pooling gets `tie_break` and `nan`. Layers convpool cannot take are left as they
    are.

    Example:
        >>> import torch
        >>> import convpool.torch as cpt
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2))
        >>> [type(layer).__module__ for layer in cpt.convert(net, tie_break="split")]
        ['convpool.torch.nn', 'convpool.torch.nn', 'convpool.torch.nn']
    """
    for name, child in model.named_children():
        replacement = None
        kind = type(child)
        if kind is torch.nn.MaxPool2d:
            replacement = MaxPool2d(child.kernel_size, child.stride, child.padding, child.dilation,
                                    child.return_indices, child.ceil_mode, tie_break, nan)
        elif kind is torch.nn.MaxPool1d:
            replacement = MaxPool1d(child.kernel_size, child.stride, child.padding, child.dilation,
                                    child.return_indices, child.ceil_mode, tie_break, nan)
        elif kind is torch.nn.AdaptiveMaxPool2d:
            replacement = AdaptiveMaxPool2d(child.output_size, child.return_indices, tie_break, nan)
        elif kind is torch.nn.AvgPool2d:
            replacement = AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode,
                                    child.count_include_pad, child.divisor_override)
        elif kind is torch.nn.AvgPool1d:
            replacement = AvgPool1d(child.kernel_size, child.stride, child.padding, child.ceil_mode,
                                    child.count_include_pad)
        elif kind is torch.nn.LPPool2d:
            replacement = LPPool2d(child.norm_type, child.kernel_size, child.stride, child.ceil_mode)
        elif kind is torch.nn.AdaptiveAvgPool2d:
            replacement = AdaptiveAvgPool2d(child.output_size)
        elif kind is torch.nn.ReLU:
            replacement = ReLU()
        elif kind is torch.nn.BatchNorm2d:
            replacement = _same_module(BatchNorm2d, child)
        elif kind in (torch.nn.Conv2d, torch.nn.Conv1d) and child.padding_mode == "zeros":
            replacement = _same_module(Conv2d if kind is torch.nn.Conv2d else Conv1d, child)
        elif kind is torch.nn.ConvTranspose2d:
            replacement = _same_module(ConvTranspose2d, child)
        elif kind is torch.nn.FractionalMaxPool2d:
            replacement = _same_module(FractionalMaxPool2d, child)
        elif kind is torch.nn.MaxUnpool2d:
            replacement = _same_module(MaxUnpool2d, child)
        if replacement is not None:
            setattr(model, name, replacement)
        else:
            convert(child, tie_break, nan)
    return model
