"""Looking inside a trained network: saliency, feature maps and occlusion sensitivity."""

import numpy as np

from .nn.losses import softmax
from .nn.module import Sequential
from .training import predict


def _class_targets(model, images, target):
    if target is None:
        return predict(model, images).argmax(axis=1)
    target = np.broadcast_to(np.asarray(target), (len(images),))
    return target


def saliency_map(model, images, target=None):
    """|d score / d pixel| for each image (Simonyan et al., 2014), the largest over channels.

    ``score`` is the logit of class ``target`` (an int or one per image; default: the predicted
    class). Runs the model in eval mode; parameter gradients are left as they were. Returns
    (N, H, W).
    """
    images = np.asarray(images)
    target = _class_targets(model, images, target)
    was_training = model.training
    model.eval()
    # backward adds into existing grad arrays in place: park them and restore them afterwards.
    saved = [parameter.grad for parameter in model.parameters()]
    model.zero_grad()
    try:
        logits = model(images)
        grad_logits = np.zeros_like(logits)
        grad_logits[np.arange(len(images)), target] = 1
        grad_images = model.backward(grad_logits)
    finally:
        for parameter, grad in zip(model.parameters(), saved):
            parameter.grad = grad
        model.train(was_training)
    return np.abs(grad_images).max(axis=1)


def feature_maps(model, images, layer):
    """The output of ``model[layer]`` (a Sequential's index) for ``images``, in eval mode."""
    if not isinstance(model, Sequential):
        raise TypeError(f"feature_maps: model must be a Sequential, got {type(model).__name__}")
    if not -len(model) <= layer < len(model):
        raise ValueError(f"feature_maps: layer={layer} is out of range for a Sequential of {len(model)} layers")
    return predict(model[: layer % len(model) + 1], np.asarray(images))


def occlusion_map(model, images, target=None, patch=7, stride=3, fill=0.0):
    """How much the probability of class ``target`` drops when a patch of the image is hidden.

    A ``patch`` x ``patch`` square of value ``fill`` slides over each image with ``stride``
    (Zeiler & Fergus, 2014); each pixel gets the mean drop over the positions that cover it.
    Large values mark the regions the prediction depends on. Returns (N, H, W).
    """
    images = np.asarray(images)
    target = _class_targets(model, images, target)
    count, _, height, width = images.shape
    rows = np.arange(count)
    baseline = softmax(predict(model, images))[rows, target]
    drop_sum = np.zeros((count, height, width))
    covered = np.zeros((height, width))
    tops = range(0, max(height - patch, 0) + 1, stride)
    lefts = range(0, max(width - patch, 0) + 1, stride)
    for top in tops:
        for left in lefts:
            occluded = images.copy()
            occluded[:, :, top:top + patch, left:left + patch] = fill
            probability = softmax(predict(model, occluded))[rows, target]
            drop_sum[:, top:top + patch, left:left + patch] += (baseline - probability)[:, None, None]
            covered[top:top + patch, left:left + patch] += 1
    return drop_sum / np.maximum(covered, 1)
