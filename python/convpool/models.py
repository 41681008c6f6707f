"""Ready-made networks."""

from .nn import AvgPool2d, Conv2d, Flatten, Linear, LPPool2d, MaxPool2d, ReLU, Sequential, StochasticPool2d

POOLING_KINDS = ("max", "avg", "lp", "stochastic")


def _pool(kind, tie_break):
    if kind == "max":
        return MaxPool2d(2, tie_break=tie_break)
    if kind == "avg":
        return AvgPool2d(2)
    if kind == "lp":
        return LPPool2d(2, 2)
    if kind == "stochastic":
        return StochasticPool2d(2)
    raise ValueError(f"pool must be one of {POOLING_KINDS}, got {kind!r}")


def lenet5(pool="max", tie_break="first", num_classes=10):
    """LeNet-5 for 1x28x28 images with ReLU: conv 5x5 (6) -> pool -> conv 5x5 (16) -> pool ->
    linear 256-120-84-num_classes. ``pool`` is "max" (with ``tie_break``), "avg", "lp" (L2) or
    "stochastic"; every pool is 2x2 with stride 2.
    """
    return Sequential(
        Conv2d(1, 6, 5), ReLU(), _pool(pool, tie_break),
        Conv2d(6, 16, 5), ReLU(), _pool(pool, tie_break),
        Flatten(),
        Linear(16 * 4 * 4, 120), ReLU(),
        Linear(120, 84), ReLU(),
        Linear(84, num_classes),
    )
