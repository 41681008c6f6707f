"""Ready-made networks."""

from .nn import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Linear,
    LPPool2d,
    MaxPool2d,
    ReLU,
    Residual,
    Sequential,
    StochasticPool2d,
)

__all__ = ["POOLING_KINDS", "basic_block", "lenet5", "resnet18", "resnet20", "resnet8", "resnet_cifar"]

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

    Example:
        >>> cp.manual_seed(0)
        >>> model = cp.models.lenet5(pool="avg")
        >>> model(np.ones((2, 1, 28, 28), np.float32)).shape
        (2, 10)
    """
    return Sequential(
        Conv2d(1, 6, 5), ReLU(), _pool(pool, tie_break),
        Conv2d(6, 16, 5), ReLU(), _pool(pool, tie_break),
        Flatten(),
        Linear(16 * 4 * 4, 120), ReLU(),
        Linear(120, 84), ReLU(),
        Linear(84, num_classes),
    )


def basic_block(in_channels, out_channels, stride=1):
    """He et al.'s basic residual block: conv 3x3 (stride) -> BN -> ReLU -> conv 3x3 -> BN, plus the
    input (through a 1x1 convolution and BN where the shape changes), then ReLU.

    Example:
        >>> cp.manual_seed(0)
        >>> cp.models.basic_block(16, 32, stride=2)(np.ones((1, 16, 8, 8), np.float32)).shape
        (1, 32, 4, 4)
    """
    body = Sequential(
        Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False), BatchNorm2d(out_channels), ReLU(),
        Conv2d(out_channels, out_channels, 3, padding=1, bias=False), BatchNorm2d(out_channels),
    )
    shortcut = None
    if stride != 1 or in_channels != out_channels:
        shortcut = Sequential(Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), BatchNorm2d(out_channels))
    return Sequential(Residual(body, shortcut), ReLU())


def _residual_stages(channels, widths, blocks):
    """Stages of `blocks` basic blocks each, one per width; every stage after the first starts at
    stride 2."""
    stages = []
    for stage, width in enumerate(widths):
        stride = 1 if stage == 0 else 2
        stages.append(Sequential(*(basic_block(channels if b == 0 else width, width, stride if b == 0 else 1)
                                   for b in range(blocks[stage]))))
        channels = width
    return stages


def resnet_cifar(depth, num_classes=10, in_channels=3):
    """He et al.'s (2016) ResNet for 32x32 images: a 3x3 convolution (16 channels), three stages of
    (depth - 2) / 6 basic blocks with 16, 32 and 64 channels (the second and third start at stride
    2, with 1x1 projection shortcuts), global average pooling and a linear classifier.

    Example:
        >>> cp.manual_seed(0)
        >>> cp.models.resnet_cifar(8)(np.ones((1, 3, 32, 32), np.float32)).shape
        (1, 10)
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"resnet_cifar: depth={depth} must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110)")
    return Sequential(
        Conv2d(in_channels, 16, 3, padding=1, bias=False), BatchNorm2d(16), ReLU(),
        *_residual_stages(16, (16, 32, 64), [(depth - 2) // 6] * 3),
        AdaptiveAvgPool2d(1), Flatten(), Linear(64, num_classes),
    )


def resnet18(num_classes=1000, in_channels=3):
    """He et al.'s (2016) ResNet-18 for ImageNet-sized images, laid out as torchvision's: a 7x7
    stride-2 convolution (64 channels), BN, ReLU and a 3x3 stride-2 max pool, four stages of two
    basic blocks with 64, 128, 256 and 512 channels (1x1 projection shortcuts where the shape
    changes), global average pooling and a linear classifier. Any input of at least 32x32 works;
    224x224 is the usual.

    Example:
        >>> cp.manual_seed(0)
        >>> cp.models.resnet18(num_classes=10)(np.ones((1, 3, 64, 64), np.float32)).shape
        (1, 10)
    """
    return Sequential(
        Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False), BatchNorm2d(64), ReLU(),
        MaxPool2d(3, stride=2, padding=1),
        *_residual_stages(64, (64, 128, 256, 512), (2, 2, 2, 2)),
        AdaptiveAvgPool2d(1), Flatten(), Linear(512, num_classes),
    )


def resnet20(num_classes=10, in_channels=3):
    """ResNet-20 for 32x32 images (3 basic blocks per stage, about 0.27 M parameters).

    Example:
        >>> cp.manual_seed(0)
        >>> cp.models.resnet20()(np.ones((1, 3, 32, 32), np.float32)).shape
        (1, 10)
    """
    return resnet_cifar(20, num_classes, in_channels)


def resnet8(num_classes=10, in_channels=3):
    """ResNet-8 for quick runs: one basic block per stage.

    Example:
        >>> cp.manual_seed(0)
        >>> cp.models.resnet8(in_channels=1)(np.ones((1, 1, 28, 28), np.float32)).shape
        (1, 10)
    """
    return resnet_cifar(8, num_classes, in_channels)
