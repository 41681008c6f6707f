"""Looking inside a trained network: saliency (plain and guided), feature maps, occlusion
sensitivity, and 2-D embeddings of a layer's features."""

import numpy as np

from .nn.activation import ReLU
from .nn.losses import softmax
from .nn.module import Sequential
from .training import predict

__all__ = ["EMBEDDING_METHODS", "SALIENCY_METHODS", "embedding", "feature_maps", "occlusion_map", "saliency_map"]

SALIENCY_METHODS = ("gradient", "guided")
EMBEDDING_METHODS = ("pca", "tsne")


def _class_targets(model, images, target):
    if target is None:
        return predict(model, images).argmax(axis=1)
    target = np.broadcast_to(np.asarray(target), (len(images),))
    return target


def _guided_backward(relu):
    """A ReLU's backward for guided backpropagation: only positive gradients pass, and only where
    the forward input was positive (Springenberg et al., 2015)."""
    plain = relu.backward

    def backward(grad_output, need_input_grad=True):
        grad = plain(grad_output, need_input_grad)
        return None if grad is None else np.maximum(grad, 0, out=grad)

    return backward


def saliency_map(model, images, target=None, method="gradient"):
    """``|d score / d pixel|`` for each image, the largest over channels.

    ``score`` is the logit of class ``target`` (an int or one per image; default: the predicted
    class). ``method="gradient"`` is the plain gradient (Simonyan et al., 2014); ``"guided"`` is
    guided backpropagation (Springenberg et al., 2015), whose ReLUs also stop negative
    gradients, which gives sharper maps. Runs the model in eval mode; parameter gradients are
    left as they were. Returns (N, H, W).

    Example:
        >>> cp.manual_seed(0)
        >>> cp.inspection.saliency_map(cp.models.lenet5(), np.ones((2, 1, 28, 28), np.float32)).shape
        (2, 28, 28)
    """
    if method not in SALIENCY_METHODS:
        raise ValueError(f"saliency_map: method must be one of {SALIENCY_METHODS}, got {method!r}")
    images = np.asarray(images)
    target = _class_targets(model, images, target)
    was_training = model.training
    model.eval()
    # backward adds into existing grad arrays in place: park them and restore them afterwards.
    saved = [parameter.grad for parameter in model.parameters()]
    model.zero_grad()
    relus = [module for module in model.modules() if type(module) is ReLU] if method == "guided" else []
    for relu in relus:  # an instance attribute, removed below, overrides the class's backward
        relu.backward = _guided_backward(relu)
    try:
        logits = model(images)
        grad_logits = np.zeros_like(logits)
        grad_logits[np.arange(len(images)), target] = 1
        grad_images = model.backward(grad_logits)
    finally:
        for relu in relus:
            del relu.backward
        for parameter, grad in zip(model.parameters(), saved):
            parameter.grad = grad
        model.train(was_training)
    return np.abs(grad_images).max(axis=1)


def feature_maps(model, images, layer):
    """The output of ``model[layer]`` (a Sequential's index) for ``images``, in eval mode.

    Example:
        >>> cp.manual_seed(0)
        >>> cp.inspection.feature_maps(cp.models.lenet5(), np.ones((2, 1, 28, 28), np.float32), 1).shape
        (2, 6, 24, 24)
    """
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

    Example:
        >>> cp.manual_seed(0)
        >>> images = np.ones((2, 1, 28, 28), np.float32)
        >>> cp.inspection.occlusion_map(cp.models.lenet5(), images, patch=7, stride=7).shape
        (2, 28, 28)
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


def embedding(model, images, layer, method="pca", seed=0):
    """The features after ``model[layer]`` (a Sequential's index; -2 is the classifier's input in
    LeNet-5 and the ResNets), flattened per image and brought to 2-D: ``"pca"`` projects them on
    their two principal axes (NumPy's SVD, each axis's sign fixed so that its largest coefficient
    is positive), ``"tsne"`` runs scikit-learn's t-SNE (``pip install scikit-learn``) with
    ``seed``. Returns (N, 2), for ``plots.plot_embedding``.

    Example:
        >>> cp.manual_seed(0)
        >>> images = np.random.default_rng(0).random((20, 1, 28, 28), np.float32)
        >>> cp.inspection.embedding(cp.models.lenet5(), images, -2).shape
        (20, 2)
    """
    if method not in EMBEDDING_METHODS:
        raise ValueError(f"embedding: method must be one of {EMBEDDING_METHODS}, got {method!r}")
    features = feature_maps(model, images, layer).reshape(len(images), -1).astype(np.float64)
    if len(features) < 3:
        raise ValueError(f"embedding: needs at least 3 images, got {len(features)}")
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError as error:
            raise ImportError("embedding(method='tsne') needs scikit-learn: pip install scikit-learn") from error
        perplexity = min(30.0, (len(features) - 1) / 3)
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
    centered = features - features.mean(axis=0)
    _, _, axes = np.linalg.svd(centered, full_matrices=False)
    axes = axes[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    return centered @ (axes * signs[:, None]).T
