"""BatchNorm2d, with PyTorch's running statistics, on the batch_norm2d kernels."""

import numpy as np

from .. import _core
from .._arguments import integer
from .module import Module, Parameter

__all__ = ["BatchNorm2d"]


class BatchNorm2d(Module):
    """Batch normalisation over (N, H, W) per channel, with PyTorch's running statistics, on the
    batch_norm2d kernels.

    Training normalises with the batch's biased variance and updates running_var with the unbiased
    one; ``momentum=None`` keeps a cumulative average. Eval mode uses the running statistics (the
    batch's when ``track_running_stats=False``). The running statistics are updated in place, so
    they keep the input's dtype (``.double()`` converts them with the parameters).

    Args:
        num_features: C, the channels.
        eps: added to the variance; positive.
        momentum: the running statistics' update, or None for their cumulative average.
        affine: whether the layer has a learned weight and bias.
        track_running_stats: whether it keeps running statistics (used in evaluation).

    Shape:
        input: (N, C, H, W), or (N, H, W, C) after ``to_layout("nhwc")`` -> output: the same shape.

    Example:
        >>> bn = cp.nn.BatchNorm2d(2)
        >>> y = bn(np.arange(16, dtype=np.float32).reshape(2, 2, 2, 2))
        >>> y.mean(axis=(0, 2, 3)).round(6), bn.running_mean
        (array([-0., -0.], dtype=float32), array([0.55, 0.95], dtype=float32))
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        num_features = integer("BatchNorm2d", "num_features", num_features)
        if not eps > 0:
            raise ValueError(f"BatchNorm2d: eps={eps} must be positive")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm2d: momentum={momentum} must be None or between 0 and 1")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=np.float32))
            self.bias = Parameter(np.zeros(num_features, dtype=np.float32))
        else:
            self.weight = self.bias = None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
            self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))

    layouts = ("nchw", "nhwc")

    def _check(self, x):
        nhwc = self.layout == "nhwc"
        if x.ndim != 4 or x.shape[3 if nhwc else 1] != self.num_features:
            expected = f"(N, H, W, {self.num_features})" if nhwc else f"(N, {self.num_features}, H, W)"
            raise ValueError(
                f"BatchNorm2d: input must be {expected}, got {x.shape}"
            )

    fused_activations = ("relu",)

    def forward(self, x, activation=None):
        """``activation="relu"``: the following ReLU in the same pass (a Sequential asks for it),
        and the backward then takes the ReLU's gradient too."""
        self._check(x)
        use_batch = self.training or not self.track_running_stats
        update = self.training and self.track_running_stats
        momentum = 0.0
        if update:  # momentum=None: the cumulative average, 1 / (batches seen, this one included)
            momentum = 1.0 / float(self.num_batches_tracked + 1) if self.momentum is None else self.momentum
        running = (self.running_mean, self.running_var) if update or not use_batch else (None, None)
        weight, bias = (self.weight.data, self.bias.data) if self.affine else (None, None)
        out, mean, inv_std = _core.batch_norm2d(
            x, weight, bias, *running, training=use_batch, momentum=momentum, eps=self.eps, activation=activation,
            layout=self.layout)
        if update:
            self.num_batches_tracked += 1
        self.save_for_backward(input=x, mean=mean, inv_std=inv_std, batch_statistics=use_batch,
                               activation=activation, output=out if activation else None)
        return out

    def backward(self, grad_output, need_input_grad=True):
        saved = self.saved_for_backward()
        needs = (("input",) if need_input_grad else ()) + (("weight", "bias") if self.affine else ())
        grad_input, grad_weight, grad_bias = _core.batch_norm2d_backward(
            grad_output, saved.input, self.weight.data if self.affine else None, saved.mean, saved.inv_std,
            training=saved.batch_statistics, needs=needs, activation=saved.activation, output=saved.output,
            layout=self.layout)
        if self.affine:
            self.weight.accumulate(grad_weight)
            self.bias.accumulate(grad_bias)
        return grad_input

    def _check_state_entry(self, name, value, full_name):
        if name in ("running_var", "num_batches_tracked") and not (value >= 0).all():
            raise ValueError(f"load_state_dict: '{full_name}' must be non-negative (and not NaN)")

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
