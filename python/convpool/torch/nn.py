"""torch.nn drop-ins on convpool's operators: torch's constructor arguments and parameters (and so
torch's initialisation, state_dict names and optimizers), plus convpool's tie and NaN rules for
max pooling; ``convert`` swaps them into an existing model."""

import torch

from . import _ops


class MaxPool2d(torch.nn.MaxPool2d):
    """torch.nn.MaxPool2d with convpool's ``tie_break`` and ``nan``."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False,
                 tie_break="first", nan="propagate"):
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode)
        self.tie_break, self.nan = tie_break, nan

    def forward(self, x):
        return _ops.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                               self.return_indices, self.tie_break, self.nan)

    def extra_repr(self):
        return f"{super().extra_repr()}, tie_break={self.tie_break!r}, nan={self.nan!r}"


class AvgPool2d(torch.nn.AvgPool2d):
    """torch.nn.AvgPool2d on convpool's kernels (divisor_override is not supported)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        if divisor_override is not None:
            raise ValueError("convpool.torch.AvgPool2d: divisor_override is not supported")
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)

    def forward(self, x):
        return _ops.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)


class Conv2d(torch.nn.Conv2d):
    """torch.nn.Conv2d on convpool's kernels (zeros padding, integer or pair padding)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("convpool.torch.Conv2d: only padding_mode='zeros' with int or pair padding is supported")

    def forward(self, x):
        return _ops.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class LPPool2d(torch.nn.LPPool2d):
    """torch.nn.LPPool2d on convpool's kernels."""

    def forward(self, x):
        return _ops.lp_pool2d(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)


class AdaptiveAvgPool2d(torch.nn.AdaptiveAvgPool2d):
    """torch.nn.AdaptiveAvgPool2d on convpool's kernels."""

    def forward(self, x):
        return _ops.adaptive_avg_pool2d(x, self.output_size)


class ReLU(torch.nn.ReLU):
    """torch.nn.ReLU on convpool's kernel (not in place)."""

    def __init__(self, inplace=False):
        super().__init__(inplace=False)

    def forward(self, x):
        return _ops.relu(x)


class StochasticPool2d(torch.nn.Module):
    """Stochastic pooling (no torch counterpart): a draw per window in training mode, a fresh seed
    from torch's generator each call; the probability-weighted average in eval mode."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x):
        return _ops.stochastic_pool2d(x, self.kernel_size, self.stride, self.training)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


def convert(model, tie_break="first", nan="propagate"):
    """Replaces, in place, every torch.nn.MaxPool2d, AvgPool2d (without divisor_override), LPPool2d,
    AdaptiveAvgPool2d, ReLU and Conv2d (zeros padding, int or pair) of `model` by convpool's, with
    the same arguments and the same parameter tensors, and returns `model`. Max pooling gets `tie_break` and `nan`. Layers convpool
    cannot take are left as they are."""
    for name, child in model.named_children():
        replacement = None
        if type(child) is torch.nn.MaxPool2d:
            replacement = MaxPool2d(child.kernel_size, child.stride, child.padding, child.dilation,
                                    child.return_indices, child.ceil_mode, tie_break, nan)
        elif type(child) is torch.nn.AvgPool2d and child.divisor_override is None:
            replacement = AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode,
                                    child.count_include_pad)
        elif type(child) is torch.nn.LPPool2d:
            replacement = LPPool2d(child.norm_type, child.kernel_size, child.stride, child.ceil_mode)
        elif type(child) is torch.nn.AdaptiveAvgPool2d:
            replacement = AdaptiveAvgPool2d(child.output_size)
        elif type(child) is torch.nn.ReLU:
            replacement = ReLU()
        elif type(child) is torch.nn.Conv2d and child.padding_mode == "zeros" and not isinstance(child.padding, str):
            replacement = Conv2d.__new__(Conv2d)
            replacement.__dict__.update(child.__dict__)  # the same parameters, buffers and hooks
        if replacement is not None:
            setattr(model, name, replacement)
        else:
            convert(child, tie_break, nan)
    return model
