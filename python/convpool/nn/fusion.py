"""Inference-time preparation: a batch normalization folded into the convolution before it, and
convolution weights packed once for the kernels."""

import copy

import numpy as np

from .. import _core
from .convolution import Conv2d
from .module import Parameter, Sequential
from .normalization import BatchNorm2d


def fuse_conv_bn_eval(conv, bn):
    """A new Conv2d computing ``bn(conv(x))`` of the eval-mode ``bn`` (its running statistics):
    weight * gamma / sqrt(running_var + eps) per output channel, and the bias moved likewise,
    folded in float64 and stored in the convolution's dtype.

    Example:
        >>> cp.manual_seed(0)
        >>> conv, bn = cp.nn.Conv2d(1, 2, 3), cp.nn.BatchNorm2d(2)
        >>> type(cp.nn.fuse_conv_bn_eval(conv, bn)).__name__
        'Conv2d'
    """
    if not isinstance(conv, Conv2d) or not isinstance(bn, BatchNorm2d):
        raise TypeError(f"fuse_conv_bn_eval: expected a Conv2d and a BatchNorm2d, got {type(conv).__name__} and "
                        f"{type(bn).__name__}")
    if not bn.track_running_stats:
        raise ValueError("fuse_conv_bn_eval: the BatchNorm2d keeps no running statistics "
                         "(track_running_stats=False), so it has no fixed eval-mode transform to fold")
    if bn.num_features != conv.out_channels:
        raise ValueError(f"fuse_conv_bn_eval: BatchNorm2d({bn.num_features}) does not follow a convolution with "
                         f"{conv.out_channels} output channels")
    scale = 1.0 / np.sqrt(bn.running_var.astype(np.float64) + bn.eps)
    if bn.affine:
        scale *= bn.weight.data
    shift = -bn.running_mean.astype(np.float64) * scale
    if bn.affine:
        shift += bn.bias.data
    if conv.bias is not None:
        shift += conv.bias.data * scale
    dtype = conv.weight.data.dtype
    fused = copy.deepcopy(conv)
    fused.weight = Parameter((conv.weight.data * scale[:, None, None, None]).astype(dtype))
    fused.bias = Parameter(shift.astype(dtype))
    return fused.train(False)


def fuse_conv_bn(model):
    """A copy of ``model`` in eval mode in which every BatchNorm2d that directly follows a Conv2d
    in a Sequential is folded into it (fuse_conv_bn_eval) and removed: the same outputs as
    ``model.eval()`` up to rounding, one pass over each activation fewer. ``model`` is unchanged;
    the copy's state_dict names follow its new layer positions.

    Example:
        >>> cp.manual_seed(0)
        >>> net = cp.nn.Sequential(cp.nn.Conv2d(1, 2, 3), cp.nn.BatchNorm2d(2))
        >>> fused = cp.nn.fuse_conv_bn(net)
        >>> [type(layer).__name__ for layer in fused]
        ['Conv2d']
    """
    fused = copy.deepcopy(model).eval()
    for module in fused.modules():
        if not isinstance(module, Sequential):
            continue
        layers, kept = list(module), []
        for layer in layers:
            if isinstance(layer, BatchNorm2d) and kept and isinstance(kept[-1], Conv2d) and layer.track_running_stats:
                kept[-1] = fuse_conv_bn_eval(kept[-1], layer)
            else:
                kept.append(layer)
        if len(kept) != len(layers):
            module._modules.clear()
            for index, layer in enumerate(kept):
                setattr(module, str(index), layer)
    return fused


def freeze(model, winograd=False):
    """A copy of ``model`` for inference: ``fuse_conv_bn``'s copy (eval mode, each BatchNorm2d
    that follows a Conv2d folded into it) in which every Conv2d holds its weight packed once for
    the kernels (``convpool.PackedConv2dWeight``) instead of packing it on every call.

    ``winograd=True`` packs them with ``winograd=True``: 3x3 convolutions at stride 1 then compute
    through Winograd's F(2x2, 3x3) where it saves work, rounded differently.

    The copy computes what ``model.eval()`` computes, up to the folding's rounding. Its
    convolutions' ``weight.data`` are the packed objects' read-only arrays: a frozen model is for
    inference, and loading a state or an optimizer step into it raises. Assigning a new array to a
    ``weight.data`` (or a deep copy of the model) gives that layer a plain weight again. ``model``
    is unchanged.

    Example:
        >>> cp.manual_seed(0)
        >>> net = cp.nn.Sequential(cp.nn.Conv2d(1, 8, 3), cp.nn.BatchNorm2d(8), cp.nn.ReLU())
        >>> statistics = net(np.random.default_rng(0).standard_normal((4, 1, 6, 6)).astype(np.float32))
        >>> frozen = cp.nn.freeze(net)
        >>> x = np.ones((1, 1, 6, 6), np.float32)
        >>> float(np.abs(frozen(x) - net.eval()(x)).max()) < 1e-5
        True
    """
    frozen = fuse_conv_bn(model)
    for module in frozen.modules():
        if isinstance(module, Conv2d):
            module.weight.data = _core.PackedConv2dWeight(module.weight.data, winograd=winograd).weight
            module.winograd = winograd  # conv2d refuses a layer flag that disagrees with its packed weight
    return frozen
